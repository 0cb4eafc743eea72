import { isDurable, REPLY_TO, withChanges } from './envelope.js'
import { CrossbusError, quote } from './errors.js'
import { BUSY, IDLE, YIELD, type Dispatcher, type Drainable, type DrainState, now } from './dispatcher.js'
import { BoundedQueue, type Overflow } from './queue.js'
import { abortReason, backoffDelay, sleep, type ResolvedRetry } from './retry.js'
import type { BusEvent, Diagnostic, DiagnosticType, ProcessContext, SubscriptionStats } from './types.js'

/** Bus counters that subscriptions add to. */
export interface Counters {
  published: number
  delivered: number
  dropped: number
  failed: number
  retried: number
  deadLettered: number
  received: number
  rejected: number
  stored: number
  evicted: number
}

/** What a subscription needs from its bus. */
export interface SubscriberHost {
  readonly counters: Counters
  readonly dispatcher: Dispatcher
  report(diagnostic: Diagnostic): void
  /** Takes the subscription out of routing. */
  detach(subscriber: Subscriber): void
  /** Publishes on behalf of the bus (dead letters, replies); allowed on reserved topics. */
  publishInternal(topic: string, data: unknown, headers: Record<string, string>, durable: boolean): void
}

export interface SubscriberOptions {
  pattern: string
  tokens: readonly string[]
  capacity: number
  overflow: Overflow
  local: boolean
  copy: boolean
  durable: string | undefined
  /** Hidden from stats (the request inbox). */
  internal: boolean
  /** Leaves routing after its first accepted event (once()). */
  single: boolean
}

export type Handler = (event: BusEvent) => unknown

function isThenable(value: unknown): value is PromiseLike<unknown> {
  return value !== null && typeof value === 'object' && typeof (value as PromiseLike<unknown>).then === 'function'
}

/** A private copy of an event for `copy: true` subscriptions. */
export function copyEvent(event: BusEvent): BusEvent {
  return withChanges(event, structuredClone(event.data), event.redelivered)
}

/** A message for any thrown value, even one String() cannot convert (a null-prototype object). */
export function errorMessage(error: unknown): string {
  try {
    return error instanceof Error ? String(error.message) : String(error)
  } catch {
    return Object.prototype.toString.call(error)
  }
}

/**
 * The queue side every subscription shares: a bounded queue the publisher
 * fills and the dispatcher drains, plus its counters. Subclasses decide what
 * draining means (call a handler, run a processor, feed an iterator).
 */
export abstract class Subscriber implements Drainable {
  readonly pattern: string
  readonly tokens: readonly string[]
  readonly queue: BoundedQueue<BusEvent>
  readonly overflow: Overflow
  readonly local: boolean
  readonly copy: boolean
  readonly durable: string | undefined
  readonly internal: boolean
  readonly single: boolean
  scheduled = false
  active = true
  /** Durable subscriptions: waiting for another instance of the name to end. */
  standby = false
  delivered = 0
  dropped = 0
  failed = 0
  /** Drops not yet reported; reports are coalesced per subscription and task. */
  unreportedDrops = 0
  /** Durable subscriptions: told when an event is handled (handler settled, processor done or dead-lettered). */
  afterHandled: ((event: BusEvent) => void) | undefined = undefined
  /** Durable subscriptions: takes back an event overflow evicted, if it is in the store (then it is no drop). */
  reclaim: ((event: BusEvent) => boolean) | undefined = undefined
  protected readonly host: SubscriberHost

  constructor(host: SubscriberHost, options: SubscriberOptions) {
    this.host = host
    this.pattern = options.pattern
    this.tokens = options.tokens
    this.queue = new BoundedQueue(options.capacity)
    this.overflow = options.overflow
    this.local = options.local
    this.copy = options.copy
    this.durable = options.durable
    this.internal = options.internal
    this.single = options.single
  }

  abstract drain(deadline: number): DrainState

  /** Called once when the subscription ends; queued events are discarded. */
  protected onStop(_reason: unknown): void {}

  /** Puts an event in the queue, outside the publish fast path (replays of retained events). */
  offer(event: BusEvent): void {
    if (!this.active) return
    if (this.queue.full) {
      if (this.overflow === 'drop-newest') {
        this.recordDrop(event.topic, event.id)
        return
      }
      this.evict()
    }
    this.queue.push(event)
    if (!this.scheduled) this.host.dispatcher.schedule(this)
  }

  /** Puts an event in the queue if there is room (events read from a store wait there otherwise). */
  accept(event: BusEvent): boolean {
    if (!this.active || !this.queue.push(event)) return false
    if (!this.scheduled) this.host.dispatcher.schedule(this)
    return true
  }

  /** Makes room under drop-oldest: the head goes, counted as a drop unless the store still has it. */
  evict(): void {
    const evicted = this.queue.shift() as BusEvent
    if (this.reclaim === undefined || !this.reclaim(evicted)) this.recordDrop(evicted.topic, evicted.id)
  }

  /** Counts one event lost to overflow and reports it (coalesced: only the first drop's id is used). */
  recordDrop(topic: string, id: string): void {
    // The bus adds a live subscription's drops to its total in stats(), and keeps them at unsubscribe.
    this.dropped++
    if (this.unreportedDrops++ === 0) {
      const event = { topic, id }
      queueMicrotask(() => {
        const count = this.unreportedDrops
        this.unreportedDrops = 0
        this.notify(
          'drop',
          event,
          `queue full (capacity ${this.queue.capacity}, ${this.overflow}): dropped ${count} event(s), first on ${quote(event.topic)}. ` +
            'A burst published in one task must fit in capacity. Drops are counted in stats().',
          undefined,
          count,
        )
      })
    }
  }

  #endListeners: (() => void)[] = []

  /** Runs `listener` once when the subscription ends (signal listeners, timers). */
  onEnd(listener: () => void): void {
    this.#endListeners.push(listener)
  }

  unsubscribe = (reason: unknown = new CrossbusError('ABORTED', 'unsubscribed')): void => {
    if (!this.active) return
    this.active = false
    this.host.counters.dropped += this.dropped
    this.host.detach(this)
    this.queue.drain()
    this.onStop(reason)
    for (const listener of this.#endListeners) listener()
    this.#endListeners = []
  }

  stats(): SubscriptionStats {
    const stats = {
      pattern: this.pattern,
      queued: this.queue.size,
      capacity: this.queue.capacity,
      delivered: this.delivered,
      dropped: this.dropped,
      failed: this.failed,
    }
    return this.durable === undefined ? stats : { ...stats, durable: this.durable, standby: this.standby }
  }

  /** Reports something about one event of this subscription. */
  protected notify(type: DiagnosticType, event: { id: string; topic: string }, message: string, error?: unknown, count = 1): void {
    this.host.report({
      type,
      subscription: this.pattern,
      topic: event.topic,
      eventId: event.id,
      count,
      message: `crossbus: ${quote(this.pattern)}: ${message}`,
      ...(error === undefined ? {} : { error }),
    })
  }

  protected recordFailure(event: BusEvent, error: unknown): void {
    this.failed++
    this.host.counters.failed++
    this.notify('handler-error', event, `handler failed on ${quote(event.topic)}: ${errorMessage(error)}`, error)
  }

  protected recordDelivery(): void {
    this.delivered++
    this.host.counters.delivered++
  }

  /** The event as this subscription sees it: its own clone with `copy: true`. */
  protected view(event: BusEvent): BusEvent {
    return this.copy ? copyEvent(event) : event
  }
}

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
    const after = this.afterHandled
    let delivered = 0
    let state: DrainState = IDLE
    while (this.active) {
      const event = queue.shift()
      if (event === undefined) break
      let result: unknown
      try {
        result = handler(this.copy ? copyEvent(event) : event)
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

export interface ProcessorSettings {
  concurrency: number
  timeout: number | undefined
  retry: ResolvedRetry
  deadLetter: string | ((event: BusEvent, error: unknown) => void) | undefined
}

export type ProcessHandler = (event: BusEvent, context: ProcessContext) => unknown

/**
 * `process`: runs up to `concurrency` events at once, each attempt with its own
 * AbortSignal (processor stopped, bus closed, attempt timed out), retries with
 * exponential backoff on abortable timers, and dead-letters after the last attempt.
 */
export class ProcessorSubscriber extends Subscriber {
  readonly #handler: ProcessHandler
  readonly #settings: ProcessorSettings
  /** Aborts when this processor stops: unsubscribed, its signal aborted, or the bus closed. */
  readonly #stop = new AbortController()
  #running = 0

  constructor(host: SubscriberHost, options: SubscriberOptions, handler: ProcessHandler, settings: ProcessorSettings) {
    super(host, options)
    this.#handler = handler
    this.#settings = settings
  }

  protected override onStop(reason: unknown): void {
    this.#stop.abort(reason)
  }

  drain(): DrainState {
    const queue = this.queue
    while (this.active && this.#running < this.#settings.concurrency) {
      const event = queue.shift()
      if (event === undefined) break
      this.#running++
      this.host.dispatcher.started()
      void this.#run(event).then(() => {
        this.#running--
        if (this.active && queue.size > 0 && !this.scheduled) this.host.dispatcher.schedule(this)
        this.host.dispatcher.settled()
      })
    }
    return this.#running > 0 ? BUSY : IDLE
  }

  async #run(event: BusEvent): Promise<void> {
    const { retry } = this.#settings
    const stop = this.#stop.signal
    for (let attempt = 1; ; attempt++) {
      if (stop.aborted) return
      if (attempt > 1) this.host.counters.retried++
      let error: unknown
      try {
        await this.#attempt(event, attempt)
        this.recordDelivery()
        this.afterHandled?.(event)
        return
      } catch (caught) {
        error = caught
      }
      if (stop.aborted) {
        // Stopped mid-attempt: the event is neither retried nor dead-lettered.
        this.failed++
        this.host.counters.failed++
        return
      }
      this.recordFailure(event, error)
      if (attempt >= retry.attempts) {
        this.#deadLetter(event, error, attempt)
        this.afterHandled?.(event)
        return
      }
      const delay = backoffDelay(retry, attempt)
      this.notify('retry', event, `attempt ${attempt + 1}/${retry.attempts} of ${event.id} in ${Math.round(delay)} ms`, error)
      try {
        await sleep(delay, stop)
      } catch {
        return
      }
    }
  }

  /** One attempt: resolves when the handler does, rejects on its failure or as soon as the attempt's signal aborts. */
  #attempt(event: BusEvent, attempt: number): Promise<void> {
    const stop = this.#stop.signal
    const controller = new AbortController()
    const signal = controller.signal
    const onStop = (): void => controller.abort(stop.reason)
    stop.addEventListener('abort', onStop, { once: true })
    const { timeout } = this.#settings
    const timer =
      timeout === undefined
        ? undefined
        : setTimeout(() => {
            controller.abort(new CrossbusError('TIMEOUT', `${quote(this.pattern)}: attempt ${attempt} timed out after ${timeout} ms`))
          }, timeout)
    return new Promise<void>((resolve, reject) => {
      const finish = (): void => {
        if (timer !== undefined) clearTimeout(timer)
        stop.removeEventListener('abort', onStop)
        signal.removeEventListener('abort', onAbort)
      }
      const onAbort = (): void => {
        finish()
        reject(abortReason(signal))
      }
      signal.addEventListener('abort', onAbort, { once: true })
      // A retried event is a redelivery.
      const seen = attempt > 1 && !event.redelivered ? withChanges(event, event.data, true) : event
      Promise.resolve()
        .then(() => this.#handler(this.view(seen), { signal, attempt }))
        .then(
          () => {
            finish()
            if (signal.aborted) reject(abortReason(signal))
            else resolve()
          },
          (error: unknown) => {
            finish()
            reject(signal.aborted ? abortReason(signal) : error)
          },
        )
    })
  }

  #deadLetter(event: BusEvent, error: unknown, attempts: number): void {
    const { deadLetter } = this.#settings
    this.host.counters.deadLettered++
    if (typeof deadLetter === 'string') {
      // Not the request's reply-to: a reply() on the dead-letter topic must not answer the original asker.
      const { [REPLY_TO]: _replyTo, ...headers } = event.headers
      // A durable event's dead letter is durable too: it leaves the log only once someone has it.
      this.host.publishInternal(
        deadLetter,
        event.data,
        {
          ...headers,
          'x-crossbus-topic': event.topic,
          'x-crossbus-error': errorMessage(error),
          'x-crossbus-attempts': String(attempts),
        },
        isDurable(event),
      )
      return
    }
    if (typeof deadLetter === 'function') {
      try {
        deadLetter(event, error)
      } catch (callbackError) {
        this.notify('handler-error', event, `deadLetter threw: ${errorMessage(callbackError)}`, callbackError)
      }
      return
    }
    this.notify('dead-letter', event, `gave up on ${event.id} after ${attempts} attempt(s): ${errorMessage(error)}. Set deadLetter to keep such events.`, error)
  }
}

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

  /** Ends the stream once what is queued has been taken (bus close). */
  end(): void {
    this.#ending = true
    if (this.queue.size === 0) this.unsubscribe()
  }

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
