/**
 * The durable engine's seam. The engine (src/durable.ts) comes with a store
 * (indexedDbStore(), memoryStore(), or any Store passed through defineStore()),
 * so an app that uses no store ships none of it. This module is a leaf: a
 * symbol and types.
 */
import type { Offered, Subscriber } from './subscriber.js'
import type { BusEvent, Diagnostic, Store } from './types.js'

/** Where a store carries the factory of its durable engine. */
export const STORE_ENGINE: unique symbol = Symbol.for('crossbus.store-engine')

/** What the durable engine needs from its bus. */
export interface DurableHost {
  /** This context's id (the source of its events). */
  readonly id: string
  /** The bus name: durable consumer locks are per bus name and store. */
  readonly name: string
  report(diagnostic: Diagnostic): void
  /** stored: committed; evicted: compacted away unhandled; rejected: malformed records skipped in the log. */
  count(field: 'stored' | 'evicted' | 'rejected', amount: number): void
  /** Tells the other contexts that the log grew (they read it). */
  announce(position: number): void
  /** The retained durable events the store kept, loaded once at start. */
  restoreRetained(events: readonly BusEvent[]): void
}

/** The bus's side of a durable log. */
export interface DurableEngine {
  /** Queues a durable event for the next append transaction; `persisted` of its receipt. */
  append(event: BusEvent, retain: boolean): { readonly promise: Promise<void> }
  /** The log may have grown (another context said so), to `position` where it said (a number from the wire: checked). */
  grew(position?: unknown): void
  /**
   * A live event for a durable subscription (routed to it, in publish or from a link). A durable event
   * is not queued (DROPPED: the subscription reads it from the store) but noted, so that a plain event
   * of the same source published after it waits until it was read: FIFO per source. A plain event is
   * offered, or held (QUEUED) behind such a durable event.
   */
  live(subscriber: Subscriber, event: BusEvent, durable: boolean): Offered
  /** Starts a durable subscription: it waits for its consumer's lock, then `activate` routes it, and it replays and follows. */
  consume(subscriber: Subscriber, name: string, activate: () => void): void
  /** Resolves when every event appended so far is committed or has failed. */
  flush(): Promise<void>
  /** The bus is closing: consumers read nothing more from the log; what they hold is still handled and acked. */
  closing(): void
  /** Waits for appends, every consumer's last ack and every store call under way; stops compacting; closes the store's connection. */
  close(): Promise<void>
}

export type DurableEngineFactory = (host: DurableHost, store: Store) => DurableEngine

/** A store that brings its engine. */
export type EngineStore = Store & { readonly [STORE_ENGINE]?: DurableEngineFactory }
