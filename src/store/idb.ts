import { delMany, promisifyRequest, setMany, type UseStore } from 'idb-keyval'
import { defineStore } from '../durable.js'
import { CrossbusError } from '../errors.js'
import { knownOptions } from '../options.js'
import type { ConsumerState, Store, StoredEvent } from '../types.js'
import { storageError } from './errors.js'
import { checkRetention, retentionVerdicts, type RetentionOptions } from './retention.js'

export interface IndexedDbStoreOptions extends RetentionOptions {
  /** Database name: contexts of an origin that use the same name share the log. Default 'crossbus'. */
  dbName?: string | undefined
  /**
   * Milliseconds to wait for the database to open before failing with
   * STORAGE_UNAVAILABLE: an open waits, without any event, while another
   * connection blocks a version change or a deletion. Default 5000.
   */
  openTimeout?: number | undefined
}

const OBJECT_STORE = 'log'
const DEFAULT_OPEN_TIMEOUT = 5000
/**
 * Layout of the object store: 'next' holds the next position to hand out.
 * The events of one append are one record, ['b', last position] → StoredEvent[]
 * (one put per transaction, not one per event: IndexedDB's cost is mostly per
 * record), beside a small summary ['m', last position] → positions, topics and
 * times, from which compaction judges without reading any event's data.
 * Consumers are under ['c', name], the last retained event of a topic under ['r', topic].
 */
const NEXT = 'next'
type BatchKey = [kind: 'b' | 'm', last: number]
interface Summary {
  positions: number[]
  topics: string[]
  times: number[]
}
const batchKey = (last: number): BatchKey => ['b', last]
const summaryKey = (last: number): BatchKey => ['m', last]
const consumerKey = (name: string): IDBValidKey => ['c', name]
const retainedKey = (topic: string): IDBValidKey => ['r', topic]
/** Every key of one kind (a function: IDBKeyRange does not exist where IndexedDB does not). */
const kindRange = (kind: string): IDBKeyRange => IDBKeyRange.bound([kind], [kind, []])
/** Batches holding an event after `position`: their last position is greater. */
const batchesAfter = (position: number): IDBKeyRange => IDBKeyRange.bound(batchKey(position), batchKey(Number.POSITIVE_INFINITY), true)

/** idb-keyval's UseStore for a transaction already open: its helpers then run inside it. */
const inTransaction =
  (store: IDBObjectStore): UseStore =>
  (_mode, callback) =>
    Promise.resolve(callback(store))

function summarize(events: readonly StoredEvent[]): Summary {
  return { positions: events.map((event) => event.position), topics: events.map((event) => event.topic), times: events.map((event) => event.time) }
}

/**
 * Opens the database as idb-keyval's createStore does, and also: fails after
 * `timeout` ms instead of waiting forever behind a blocked version change,
 * and lets go of the connection when another one asks for a version change
 * (`forget` makes the next transaction reopen).
 */
function openStore(dbName: string, timeout: number, forget: () => void): UseStore {
  const opened = new Promise<IDBDatabase>((resolve, reject) => {
    let late = false
    const request = indexedDB.open(dbName)
    request.onupgradeneeded = () => request.result.createObjectStore(OBJECT_STORE)
    const timer = setTimeout(() => {
      late = true
      forget()
      reject(
        new CrossbusError(
          'STORAGE_UNAVAILABLE',
          `IndexedDB database ${JSON.stringify(dbName)} did not open within ${timeout} ms: another connection blocks it (a version change or a deletion)`,
        ),
      )
    }, timeout)
    promisifyRequest(request).then(
      (db) => {
        clearTimeout(timer)
        // Opened after the timeout: nobody waits for this connection any more.
        if (late) return db.close()
        db.onversionchange = () => {
          db.close()
          forget()
        }
        db.onclose = forget
        resolve(db)
      },
      (error: unknown) => {
        clearTimeout(timer)
        reject(error)
      },
    )
  })
  return (mode, callback) => opened.then((db) => callback(db.transaction(OBJECT_STORE, mode).objectStore(OBJECT_STORE)))
}

/**
 * The durable log in IndexedDB, through idb-keyval: one log per origin and
 * `dbName`, shared by every tab and worker. Each append is one transaction,
 * which also hands out the positions, so contexts appending at once never
 * collide.
 *
 * @example
 * import { indexedDbStore } from 'crossbus/idb'
 * const bus = createBus({ store: indexedDbStore({ maxAge: 7 * 24 * 3600_000 }) })
 */
export function indexedDbStore(options: IndexedDbStoreOptions = {}): Store {
  knownOptions('indexedDbStore', options, ['dbName', 'openTimeout', 'maxAge', 'maxEvents'])
  const { dbName = 'crossbus', openTimeout = DEFAULT_OPEN_TIMEOUT, ...rest } = options
  if (typeof dbName !== 'string' || dbName.length === 0) throw new TypeError('crossbus: dbName must be a non-empty string')
  if (!(openTimeout > 0)) throw new TypeError(`crossbus: openTimeout must be > 0, got ${String(openTimeout)}`)
  const retention = checkRetention(rest)
  let use: UseStore | undefined
  const forget = (): void => {
    use = undefined
  }

  /** Runs one transaction; opens the database lazily, and once more if the browser closed the connection. */
  async function transact<T>(mode: IDBTransactionMode, work: (store: IDBObjectStore) => Promise<T>): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      const current = use
      try {
        if (typeof indexedDB === 'undefined') throw new CrossbusError('STORAGE_UNAVAILABLE', 'IndexedDB is not available in this context')
        use ??= openStore(dbName, openTimeout, forget)
        return await (use as UseStore)(mode, (store) =>
          work(store).catch((error: unknown) => {
            // A request that threw (a DataCloneError) would otherwise let the others commit.
            try {
              store.transaction.abort()
            } catch {
              // Already finished or aborted.
            }
            throw error
          }),
        )
      } catch (error) {
        // Safari and Chromium close idle or backgrounded connections: https://bugs.webkit.org/show_bug.cgi?id=226547
        if (attempt === 1 && (error as { name?: unknown } | null)?.name === 'InvalidStateError') {
          if (use === current) use = undefined
          continue
        }
        throw storageError(error)
      }
    }
  }

  /** Resolves when the transaction commits; rejects with its error (a QuotaExceededError) when it aborts. */
  const done = (store: IDBObjectStore): Promise<void> => promisifyRequest(store.transaction)

  return defineStore({
    name: `indexeddb:${dbName}`,
    append(events) {
      return transact('readwrite', async (store) => {
        const next = ((await promisifyRequest(store.get(NEXT))) as number | undefined) ?? 1
        const stored = events.map((event, index) => ({ ...event, position: next + index }))
        const last = next + events.length - 1
        const entries: [IDBValidKey, unknown][] = [[NEXT, next + events.length]]
        if (events.length > 0) entries.push([batchKey(last), stored], [summaryKey(last), summarize(stored)])
        for (const event of stored) if (event.retain) entries.push([retainedKey(event.topic), event])
        // idb-keyval's setMany, in this transaction (the positions were read in it): resolves once committed.
        await setMany(entries, inTransaction(store))
        return stored.map((event) => event.position)
      })
    },
    read(after, limit) {
      return transact('readonly', (store) => {
        const found: StoredEvent[] = []
        const request = store.openCursor(batchesAfter(after))
        return new Promise<StoredEvent[]>((resolve, reject) => {
          request.onerror = () => reject(request.error)
          request.onsuccess = () => {
            const cursor = request.result
            if (cursor === null) return resolve(found)
            for (const event of cursor.value as StoredEvent[]) {
              if (event.position <= after) continue
              if (found.length >= limit) return resolve(found)
              found.push(event)
            }
            if (found.length >= limit) return resolve(found)
            cursor.continue()
          }
        })
      })
    },
    retained() {
      return transact('readonly', (store) => promisifyRequest(store.getAll(kindRange('r'))) as Promise<StoredEvent[]>)
    },
    register(name, pattern) {
      return transact('readwrite', async (store) => {
        const known = (await promisifyRequest(store.get(consumerKey(name)))) as ConsumerState | undefined
        const state = known === undefined ? { pattern, cursor: 0 } : { ...known, pattern }
        store.put(state, consumerKey(name))
        await done(store)
        return state
      })
    },
    ack(name, cursor) {
      return transact('readwrite', async (store) => {
        const known = (await promisifyRequest(store.get(consumerKey(name)))) as ConsumerState | undefined
        if (known !== undefined && cursor > known.cursor) store.put({ ...known, cursor }, consumerKey(name))
        await done(store)
      })
    },
    async compact(now = Date.now()) {
      // Judged from the summaries in one read. Cursors only move forward, so an event judged done
      // stays done; a consumer registered in between starts after it anyway. The batches are then
      // changed in one transaction, from what they hold by then (another context may compact too).
      const [summaries, lasts, consumers] = await transact('readonly', (store) =>
        Promise.all([
          promisifyRequest(store.getAll(kindRange('m'))) as Promise<Summary[]>,
          promisifyRequest(store.getAllKeys(kindRange('m'))) as Promise<BatchKey[]>,
          promisifyRequest(store.getAll(kindRange('c'))) as Promise<ConsumerState[]>,
        ]),
      )
      const events: Pick<StoredEvent, 'position' | 'topic' | 'time'>[] = []
      for (const summary of summaries) {
        summary.positions.forEach((position, index) => {
          events.push({ position, topic: summary.topics[index] as string, time: summary.times[index] as number })
        })
      }
      const verdicts = retentionVerdicts(events, consumers, retention, now)
      const doomed = new Set<number>()
      let deleted = 0
      let evicted = 0
      verdicts.forEach((verdict, index) => {
        if (verdict === 'keep') return
        if (verdict === 'delete') deleted++
        else evicted++
        doomed.add((events[index] as StoredEvent).position)
      })
      if (doomed.size === 0) return { deleted, evicted }
      const whole: IDBValidKey[] = []
      const partial: number[] = []
      summaries.forEach((summary, index) => {
        const last = (lasts[index] as BatchKey)[1]
        const gone = summary.positions.filter((position) => doomed.has(position)).length
        if (gone === summary.positions.length) whole.push(batchKey(last), summaryKey(last))
        else if (gone > 0) partial.push(last)
      })
      await transact('readwrite', async (store) => {
        for (const last of partial) {
          const batch = (await promisifyRequest(store.get(batchKey(last)))) as StoredEvent[] | undefined
          if (batch === undefined) continue
          const kept = batch.filter((event) => !doomed.has(event.position))
          store.put(kept, batchKey(last))
          store.put(summarize(kept), summaryKey(last))
        }
        // idb-keyval's delMany, in this transaction: it resolves when the transaction commits.
        await delMany(whole, inTransaction(store))
      })
      return { deleted, evicted }
    },
    close() {
      const current = use
      use = undefined
      void current?.('readonly', (store) => store.transaction.db.close()).catch(() => {})
    },
  })
}
