import type { Counters } from './counters.js'
import type { Dispatcher } from './dispatcher.js'
import type { DurableEngine } from './engine.js'
import { CrossbusError, quote } from './errors.js'
import { groupKey, membershipEntry } from './groups.js'
import { HandlerSubscriber } from './handler.js'
import { overflowPolicy, positiveInteger } from './options.js'
import { DURABLE } from './envelope.js'
import { LOG_TOPIC, type Publisher, UNCHECKED } from './publisher.js'
import type { Overflow } from './queue.js'
import type { RetainedState } from './retained.js'
import { abortReason } from './retry.js'
import type { Router } from './router.js'
import type { Subscriber, SubscriberHost, SubscriberOptions } from './subscriber.js'
import { parsePattern } from './topic.js'
import type { Diagnostic, Receipt, SubscribeOptions, Subscription, SubscriptionStats } from './types.js'

const disposeSymbol: typeof Symbol.dispose = Symbol.dispose ?? (Symbol.for('Symbol.dispose') as typeof Symbol.dispose)

/** What the registry needs from its bus. */
export interface RegistryHost {
  readonly counters: Counters
  readonly dispatcher: Dispatcher
  readonly router: Router<Subscriber>
  readonly publisher: Publisher
  readonly retained: RetainedState
  readonly durable: DurableEngine | undefined
  /** Default capacity and overflow of a subscription. */
  readonly capacity: number
  readonly overflow: Overflow
  report(diagnostic: Diagnostic): void
  /** The patterns this context subscribes to changed: peers must hear of it. */
  interestChanged(): void
}

/** Settings of attach() that the public options do not carry. */
export interface AttachExtras {
  /** Hidden from stats (the request inbox, once()). */
  readonly internal?: boolean
  /** Leaves routing after its first accepted event (once()). */
  readonly single?: boolean
  /** Its queue group's key, when not the one its `queue` option makes (repliers). */
  readonly group?: string
}

/**
 * The subscriptions of a bus: it checks their options, routes them (a durable
 * one once it holds its consumer's lock), gives `last: true` ones their
 * retained events, says when this context's interest changes, counts them
 * in stats, and ends them when the bus closes.
 */
export class Registry implements SubscriberHost {
  readonly counters: Counters
  readonly dispatcher: Dispatcher
  readonly #host: RegistryHost
  /** Durable subscriptions waiting for their consumer's lock: not routed yet, but in stats and closed with the bus. */
  readonly #standby = new Set<Subscriber>()
  /** Makes peers send their commits' announcements here while this context has durable subscriptions. */
  #logWatcher: Subscriber | undefined
  #closed = false

  constructor(host: RegistryHost) {
    this.#host = host
    this.counters = host.counters
    this.dispatcher = host.dispatcher
  }

  // ---- SubscriberHost ----

  report(diagnostic: Diagnostic): void {
    this.#host.report(diagnostic)
  }

  detach(subscriber: Subscriber): void {
    this.unroute(subscriber)
  }

  unroute(subscriber: Subscriber): void {
    if (this.#host.router.remove(subscriber) && !subscriber.local) this.#host.interestChanged()
  }

  publishInternal(topic: string, data: unknown, headers: Readonly<Record<string, string>>, durable: boolean): Receipt {
    return this.#host.publisher.emit(topic, data, headers, UNCHECKED | (durable && this.#host.durable !== undefined ? DURABLE : 0))
  }

  // ---- the bus's side ----

  /** Shared set-up of every kind of subscription: validation, signal, routing, retained events. */
  attach<S extends Subscriber>(
    pattern: string,
    options: SubscribeOptions | undefined,
    create: (settings: SubscriberOptions) => S,
    extras: AttachExtras = {},
  ): S {
    const tokens = parsePattern(pattern)
    this.ensureOpen()
    const signal = options?.signal
    const durable = this.#checkDurable(options)
    const queue = options?.queue
    if (queue !== undefined) {
      if (typeof queue !== 'string' || queue.length === 0 || /\s/.test(queue)) {
        throw new TypeError(`crossbus: queue must be a non-empty name without whitespace, got ${quote(String(queue))}`)
      }
      if (durable !== undefined) {
        throw new TypeError(
          `crossbus: durable subscription ${quote(durable)} cannot join queue ${quote(queue)}: a durable consumer already runs one live instance per origin; give its processor concurrency instead`,
        )
      }
    }
    const subscriber = create({
      pattern,
      tokens,
      capacity: positiveInteger('capacity', options?.capacity, this.#host.capacity),
      overflow: overflowPolicy('overflow', options?.overflow, this.#host.overflow),
      local: options?.local === true,
      copy: options?.copy === true,
      durable,
      internal: extras.internal === true,
      single: extras.single === true,
      group: extras.group ?? (queue === undefined ? undefined : groupKey(queue, pattern)),
    })
    if (signal?.aborted) {
      subscriber.active = false
      return subscriber
    }
    // A queue group member tells the publisher elsewhere what it handled, so it is given work as it keeps up.
    const group = subscriber.group
    if (group?.startsWith('q ')) subscriber.afterHandled = (event) => this.#host.publisher.groupHandled(event, group)
    if (signal !== undefined) {
      const onAbort = (): void => subscriber.unsubscribe(abortReason(signal))
      signal.addEventListener('abort', onAbort, { once: true })
      subscriber.onEnd(() => signal.removeEventListener('abort', onAbort))
    }
    const last = options?.last === true
    if (durable === undefined) this.#route(subscriber, last)
    else {
      // Routed once it holds its consumer's lock and knows its cursor.
      subscriber.standby = true
      this.#standby.add(subscriber)
      subscriber.onEnd(() => this.#standby.delete(subscriber))
      ;(this.#host.durable as DurableEngine).consume(subscriber, durable, () => {
        subscriber.standby = false
        this.#standby.delete(subscriber)
        this.#route(subscriber, last)
        this.#watchLog()
      })
    }
    return subscriber
  }

  ensureOpen(): void {
    if (this.#closed) throw new CrossbusError('CLOSED', 'the bus is closed')
  }

  /**
   * This context's interest: the patterns of its subscriptions that other
   * contexts' events may reach (queue group members get theirs by assignment,
   * see memberships()).
   */
  patterns(): string[] {
    const patterns = new Set<string>()
    for (const subscriber of this.#host.router.all()) if (!subscriber.local && subscriber.group === undefined) patterns.add(subscriber.pattern)
    return [...patterns]
  }

  /** This context's queue group memberships, as record entries (see RouteRecord.groups): the capacity of its members of each, together. */
  memberships(): string[] {
    const capacities = new Map<string, { key: string; pattern: string; capacity: number }>()
    for (const subscriber of this.#host.router.all()) {
      if (subscriber.local || subscriber.group === undefined) continue
      const id = `${subscriber.group} ${subscriber.pattern}`
      const known = capacities.get(id)
      if (known === undefined) capacities.set(id, { key: subscriber.group, pattern: subscriber.pattern, capacity: subscriber.queue.capacity })
      else known.capacity += subscriber.queue.capacity
    }
    return [...capacities.values()].map(({ key, pattern, capacity }) => membershipEntry(key, pattern, capacity))
  }

  /** Stats of the subscriptions (internal ones hidden, standby ones shown), and the drops of the live ones. */
  stats(): { subscriptions: SubscriptionStats[]; dropped: number } {
    const subscriptions: SubscriptionStats[] = []
    let dropped = 0
    for (const subscriber of this.#host.router.all()) {
      dropped += subscriber.dropped
      if (!subscriber.internal) subscriptions.push(subscriber.stats())
    }
    for (const subscriber of this.#standby) subscriptions.push(subscriber.stats())
    return { subscriptions, dropped }
  }

  /** The bus is closing: no new subscriptions, and each one stops what it stops at once (processors, streams). */
  closing(reason: unknown): void {
    this.#closed = true
    for (const subscriber of this.#host.router.all()) subscriber.closing(reason)
  }

  /** Everything queued was delivered: the rest end, standby ones included. */
  closed(reason: unknown): void {
    for (const subscriber of this.#host.router.all()) subscriber.closed(reason)
    for (const subscriber of this.#standby) subscriber.unsubscribe(reason)
  }

  /** Puts a subscription in routing, tells peers, and gives a `last: true` one the retained events. */
  #route(subscriber: Subscriber, last: boolean): void {
    this.#host.router.add(subscriber)
    if (!subscriber.local) this.#host.interestChanged()
    if (last) this.#host.retained.start(subscriber)
  }

  /** The durable consumer name of a subscription, checked; undefined for others. */
  #checkDurable(options: SubscribeOptions | undefined): string | undefined {
    const durable = options?.durable
    if (durable === undefined) return undefined
    if (this.#host.durable === undefined)
      throw new CrossbusError('NO_STORE', `durable subscription ${quote(String(durable))} needs a store: pass createBus({ store })`)
    if (typeof durable !== 'string' || durable.length === 0)
      throw new TypeError(`crossbus: durable must be a non-empty consumer name, got ${quote(String(durable))}`)
    if (options?.local === true) {
      throw new TypeError(`crossbus: durable subscription ${quote(durable)} cannot be local: a replay comes from contexts that are gone`)
    }
    return durable
  }

  #watchLog(): void {
    if (this.#logWatcher === undefined || !this.#logWatcher.active) {
      this.#logWatcher = this.attach(LOG_TOPIC, { capacity: 1 }, (settings) => new HandlerSubscriber(this, settings, () => {}), { internal: true })
    }
  }
}

/** The public face of a subscription: detached functions over it. */
export function toSubscription(subscriber: Subscriber): Subscription {
  const unsubscribe = (): void => subscriber.unsubscribe()
  return {
    pattern: subscriber.pattern,
    unsubscribe,
    stats: () => subscriber.stats(),
    [disposeSymbol]: unsubscribe,
  }
}
