import { BUSY, IDLE, YIELD, type DrainState, now } from './dispatcher.js'
import { copyEvent, isThenable, Subscriber, type SubscriberHost, type SubscriberOptions } from './subscriber.js'
import type { BusEvent, HandlerContext } from './types.js'

export type Handler = (event: BusEvent, context: HandlerContext) => unknown

/**
 * `subscribe`: calls the handler for each event in order; an async handler is
 * awaited before the next event. A throw or rejection is counted and reported.
 */
export class HandlerSubscriber extends Subscriber {
  readonly #handler: Handler
  /** Async handler calls at once (replies may run several; subscribe runs one). */
  readonly #concurrency: number
  #running = 0

  constructor(host: SubscriberHost, options: SubscriberOptions, handler: Handler, concurrency = 1) {
    super(host, options)
    this.#handler = handler
    this.#concurrency = concurrency
  }

  protected override get running(): number {
    return this.#running
  }

  drain(deadline: number): DrainState {
    if (this.#running >= this.#concurrency) return BUSY
    const queue = this.queue
    const handler = this.#handler
    const context = this.context
    const after = this.afterHandled
    let delivered = 0
    let state: DrainState = IDLE
    while (this.active) {
      const event = queue.shift()
      if (event === undefined) break
      let result: unknown
      try {
        result = handler(this.copy ? copyEvent(event) : event, context)
      } catch (error) {
        this.recordFailure(event, error)
        if (after !== undefined) after(event)
        continue
      }
      if (isThenable(result)) {
        this.#await(event, result)
        if (this.#running < this.#concurrency) continue
        state = BUSY
        break
      }
      if (after !== undefined) after(event)
      // Counted once per drain: two counter updates per event cost more than the loop.
      if ((++delivered & 31) === 0 && now() >= deadline && queue.size > 0) {
        state = YIELD
        break
      }
    }
    this.delivered += delivered
    this.host.counters.delivered += delivered
    return state
  }

  #await(event: BusEvent, result: PromiseLike<unknown>): void {
    const dispatcher = this.host.dispatcher
    this.#running++
    dispatcher.started()
    const settle = (): void => {
      this.#running--
      if (this.active && this.queue.size > 0 && !this.scheduled) dispatcher.schedule(this)
      dispatcher.settled()
    }
    // Straight on the handler's own promise (Promise.resolve returns a native one as it is): the ack, if
    // durable, is queued in the reaction to its settling, so a close right after it cannot lose it.
    const settled = Promise.resolve(result).then(
      () => {
        if (this.active) this.recordDelivery()
        this.afterHandled?.(event)
      },
      (error: unknown) => {
        this.recordFailure(event, error)
        this.afterHandled?.(event)
      },
    )
    void settled.finally(settle)
  }
}
