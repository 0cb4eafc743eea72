import { DropCounter } from './diagnostics.js'
import { PatternIndex } from './router.js'
import type { Subscriber } from './subscriber.js'
import { throttle } from './throttle.js'
import { matchTokens, parseTopic } from './topic.js'
import type { BusEvent, Diagnostic } from './types.js'

/** Topics whose retained event came from a peer, kept at most: the least recently retained is forgotten first. */
export const MAX_RETAINED = 4096
/** After asking peers again for a peer that joined, wait this long before the next time (joins meanwhile: one ask). */
const REASK_MS = 250

/** What retained state needs from its bus. */
export interface RetainedHost {
  /** This context's id: a `local` subscription starts from its own retained events only. */
  readonly id: string
  /** Asks peers for their retained events matching `patterns`; the ask's number, or undefined with no links. */
  ask(patterns: readonly string[]): number | undefined
  report(diagnostic: Diagnostic): void
  /** Retained events from peers forgotten to stay within MAX_RETAINED: counted as dropped. */
  dropped(count: number): void
}

interface Kept {
  readonly event: BusEvent
  readonly tokens: readonly string[]
  /** Published with `local: true`: peers asking for retained state do not get it. */
  readonly local: boolean
}

/**
 * The last retained event of each topic, for `last: true` subscriptions: kept
 * from local and remote publishes and from the store, handed to a new
 * subscription, and asked of peers when this context has none (again when a
 * peer joins, until one answers).
 */
export class RetainedState {
  readonly #host: RetainedHost
  readonly #kept = new Map<string, Kept>()
  /** Topics kept from peers, least recently retained first (at most MAX_RETAINED): a peer cannot grow the table without bound. */
  readonly #fromPeers = new Set<string>()
  readonly #forgotten: DropCounter
  /** Retained-state asks to peers: ask number → the `last: true` subscription waiting; one (the latest) per subscription. */
  readonly #asks = new Map<number, Subscriber>()
  readonly #askOf = new Map<Subscriber, number>()
  /** The waiting subscriptions ask again: at once, then at most once per REASK_MS. */
  readonly #reask = throttle(() => {
    for (const subscriber of this.#waiting) {
      const ask = this.#host.ask([subscriber.pattern])
      if (ask !== undefined) this.#asked(subscriber, ask)
    }
  }, REASK_MS)
  /** `last: true` subscriptions that found nothing retained here; asked again when a peer joins. */
  readonly #waiting = new Set<Subscriber>()
  /** Retained durable events are still being loaded from the store (see restore). */
  #restoring: boolean

  constructor(host: RetainedHost, restoring: boolean) {
    this.#host = host
    this.#restoring = restoring
    this.#forgotten = new DropCounter((first, count) =>
      host.report({
        type: 'drop',
        topic: first.topic,
        eventId: first.id,
        count,
        message: `crossbus: retained state from peers is full (${MAX_RETAINED} topics): forgot the retained event of ${count} topic(s), the least recently retained first`,
      }),
    )
  }

  /**
   * Keeps an event as its topic's last (a publish here, or one from a peer
   * flagged retained). Topics a peer retained are at most MAX_RETAINED;
   * `fromStore`: restored from this origin's store, which bounds them itself.
   */
  keep(event: BusEvent, tokens: readonly string[], local: boolean, fromStore = false): void {
    const topic = event.topic
    const fromPeers = this.#fromPeers
    if (fromStore || event.source === this.#host.id) fromPeers.delete(topic)
    else if (fromPeers.delete(topic) || fromPeers.size < MAX_RETAINED) fromPeers.add(topic)
    else {
      const oldest = fromPeers.values().next().value as string
      fromPeers.delete(oldest)
      const forgotten = this.#kept.get(oldest)
      this.#kept.delete(oldest)
      this.#forgotten.record(oldest, forgotten?.event.id ?? '')
      this.#host.dropped(1)
      fromPeers.add(topic)
    }
    this.#kept.set(topic, { event, tokens, local })
  }

  /** The retained event of `topic` this context holds, if any (INVALID_TOPIC for a malformed topic). */
  get(topic: string): BusEvent | undefined {
    const kept = this.#kept.get(topic)
    if (kept === undefined) parseTopic(topic)
    return kept?.event
  }

  /** This context's retained events (not `local` ones) that match one of the patterns: a peer asked. */
  matching(patterns: readonly (readonly string[])[]): BusEvent[] {
    // Indexed, so a request with many patterns costs one walk per retained topic, not one match per pattern.
    const index = new PatternIndex()
    for (const pattern of patterns) index.add(pattern)
    return this.#matching((kept) => !kept.local && index.matches(kept.tokens))
  }

  /** A `last: true` subscription starts: the matching retained events first, or an ask to peers (and the store) when there are none. */
  start(subscriber: Subscriber): void {
    const self = this.#host.id
    // A local subscription starts from this context's own retained events only.
    const found = this.#matching((kept) => (!subscriber.local || kept.event.source === self) && matchTokens(subscriber.tokens, kept.tokens))
    for (const event of found) subscriber.offer(event)
    if (found.length > 0 || subscriber.local) return
    const ask = this.#host.ask([subscriber.pattern])
    if (ask === undefined && !this.#restoring) return
    this.#wait(subscriber)
    if (ask !== undefined) this.#asked(subscriber, ask)
  }

  /** A peer answered an ask; false when the event's topic is malformed (wire input). */
  answered(ask: number, event: BusEvent): boolean {
    let tokens: readonly string[]
    try {
      tokens = parseTopic(event.topic)
    } catch {
      return false
    }
    const subscriber = this.#asks.get(ask)
    if (subscriber === undefined || !subscriber.active || !matchTokens(subscriber.tokens, tokens)) return true
    if (!this.#kept.has(event.topic)) this.keep(event, tokens, false)
    // The first answer ends the wait: later peers are not asked again for this subscription.
    this.#waiting.delete(subscriber)
    subscriber.offer(event)
    return true
  }

  /**
   * A peer joined: the subscriptions still waiting ask again, at most once
   * per REASK_MS (joins meanwhile are answered by one more ask at its end), so
   * a flood of joins costs a few asks, not one per join.
   */
  peerJoined(): void {
    if (this.#waiting.size > 0) this.#reask()
  }

  /** A subscription's latest ask replaces its earlier one: each ask goes to every peer, so nothing is missed. */
  #asked(subscriber: Subscriber, ask: number): void {
    const previous = this.#askOf.get(subscriber)
    if (previous !== undefined) this.#asks.delete(previous)
    this.#askOf.set(subscriber, ask)
    this.#asks.set(ask, subscriber)
  }

  /**
   * Retained durable events loaded from the store (none if that failed): kept
   * unless something newer arrived meanwhile, and given to the waiting.
   */
  restore(events: readonly BusEvent[]): void {
    this.#restoring = false
    for (const event of events) {
      if (this.#kept.has(event.topic)) continue
      const tokens = parseTopic(event.topic)
      this.keep(event, tokens, false, true)
      for (const subscriber of this.#waiting) {
        if (!subscriber.active || !matchTokens(subscriber.tokens, tokens)) continue
        subscriber.offer(event)
        this.#waiting.delete(subscriber)
      }
    }
  }

  #wait(subscriber: Subscriber): void {
    if (this.#waiting.has(subscriber)) return
    this.#waiting.add(subscriber)
    subscriber.onEnd(() => {
      this.#waiting.delete(subscriber)
      const ask = this.#askOf.get(subscriber)
      this.#askOf.delete(subscriber)
      if (ask !== undefined) this.#asks.delete(ask)
    })
  }

  /** The one place retained events are matched. */
  #matching(accept: (kept: Kept) => boolean): BusEvent[] {
    const found: BusEvent[] = []
    for (const kept of this.#kept.values()) if (accept(kept)) found.push(kept.event)
    return found
  }
}
