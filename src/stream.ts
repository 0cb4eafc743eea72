import { IDLE, type DrainState } from './dispatcher.js'
import { Subscriber } from './subscriber.js'
import type { BusEvent } from './types.js'

/**
 * `stream`: the consumer pulls. Events wait in the bounded queue until `next()`
 * takes them; the iterator ends when its signal aborts (at once) or the bus
 * closes (after what is queued).
 */
export class StreamSubscriber extends Subscriber {
  #waiters: ((result: IteratorResult<BusEvent, undefined>) => void)[] = []
  #ending = false
  /** Durable streams: events handed out, handled once the consumer asks for the next one. */
  readonly #taken: BusEvent[] = []

  drain(): DrainState {
    while (this.#waiters.length > 0) {
      const event = this.queue.shift()
      if (event === undefined) break
      const result = this.#take(event)
      if (result !== undefined) this.#waiters.shift()?.(result)
    }
    if (this.#ending && this.queue.size === 0) this.unsubscribe()
    return IDLE
  }

  next(): Promise<IteratorResult<BusEvent, undefined>> {
    const after = this.afterHandled
    if (after !== undefined && this.#taken.length > 0) after(this.#taken.shift() as BusEvent)
    if (this.#waiters.length === 0) {
      for (let event = this.queue.shift(); event !== undefined; event = this.queue.shift()) {
        const result = this.#take(event)
        if (result !== undefined) return Promise.resolve(result)
      }
      if (!this.active || this.#ending) {
        if (this.active) this.unsubscribe()
        return Promise.resolve({ done: true, value: undefined })
      }
    }
    return new Promise((resolve) => {
      this.#waiters.push(resolve)
      if (this.queue.size > 0) this.drain()
    })
  }

  /** The consumer stopped pulling (`return()`): what it took is handled. */
  release(): void {
    const after = this.afterHandled
    if (after !== undefined) for (let event = this.#taken.shift(); event !== undefined; event = this.#taken.shift()) after(event)
  }

  /** The bus is closing: the stream ends once what is queued has been taken. */
  override closing(): void {
    this.#ending = true
    if (this.queue.size === 0) this.unsubscribe()
  }

  /** Ends by itself, after what is queued (see closing). */
  override closed(): void {}

  /** The iterator result for one event, or undefined when its copy failed (counted and reported). */
  #take(event: BusEvent): IteratorResult<BusEvent, undefined> | undefined {
    let value: BusEvent
    try {
      value = this.view(event)
    } catch (error) {
      this.recordFailure(event, error)
      this.afterHandled?.(event)
      return undefined
    }
    this.recordDelivery()
    if (this.afterHandled !== undefined) this.#taken.push(event)
    return { done: false, value }
  }

  protected override onStop(): void {
    const waiters = this.#waiters
    this.#waiters = []
    for (const waiter of waiters) waiter({ done: true, value: undefined })
  }
}
