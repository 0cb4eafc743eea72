import { matchTokens, parsePattern } from '../topic.js'
import type { ConsumerState, StoredEvent } from '../types.js'

export interface RetentionOptions {
  /** Events older than this many milliseconds are evicted, acked or not. Default: kept. */
  maxAge?: number | undefined
  /**
   * At most this many events are kept; the oldest beyond it are evicted, so a
   * consumer that never comes back cannot make the log grow without bound.
   * Default 100 000.
   */
  maxEvents?: number | undefined
}

/** Default bound of a log. */
export const DEFAULT_MAX_EVENTS = 100_000

export function checkRetention(options: RetentionOptions): { readonly maxAge: number; readonly maxEvents: number } {
  const { maxAge = Number.POSITIVE_INFINITY, maxEvents = DEFAULT_MAX_EVENTS } = options
  if (!(maxAge > 0)) throw new TypeError(`crossbus: maxAge must be > 0, got ${String(maxAge)}`)
  if (!(maxEvents >= 1)) throw new TypeError(`crossbus: maxEvents must be >= 1, got ${String(maxEvents)}`)
  return { maxAge, maxEvents }
}

/**
 * Which stored events leave the log: 'delete' when at least one consumer
 * matches an event and every matching consumer has acked it; 'evict' when it
 * is past maxAge or beyond maxEvents (counted apart, since no one may have
 * handled it). Events are given oldest first.
 */
export function retentionVerdicts(
  events: readonly Pick<StoredEvent, 'position' | 'topic' | 'time'>[],
  consumers: readonly ConsumerState[],
  retention: { readonly maxAge: number; readonly maxEvents: number },
  now: number,
): ('keep' | 'delete' | 'evict')[] {
  const parsed = consumers.map((consumer) => ({ tokens: parsePattern(consumer.pattern), cursor: consumer.cursor }))
  const overflow = events.length - retention.maxEvents
  return events.map((event, index) => {
    const tokens = event.topic.split('.')
    let matched = false
    let pending = false
    for (const consumer of parsed) {
      if (!matchTokens(consumer.tokens, tokens)) continue
      matched = true
      if (consumer.cursor < event.position) pending = true
    }
    if (matched && !pending) return 'delete'
    if (index < overflow || now - event.time > retention.maxAge) return 'evict'
    return 'keep'
  })
}
