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
  #running: BusEvent | undefined

  constructor(host: SubscriberHost, options: SubscriberOptions, handler: Handler) {
    super(host, options)
    this.#handler = handler
  }

  drain(deadline: number): DrainState {
    if (this.#running !== undefined) return BUSY
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
    this.#running = event
    dispatcher.started()
    const settle = (): void => {
      this.#running = undefined
      if (this.active && this.queue.size > 0 && !this.scheduled) dispatcher.schedule(this)
      dispatcher.settled()
    }
    const settled = Promise.resolve()
      .then(() => result)
      .then(
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
