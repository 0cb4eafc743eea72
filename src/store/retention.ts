import { matchTokens, parsePatterns } from '../topic.js'
import type { ConsumerState } from '../types.js'

export interface RetentionOptions {
  /** Events older than this many milliseconds are evicted, acked or not. Default: kept. */
  maxAge?: number
  /**
   * At most this many events are kept; the oldest beyond it are evicted, so a
   * consumer that never comes back cannot make the log grow without bound.
   * Default 100 000.
   */
  maxEvents?: number
}

/** Default bound of a log. */
export const DEFAULT_MAX_EVENTS = 100_000

export function checkRetention(options: RetentionOptions): Required<RetentionOptions> {
  const { maxAge = Number.POSITIVE_INFINITY, maxEvents = DEFAULT_MAX_EVENTS } = options
  if (!(maxAge > 0)) throw new TypeError(`crossbus: maxAge must be > 0, got ${String(maxAge)}`)
  if (!(maxEvents >= 1)) throw new TypeError(`crossbus: maxEvents must be >= 1, got ${String(maxEvents)}`)
  return { maxAge, maxEvents }
}

/** What compaction needs of a stored event; a store may have anything there, so nothing is trusted. */
export interface RetentionEntry {
  readonly position: number
  readonly topic: unknown
  readonly time: unknown
  /** Published with `retain: true`; absent where a store did not record it (judged not retained). */
  readonly retain?: unknown
}

/**
 * Which stored events leave the log: 'delete' when at least one consumer
 * matches an event and every matching consumer has acked it, or when it is a
 * retained event that a later retained event of its topic replaced
 * (`latestRetained`: topic → position of the last retained event, which
 * retained() keeps) and no matching consumer still needs it; 'evict' when it
 * is past maxAge or beyond maxEvents (counted apart, since no one may have
 * handled it). Events are given oldest first. A malformed event (a topic that
 * is not a string) matches no consumer and is judged by age and count only; a
 * malformed consumer record is ignored.
 */
export function retentionVerdicts(
  events: readonly RetentionEntry[],
  consumers: readonly ConsumerState[],
  retention: Required<RetentionOptions>,
  now: number,
  latestRetained: ReadonlyMap<string, number> = new Map(),
): ('keep' | 'delete' | 'evict')[] {
  const parsed: { tokens: string[]; cursor: number }[] = []
  for (const consumer of consumers) {
    const [tokens] = parsePatterns([consumer?.pattern as string])
    if (tokens !== undefined && typeof consumer.cursor === 'number') parsed.push({ tokens, cursor: consumer.cursor })
  }
  const overflow = events.length - retention.maxEvents
  return events.map((event, index) => {
    const topic = typeof event.topic === 'string' ? event.topic : undefined
    const tokens = topic === undefined ? [] : topic.split('.')
    let matched = false
    let pending = false
    for (const consumer of parsed) {
      if (!matchTokens(consumer.tokens, tokens)) continue
      matched = true
      if (consumer.cursor < event.position) pending = true
    }
    if (matched && !pending) return 'delete'
    if (!pending && event.retain === true && topic !== undefined && (latestRetained.get(topic) ?? Number.NEGATIVE_INFINITY) > event.position) return 'delete'
    if (index < overflow || (typeof event.time === 'number' && now - event.time > retention.maxAge)) return 'evict'
    return 'keep'
  })
}

/** Topic → position of the last retained event of each, from what retained() keeps (malformed entries ignored). */
export function latestRetained(events: readonly unknown[]): Map<string, number> {
  const latest = new Map<string, number>()
  for (const event of events) {
    const { topic, position } = (event ?? {}) as { topic?: unknown; position?: unknown }
    if (typeof topic === 'string' && typeof position === 'number' && position > (latest.get(topic) ?? Number.NEGATIVE_INFINITY)) latest.set(topic, position)
  }
  return latest
}
