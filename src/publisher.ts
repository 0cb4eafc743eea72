import { cloneError } from './cloneable.js'
import type { Counters } from './counters.js'
import type { DurableEngine } from './engine.js'
import { DURABLE, EMPTY_HEADERS, Envelope, RETAINED } from './envelope.js'
import { CrossbusError, quote } from './errors.js'
import { createEventIds } from './ids.js'
import type { Network, Outlet } from './network.js'
import { headersOption } from './options.js'
import type { RetainedState } from './retained.js'
import type { Router } from './router.js'
import { DROPPED, EVICTED, type Subscriber } from './subscriber.js'
import { checkPublishable } from './topic.js'
import type { BusEvent, PublishOptions, Receipt } from './types.js'

/** Reserved topic on which a context says its durable log grew (data: the last position). */
export const LOG_TOPIC = '$log.appended'

/**
 * How an event is emitted, as bits: RETAINED and DURABLE (they travel with
 * the envelope), LOCAL (never handed to a link), UNCHECKED (the bus's own
 * events, which skip the cloneable check).
 */
export const LOCAL = 4
export const UNCHECKED = 8
const ENVELOPE_FLAGS = RETAINED | DURABLE

/** Publishes that may share one Date.now() reading within a task (a few microseconds at most). */
const CLOCK_READS_SHARED = 128
const RESOLVED: Promise<void> = Promise.resolve()

/** What publishing needs from its bus. */
export interface PublisherHost {
  /** This context's id: the source of its events. */
  readonly id: string
  readonly counters: Counters
  readonly router: Router<Subscriber>
  readonly network: Network | undefined
  readonly durable: DurableEngine | undefined
  readonly retained: RetainedState
  /** true: check every publish; undefined: those a link takes or the store keeps; false: none. */
  readonly validate: boolean | undefined
}

/**
 * The receipt; `id` is built only when asked for, which most publishers never
 * do. Its fields are assigned, not defined as class fields (a definition each
 * costs more than the assignment, on every publish).
 */
class PublishReceipt implements Receipt {
  declare readonly queued: number
  declare readonly dropped: number
  /** @internal */
  declare readonly ids: (seq: number) => string
  /** @internal */
  declare readonly seq: number
  /** @internal The append transaction of a durable event. */
  declare readonly append: { readonly promise: Promise<void> } | undefined

  constructor(ids: (seq: number) => string, seq: number, queued: number, dropped: number, append: { readonly promise: Promise<void> } | undefined) {
    const self = this as { -readonly [K in 'ids' | 'seq' | 'queued' | 'dropped' | 'append']: PublishReceipt[K] }
    self.ids = ids
    self.seq = seq
    self.queued = queued
    self.dropped = dropped
    self.append = append
  }

  get id(): string {
    return this.ids(this.seq)
  }

  get persisted(): Promise<void> {
    return this.append === undefined ? RESOLVED : this.append.promise
  }
}

/**
 * Where events enter this context's queues: its own publishes (sequence,
 * clock, ids, the receipt; the links and the store that take them) and the
 * events that arrive from other contexts.
 */
export class Publisher {
  readonly #host: PublisherHost
  readonly #ids: (seq: number) => string
  #seq = 0
  #closed = false
  // Date.now() costs as much as the rest of a publish; a burst in one task shares a reading.
  #time = 0
  #timeReadsLeft = 0
  readonly #resetClock = (): void => {
    this.#timeReadsLeft = 0
  }

  constructor(host: PublisherHost) {
    this.#host = host
    this.#ids = createEventIds(host.id)
  }

  /** publish(): checked options, then the one publish path. */
  publish(topic: string, data: unknown, options?: PublishOptions): Receipt {
    if (this.#closed) throw new CrossbusError('CLOSED', 'the bus is closed')
    checkPublishable(topic)
    if (options === undefined) return this.emit(topic, data, EMPTY_HEADERS, 0)
    const durable = options.durable === true
    if (durable && this.#host.durable === undefined) {
      this.#host.router.route(topic)
      throw new CrossbusError('NO_STORE', 'durable publish needs a store: pass createBus({ store })')
    }
    // The store is shared by every context of the origin: a durable event cannot stay in this one.
    if (durable && options.local === true) throw new TypeError('crossbus: a publish cannot be both durable and local')
    const headers = options.headers === undefined ? EMPTY_HEADERS : headersOption(options.headers)
    const flags = (options.retain === true ? RETAINED : 0) | (options.local === true ? LOCAL : 0) | (durable ? DURABLE : 0)
    return this.emit(topic, data, headers, flags)
  }

  /** The one publish path: validated topic, bounded queues, never a handler call. `flags`: RETAINED, DURABLE, LOCAL, UNCHECKED. */
  emit(topic: string, data: unknown, headers: Readonly<Record<string, string>>, flags: number): Receipt {
    const host = this.#host
    const { targets, tokens } = host.router.route(topic)
    const network = host.network
    // Links are chosen once: the choice decides validation, and the same links then get the event.
    let links = network === undefined || (flags & LOCAL) !== 0 ? undefined : network.linksFor(topic, tokens)
    const durable = (flags & DURABLE) !== 0
    const checked =
      (flags & UNCHECKED) === 0 && (host.validate === true || (host.validate === undefined && ((links !== undefined && links.length > 0) || durable)))
    if (checked) checkCloneable(topic, data)
    // Starting up: links that do not know their peers' interest yet take it too (if it can cross: nobody asked for it).
    if (links !== undefined && (network as Network).discovering && (checked || cloneError(data) === undefined))
      links = (network as Network).discoveryOutlets(links)
    const crossing = links !== undefined && links.length > 0
    const seq = ++this.#seq
    host.counters.published++
    let event: BusEvent | undefined
    let queued = 0
    let dropped = 0
    // Only a bus with a store has durable subscriptions.
    const engine = host.durable
    for (let index = 0; index < targets.length; index++) {
      const target = targets[index] as Subscriber
      // Durable subscriptions take durable events from the store; a plain one may wait behind them (FIFO per source).
      if (engine !== undefined && target.durable !== undefined) {
        event ??= this.#envelope(topic, data, seq, headers, flags)
        const offered = engine.live(target, event, durable)
        if (durable) continue
        if (offered !== DROPPED) queued++
        if (offered === EVICTED || (offered === DROPPED && target.active)) dropped++
        continue
      }
      if (target.refuses()) {
        dropped++
        // Only the first drop of a report needs its event id.
        target.drops.record(topic, target.drops.reporting ? this.#ids(seq) : '')
        continue
      }
      event ??= this.#envelope(topic, data, seq, headers, flags)
      const offered = target.offer(event)
      if (offered !== DROPPED) queued++
      if (offered === EVICTED) dropped++
    }
    const retain = (flags & RETAINED) !== 0
    if (crossing || retain || durable) event ??= this.#envelope(topic, data, seq, headers, flags)
    if (retain) host.retained.keep(event as BusEvent, tokens, (flags & LOCAL) !== 0)
    if (crossing) {
      const sent = (network as Network).send(event as BusEvent, links as readonly Outlet[])
      queued += sent.queued
      dropped += sent.dropped
    }
    const persisted = durable ? (host.durable as DurableEngine).append(event as BusEvent, retain) : undefined
    return new PublishReceipt(this.#ids, seq, queued, dropped, persisted)
  }

  /**
   * An event from another context: to local subscriptions (not `local: true`
   * ones), kept if retained; false for an invalid topic (wire input).
   */
  deliverRemote(event: BusEvent): boolean {
    const host = this.#host
    if (event.topic === LOG_TOPIC) {
      host.durable?.grew(event.data)
      return true
    }
    let route: { readonly targets: readonly Subscriber[]; readonly tokens: readonly string[] }
    try {
      route = host.router.route(event.topic)
    } catch {
      return false
    }
    const flags = Envelope.flags(event)
    const durable = (flags & DURABLE) !== 0
    for (const target of route.targets) {
      if (target.local) continue
      // A durable subscription reads durable events from the store, where they are in order and acked; a plain one may wait behind them.
      if (host.durable !== undefined && target.durable !== undefined) host.durable.live(target, event, durable)
      else target.offer(event)
    }
    if ((flags & RETAINED) !== 0) host.retained.keep(event, route.tokens, false)
    return true
  }

  /** Tells the links that want it that the durable log grew: not app traffic, so straight to them. */
  announceLog(position: number): void {
    const network = this.#host.network
    if (network === undefined) return
    const wanted = network.linksFor(LOG_TOPIC, this.#host.router.tokens(LOG_TOPIC))
    const links = network.discovering ? network.discoveryOutlets(wanted) : wanted
    if (links.length === 0) return
    const seq = ++this.#seq
    network.send(this.#envelope(LOG_TOPIC, position, seq, EMPTY_HEADERS, 0), links)
  }

  /** publish() throws CLOSED from now on. */
  close(): void {
    this.#closed = true
  }

  #envelope(topic: string, data: unknown, seq: number, headers: Readonly<Record<string, string>>, flags: number): BusEvent {
    const time = this.#timestamp()
    return new Envelope({ id: this.#ids(seq), topic, data, source: this.#host.id, seq, time, headers, redelivered: false }, flags & ENVELOPE_FLAGS)
  }

  #timestamp(): number {
    if (this.#timeReadsLeft <= 0) {
      this.#time = Date.now()
      this.#timeReadsLeft = CLOCK_READS_SHARED
      queueMicrotask(this.#resetClock)
    }
    this.#timeReadsLeft--
    return this.#time
  }
}

function checkCloneable(topic: string, data: unknown): void {
  const error = cloneError(data)
  if (error !== undefined) {
    throw new CrossbusError('NOT_CLONEABLE', `the data published on ${quote(topic)} cannot be structured-cloned`, { cause: error })
  }
}
