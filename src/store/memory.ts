import { defineStore } from '../durable.js'
import { randomId } from '../ids.js'
import type { ConsumerState, Store, StoredEvent } from '../types.js'
import { storageError } from './errors.js'
import { checkRetention, type RetentionOptions, retentionVerdicts } from './retention.js'

/** Index of the first event whose position is greater than `after` (events are sorted by position). */
function firstAfter(events: readonly StoredEvent[], after: number): number {
  let low = 0
  let high = events.length
  while (low < high) {
    const middle = (low + high) >>> 1
    if ((events[middle] as StoredEvent).position <= after) low = middle + 1
    else high = middle
  }
  return low
}

/** Names each memory log: contexts never share one, so each is its own log for locks (which may span an origin). */
const processId = randomId()
let stores = 0

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
  /** The last retained event of each topic; kept when the event itself leaves the log. */
  const retained = new Map<string, StoredEvent>()
  let next = 1
  return defineStore({
    name: `memory:${processId}:${++stores}`,
    append(batch) {
      let copies: Omit<StoredEvent, 'position'>[]
      try {
        // Stored as copies, as IndexedDB would: the publisher may change its objects later.
        copies = structuredClone(batch) as Omit<StoredEvent, 'position'>[]
      } catch (error) {
        // All or nothing, as one transaction.
        return Promise.reject(storageError(error))
      }
      return Promise.resolve(
        copies.map((copy) => {
          const stored = { ...copy, position: next++ }
          events.push(stored)
          if (stored.retain) retained.set(stored.topic, stored)
          return stored.position
        }),
      )
    },
    read(after, limit) {
      // Past the end: this log never handed that position out, so the reader knew another log; from the start.
      const from = after >= next ? 0 : after
      const found: StoredEvent[] = []
      // Positions are sorted: the first one after `from` is found by bisection, so a read costs what it returns.
      for (let index = firstAfter(events, from); index < events.length && found.length < limit; index++)
        found.push(structuredClone(events[index] as StoredEvent))
      return Promise.resolve(found)
    },
    retained() {
      return Promise.resolve([...retained.values()].map((event) => structuredClone(event)))
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
      const latest = new Map([...retained.values()].map((event) => [event.topic, event.position]))
      const verdicts = retentionVerdicts(events, [...consumers.values()], retention, now, latest)
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
  })
}
