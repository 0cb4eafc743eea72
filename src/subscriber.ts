import type { Counters } from './counters.js'
import { DropCounter } from './diagnostics.js'
import type { Dispatcher, Drainable, DrainState } from './dispatcher.js'
import { withChanges } from './envelope.js'
import { CrossbusError, errorMessage, quote } from './errors.js'
import { BoundedQueue, type Overflow } from './queue.js'
import type { BusEvent, Diagnostic, DiagnosticType, HandlerContext, Receipt, SubscriptionStats } from './types.js'

/** What a subscription needs from its bus. */
export interface SubscriberHost {
  readonly counters: Counters
  readonly dispatcher: Dispatcher
  report(diagnostic: Diagnostic): void
  /** The subscription ended: it leaves routing and every table that knew it. */
  detach(subscriber: Subscriber): void
  /** A `once` subscription took its event: it leaves routing, still active until handled. */
  unroute(subscriber: Subscriber): void
  /** Publishes on behalf of the bus (dead letters, replies); allowed on reserved topics. */
  publishInternal(topic: string, data: unknown, headers: Readonly<Record<string, string>>, durable: boolean): Receipt
}

export interface SubscriberOptions {
  readonly pattern: string
  readonly tokens: readonly string[]
  readonly capacity: number
  readonly overflow: Overflow
  readonly local: boolean
  readonly copy: boolean
  readonly durable: string | undefined
  /** Hidden from stats (the request inbox). */
  readonly internal: boolean
  /** Leaves routing after its first accepted event (once()). */
  readonly single: boolean
  /** The key of the queue group it is a member of (see groups.ts), if any. */
  readonly group?: string | undefined
}

/** What offering an event did: queued it, queued it in place of an evicted older one, or dropped it. */
export const QUEUED = 0
export const EVICTED = 1
export const DROPPED = 2
export type Offered = typeof QUEUED | typeof EVICTED | typeof DROPPED

/** A private copy of an event for `copy: true` subscriptions. */
export function copyEvent(event: BusEvent): BusEvent {
  return withChanges(event, structuredClone(event.data), event.redelivered)
}

export function isThenable(value: unknown): value is PromiseLike<unknown> {
  return value !== null && typeof value === 'object' && typeof (value as PromiseLike<unknown>).then === 'function'
}

/**
 * A handler's context. Its controller is made on first use: most handlers never look at their signal
 * (and an AbortController per processor attempt was most of what an attempt cost).
 */
export class SubscriptionContext implements HandlerContext {
  #controller: AbortController | undefined
  #ended: { reason: unknown } | undefined

  /** Set once ended, with the reason its signal aborts (or did) with. */
  get ended(): { readonly reason: unknown } | undefined {
    return this.#ended
  }

  get signal(): AbortSignal {
    if (this.#controller === undefined) {
      this.#controller = new AbortController()
      if (this.#ended !== undefined) this.#controller.abort(this.#ended.reason)
    }
    return this.#controller.signal
  }

  end(reason: unknown): void {
    this.#ended ??= { reason }
    this.#controller?.abort(reason)
  }
}

/**
 * The queue side every subscription shares: a bounded queue the publisher
 * fills and the dispatcher drains, plus its counters. Subclasses decide what
 * draining means (call a handler, run a processor, feed an iterator) and what
 * the bus's close means to them.
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
  /** The key of its queue group: the members of a group share each event. */
  readonly group: string | undefined
  scheduled = false
  active = true
  /** Durable subscriptions: waiting for another instance of the name to end. */
  standby = false
  delivered = 0
  failed = 0
  readonly drops: DropCounter
  /**
   * Durable subscriptions: told when an event is handled (handler settled, processor done or dead-lettered);
   * with an `outcome`, handled once it resolves (a dead letter stored), and not at all if it rejects (it comes again).
   */
  afterHandled: ((event: BusEvent, outcome?: Promise<unknown>) => void) | undefined = undefined
  /** Durable subscriptions: takes back an event overflow evicted, if it is in the store (then it is no drop). */
  reclaim: ((event: BusEvent) => boolean) | undefined = undefined
  /** Durable subscriptions, once live: stored matching events not acked yet (stats().backlog). */
  backlog: (() => number) | undefined = undefined
  protected readonly host: SubscriberHost
  #endListeners: (() => void)[] = []
  /** What a handler gets beside its event: its signal aborts when the subscription ends. */
  readonly context: SubscriptionContext = new SubscriptionContext()

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
    this.group = options.group
    this.drops = new DropCounter((first, count) =>
      this.notify(
        'drop',
        first,
        `queue full (capacity ${this.queue.capacity}, ${this.overflow}): dropped ${count} event(s), first on ${quote(first.topic)}. ` +
          'A burst published in one task must fit in capacity. Drops are counted in stats().',
        undefined,
        count,
      ),
    )
  }

  abstract drain(deadline: number): DrainState

  /** Events queued or being handled: how busy a queue group member is. */
  get load(): number {
    return this.queue.size + this.running
  }

  /** Events being handled now (an awaited handler, a processor's attempts). */
  protected get running(): number {
    return 0
  }

  /** Events lost to overflow. */
  get dropped(): number {
    return this.drops.count
  }

  /** True when this subscription would drop a new event (full, drop-newest): the publisher need not build one. */
  refuses(): boolean {
    return this.overflow === 'drop-newest' && this.queue.full
  }

  /** Queues an event by the overflow policy. */
  offer(event: BusEvent): Offered {
    if (!this.active) return DROPPED
    let offered: Offered = QUEUED
    if (this.queue.full) {
      if (this.overflow === 'drop-newest') {
        this.drops.record(event.topic, event.id)
        return DROPPED
      }
      this.evict()
      offered = EVICTED
    }
    this.queue.push(event)
    if (!this.scheduled) this.host.dispatcher.schedule(this)
    if (this.single) this.host.unroute(this)
    return offered
  }

  /** Queues an event if there is room (events read from a store wait there otherwise). */
  accept(event: BusEvent): boolean {
    if (!this.active || !this.queue.push(event)) return false
    if (!this.scheduled) this.host.dispatcher.schedule(this)
    return true
  }

  /** Makes room under drop-oldest: the head goes, counted as a drop unless the store still has it. */
  evict(): void {
    const evicted = this.queue.shift() as BusEvent
    if (this.reclaim === undefined || !this.reclaim(evicted)) this.drops.record(evicted.topic, evicted.id)
  }

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
    this.context.end(reason)
    this.onStop(reason)
    for (const listener of this.#endListeners) listener()
    this.#endListeners = []
  }

  /**
   * The bus is closing: what this subscription stops at once. By default
   * nothing; it goes on delivering what is queued until `closed`.
   */
  closing(_reason: unknown): void {}

  /**
   * The bus is closed (everything queued was delivered, or its close deadline
   * passed): what is still queued is dropped and counted, running handlers see
   * their signal abort, and the subscription ends.
   */
  closed(reason: unknown): void {
    if (!this.active) return
    for (let event = this.queue.shift(); event !== undefined; event = this.queue.shift()) this.drops.record(event.topic, event.id)
    this.unsubscribe(reason)
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
    if (this.durable === undefined) return stats
    return this.backlog === undefined
      ? { ...stats, durable: this.durable, standby: this.standby }
      : { ...stats, durable: this.durable, standby: this.standby, backlog: this.backlog() }
  }

  /** Called once when the subscription ends; queued events are discarded. */
  protected onStop(_reason: unknown): void {}

  /** Reports something about one event of this subscription. */
  protected notify(type: DiagnosticType, event: { readonly id: string; readonly topic: string }, message: string, error?: unknown, count = 1): void {
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
