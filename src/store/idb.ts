import { delMany, promisifyRequest, setMany, type UseStore } from 'idb-keyval'
import { defineStore } from '../durable.js'
import { CrossbusError } from '../errors.js'
import { randomId } from '../ids.js'
import type { ConsumerState, Store, StoredEvent } from '../types.js'
import { storageError } from './errors.js'
import { checkRetention, latestRetained, type RetentionEntry, retentionVerdicts, type RetentionOptions } from './retention.js'

export interface IndexedDbStoreOptions extends RetentionOptions {
  /** Database name: contexts of an origin that use the same name share the log. Default 'crossbus'. */
  dbName?: string
  /**
   * Milliseconds to wait for the database to open before failing with
   * STORAGE_UNAVAILABLE: an open waits, without any event, while another
   * connection blocks a version change or a deletion. Default 5000.
   */
  openTimeout?: number
}

const OBJECT_STORE = 'log'
const DEFAULT_OPEN_TIMEOUT = 5000
/**
 * Layout of the object store: 'next' holds the next position to hand out.
 * The events of one append are one record, ['b', last position] → StoredEvent[]
 * (one put per transaction, not one per event: IndexedDB's cost is mostly per
 * record), beside a small summary ['m', last position] → positions, topics,
 * times and retain flags, from which compaction judges without reading any
 * event's data. Consumers are under ['c', name], the last retained event of a
 * topic under ['r', topic]. 'generation' is a random id written when the
 * database is created: a database deleted (another tab, "clear site data") and
 * created again has another, and its positions start again at 1.
 */
const NEXT = 'next'
const GENERATION = 'generation'
type BatchKey = [kind: 'b' | 'm', last: number]
interface Summary {
  positions: number[]
  topics: string[]
  times: number[]
  /** Absent in summaries written before it existed: those events count as not retained. */
  retain?: boolean[]
}
const batchKey = (last: number): BatchKey => ['b', last]
const summaryKey = (last: number): BatchKey => ['m', last]
const consumerKey = (name: string): IDBValidKey => ['c', name]
const retainedKey = (topic: string): IDBValidKey => ['r', topic]
/** Every key of one kind (a function: IDBKeyRange does not exist where IndexedDB does not). */
const kindRange = (kind: string): IDBKeyRange => IDBKeyRange.bound([kind], [kind, []])
/** Batches holding an event after `position`: their last position is greater. */
const batchesAfter = (position: number): IDBKeyRange => IDBKeyRange.bound(batchKey(position), batchKey(Number.POSITIVE_INFINITY), true)

/** The next position when the counter is missing or malformed: after the last batch, so positions never repeat. */
async function nextAfterBatches(store: IDBObjectStore): Promise<number> {
  const cursor = await promisifyRequest(store.openKeyCursor(kindRange('b'), 'prev'))
  const last = cursor === null ? 0 : (cursor.key as BatchKey)[1]
  return Number.isSafeInteger(last) && last >= 0 ? last + 1 : 1
}

/** idb-keyval's UseStore for a transaction already open: its helpers then run inside it. */
const inTransaction =
  (store: IDBObjectStore): UseStore =>
  (_mode, callback) =>
    Promise.resolve(callback(store))

/** The summary of a batch; what is in it is not trusted (compaction may rewrite a batch written by anyone). */
function summarize(events: readonly StoredEvent[]): Summary {
  const fields = events as readonly (Partial<StoredEvent> | null | undefined)[]
  return {
    positions: fields.map((event) => event?.position as number),
    topics: fields.map((event) => event?.topic as string),
    times: fields.map((event) => event?.time as number),
    retain: fields.map((event) => event?.retain === true),
  }
}

/** A summary as compaction can use it, or undefined for a malformed one (its batch is then left alone). */
function summaryEntries(summary: unknown): RetentionEntry[] | undefined {
  const { positions, topics, times, retain } = (summary ?? {}) as Partial<Record<keyof Summary, unknown>>
  if (!Array.isArray(positions) || !Array.isArray(topics) || !Array.isArray(times)) return undefined
  const entries: RetentionEntry[] = []
  for (let index = 0; index < positions.length; index++) {
    const position: unknown = positions[index]
    if (typeof position !== 'number') return undefined
    entries.push({ position, topic: topics[index], time: times[index], retain: Array.isArray(retain) ? retain[index] : false })
  }
  return entries
}

/**
 * The events of one batch record as a reader gets them, never throwing on what
 * it finds: each at its position, oldest first, above `floor` and at most the
 * record's last position. What is not an event with such a position (a record
 * that is not an array, an entry that is not an object) comes back as a bare
 * `{ position }` placeholder where it stood, which the engine reports and skips.
 */
function batchEntries(value: unknown, last: number, floor: number): StoredEvent[] {
  const entries: unknown[] = Array.isArray(value) ? value : [undefined]
  const found: StoredEvent[] = []
  let previous = floor
  for (let index = 0; index < entries.length; index++) {
    const entry = entries[index]
    const position = entry !== null && typeof entry === 'object' ? (entry as { position?: unknown }).position : undefined
    if (typeof position === 'number' && position > previous && position <= last) {
      found.push(entry as StoredEvent)
      previous = position
      continue
    }
    // Where it stood: positions of a batch were handed out in a row.
    const placed = Math.max(previous + 1, last - (entries.length - 1 - index))
    if (placed > last) continue
    found.push({ position: placed } as StoredEvent)
    previous = placed
  }
  return found
}

/** A consumer record as read back: a malformed one counts as none (the consumer starts over: duplicates, never a gap). */
function consumerState(known: unknown): ConsumerState | undefined {
  const { pattern, cursor } = (known ?? {}) as Partial<ConsumerState>
  return typeof pattern === 'string' && typeof cursor === 'number' && cursor >= 0 ? { pattern, cursor } : undefined
}

/** One connection: its transactions, and closing it (transactions already asked for still finish). */
interface Connection {
  readonly use: UseStore
  close(): void
}

/**
 * Opens the database as idb-keyval's createStore does, and also: fails after
 * `timeout` ms instead of waiting forever behind a blocked version change,
 * lets go of the connection when another one asks for a version change
 * (`forget` makes the next transaction reopen), and gives a new database its
 * generation.
 */
function openStore(dbName: string, timeout: number, forget: () => void): Connection {
  const opened = new Promise<IDBDatabase>((resolve, reject) => {
    let late = false
    const request = indexedDB.open(dbName)
    request.onupgradeneeded = () => request.result.createObjectStore(OBJECT_STORE).put(randomId(), GENERATION)
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
  return {
    use: (mode, callback) => opened.then((db) => callback(db.transaction(OBJECT_STORE, mode).objectStore(OBJECT_STORE))),
    // After the callbacks already waiting for the connection have made their transactions.
    close: () => void opened.then((db) => db.close()).catch(() => {}),
  }
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
  const { dbName = 'crossbus', openTimeout = DEFAULT_OPEN_TIMEOUT, ...rest } = options
  if (typeof dbName !== 'string' || dbName.length === 0) throw new TypeError('crossbus: dbName must be a non-empty string')
  if (!(openTimeout > 0)) throw new TypeError(`crossbus: openTimeout must be > 0, got ${String(openTimeout)}`)
  const retention = checkRetention(rest)
  let connection: Connection | undefined
  const forget = (): void => {
    connection = undefined
  }

  /** Runs one transaction; opens the database lazily, and once more if the browser closed the connection. */
  async function transact<T>(mode: IDBTransactionMode, work: (store: IDBObjectStore) => Promise<T>): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      const current = connection
      try {
        if (typeof indexedDB === 'undefined') throw new CrossbusError('STORAGE_UNAVAILABLE', 'IndexedDB is not available in this context')
        connection ??= openStore(dbName, openTimeout, forget)
        return await connection.use(mode, (store) =>
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
          if (connection === current) connection = undefined
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
        const counter = await promisifyRequest(store.get(NEXT))
        const next = Number.isSafeInteger(counter) && (counter as number) >= 1 ? (counter as number) : await nextAfterBatches(store)
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
      return transact('readonly', async (store) => {
        const counter = store.get(NEXT)
        const generation = (await promisifyRequest(store.get(GENERATION))) as string | undefined
        // Past the end: this log never handed that position out, so the reader knew another one; from the start.
        const from = typeof counter.result === 'number' && after >= counter.result ? 0 : after
        const found: StoredEvent[] = []
        const request = store.openCursor(batchesAfter(from))
        /** The last position of the batch before, once one was read: a batch's events come after it. */
        let floor = 0
        return new Promise<StoredEvent[]>((resolve, reject) => {
          request.onerror = () => reject(request.error)
          request.onsuccess = () => {
            const cursor = request.result
            if (cursor === null) return resolve(found)
            const last = (cursor.key as BatchKey)[1]
            const events = batchEntries(cursor.value, last, floor)
            floor = last
            for (const event of events) {
              if (event.position <= from) continue
              if (found.length >= limit) return resolve(found)
              if (generation !== undefined) (event as { generation?: string }).generation = generation
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
        const known = consumerState(await promisifyRequest(store.get(consumerKey(name))))
        const state = { pattern, cursor: known?.cursor ?? 0 }
        store.put(state, consumerKey(name))
        await done(store)
        return state
      })
    },
    ack(name, cursor) {
      return transact('readwrite', async (store) => {
        const known = consumerState(await promisifyRequest(store.get(consumerKey(name))))
        if (known !== undefined && cursor > known.cursor) store.put({ ...known, cursor }, consumerKey(name))
        await done(store)
      })
    },
    async compact(now = Date.now()) {
      // Judged from the summaries in one read. Cursors only move forward, so an event judged done
      // stays done; a consumer registered in between starts after it anyway. The batches are then
      // changed in one transaction, from what they hold by then (another context may compact too).
      const [summaries, lasts, consumers, retained] = await transact('readonly', (store) =>
        Promise.all([
          promisifyRequest(store.getAll(kindRange('m'))) as Promise<unknown[]>,
          promisifyRequest(store.getAllKeys(kindRange('m'))) as Promise<BatchKey[]>,
          promisifyRequest(store.getAll(kindRange('c'))) as Promise<ConsumerState[]>,
          promisifyRequest(store.getAll(kindRange('r'))) as Promise<unknown[]>,
        ]),
      )
      const events: RetentionEntry[] = []
      /** The positions of each summary compaction could read; a malformed one leaves its batch alone. */
      const batches: { last: number; positions: number[] }[] = []
      summaries.forEach((summary, index) => {
        const entries = summaryEntries(summary)
        if (entries === undefined) return
        events.push(...entries)
        batches.push({ last: (lasts[index] as BatchKey)[1], positions: entries.map((entry) => entry.position) })
      })
      const verdicts = retentionVerdicts(events, consumers, retention, now, latestRetained(retained))
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
      for (const { last, positions } of batches) {
        const gone = positions.filter((position) => doomed.has(position)).length
        if (gone === positions.length) whole.push(batchKey(last), summaryKey(last))
        else if (gone > 0) partial.push(last)
      }
      await transact('readwrite', async (store) => {
        for (const last of partial) {
          const batch = (await promisifyRequest(store.get(batchKey(last)))) as unknown
          if (!Array.isArray(batch)) continue
          const kept = (batch as StoredEvent[]).filter((event) => !doomed.has(event?.position))
          store.put(kept, batchKey(last))
          store.put(summarize(kept), summaryKey(last))
        }
        // idb-keyval's delMany, in this transaction: it resolves when the transaction commits.
        await delMany(whole, inTransaction(store))
      })
      return { deleted, evicted }
    },
    close() {
      const current = connection
      connection = undefined
      current?.close()
    },
  })
}
