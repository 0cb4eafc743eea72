import type { Subscriber } from './subscriber.js'
import { matchTokens, parseTopic } from './topic.js'
import type { BusEvent } from './types.js'

/** What retained state needs from its bus. */
export interface RetainedHost {
  /** This context's id: a `local` subscription starts from its own retained events only. */
  readonly id: string
  /** Asks peers for their retained events matching `patterns`; the ask's number, or undefined with no links. */
  ask(patterns: readonly string[]): number | undefined
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
  /** Retained-state asks to peers: ask number → the `last: true` subscription waiting. */
  readonly #asks = new Map<number, Subscriber>()
  /** `last: true` subscriptions that found nothing retained here; asked again when a peer joins. */
  readonly #waiting = new Set<Subscriber>()
  /** Retained durable events are still being loaded from the store (see restore). */
  #restoring: boolean

  constructor(host: RetainedHost, restoring: boolean) {
    this.#host = host
    this.#restoring = restoring
  }

  /** Keeps an event as its topic's last (a publish here, or one from a peer flagged retained). */
  keep(event: BusEvent, tokens: readonly string[], local: boolean): void {
    this.#kept.set(event.topic, { event, tokens, local })
  }

  /** The retained event of `topic` this context holds, if any (INVALID_TOPIC for a malformed topic). */
  get(topic: string): BusEvent | undefined {
    const kept = this.#kept.get(topic)
    if (kept === undefined) parseTopic(topic)
    return kept?.event
  }

  /** This context's retained events (not `local` ones) that match one of the patterns: a peer asked. */
  matching(patterns: readonly (readonly string[])[]): BusEvent[] {
    return this.#matching((kept) => !kept.local && patterns.some((pattern) => matchTokens(pattern, kept.tokens)))
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
    if (ask !== undefined) this.#asks.set(ask, subscriber)
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

  /** A peer joined: the subscriptions still waiting ask again. */
  peerJoined(): void {
    for (const subscriber of this.#waiting) {
      const ask = this.#host.ask([subscriber.pattern])
      if (ask !== undefined) this.#asks.set(ask, subscriber)
    }
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
      this.keep(event, tokens, false)
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
      for (const [ask, asker] of this.#asks) if (asker === subscriber) this.#asks.delete(ask)
    })
  }

  /** The one place retained events are matched. */
  #matching(accept: (kept: Kept) => boolean): BusEvent[] {
    const found: BusEvent[] = []
    for (const kept of this.#kept.values()) if (accept(kept)) found.push(kept.event)
    return found
  }
}
