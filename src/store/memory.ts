import type { ConsumerState, Store, StoredEvent } from '../types.js'
import { checkRetention, retentionVerdicts, type RetentionOptions } from './retention.js'

/**
 * A durable log in memory: the same behaviour as indexedDbStore(), for Node,
 * the edge and tests. It lives as long as the process (or worker) does.
 *
 * @example
 * const bus = createBus({ store: memoryStore({ maxEvents: 10_000 }) })
 */
export function memoryStore(options: RetentionOptions = {}): Store {
  const retention = checkRetention(options)
  let events: StoredEvent[] = []
  const consumers = new Map<string, ConsumerState>()
  let next = 1
  return {
    append(batch) {
      const positions: number[] = []
      for (const event of batch) {
        const position = next++
        positions.push(position)
        // Stored as a copy, as IndexedDB would: the publisher may change its object later.
        events.push({ ...structuredClone(event), position })
      }
      return Promise.resolve(positions)
    },
    read(after, limit) {
      const found: StoredEvent[] = []
      for (const event of events) {
        if (found.length >= limit) break
        if (event.position > after) found.push(structuredClone(event))
      }
      return Promise.resolve(found)
    },
    register(name, pattern) {
      let state = consumers.get(name)
      if (state === undefined) {
        state = { pattern, cursor: 0 }
        consumers.set(name, state)
      } else if (state.pattern !== pattern) {
        state = { ...state, pattern }
        consumers.set(name, state)
      }
      return Promise.resolve(state)
    },
    ack(name, cursor) {
      const state = consumers.get(name)
      if (state !== undefined && cursor > state.cursor) consumers.set(name, { ...state, cursor })
      return Promise.resolve()
    },
    compact(now = Date.now()) {
      const verdicts = retentionVerdicts(events, [...consumers.values()], retention, now)
      let deleted = 0
      let evicted = 0
      events = events.filter((_event, index) => {
        const verdict = verdicts[index]
        if (verdict === 'delete') deleted++
        else if (verdict === 'evict') evicted++
        return verdict === 'keep'
      })
      return Promise.resolve({ deleted, evicted })
    },
    close() {},
  }
}
