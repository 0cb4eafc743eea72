import { createStore, promisifyRequest, type UseStore } from 'idb-keyval'
import { CrossbusError } from '../errors.js'
import type { ConsumerState, Store, StoredEvent } from '../types.js'
import { checkRetention, retentionVerdicts, type RetentionOptions } from './retention.js'

export interface IndexedDbStoreOptions extends RetentionOptions {
  /** Database name: contexts of an origin that use the same name share the log. Default 'crossbus'. */
  dbName?: string
}

const OBJECT_STORE = 'log'
/** Key of the next position to hand out; events are under ['e', position], consumers under ['c', name]. */
const NEXT = 'next'
const eventKey = (position: number): IDBValidKey => ['e', position]
const consumerKey = (name: string): IDBValidKey => ['c', name]
/** Every consumer's key (a function: IDBKeyRange does not exist where IndexedDB does not). */
const consumerRange = (): IDBKeyRange => IDBKeyRange.bound(['c', ''], ['c', []])

/** The error a caller can act on, with the platform's error as its cause. */
function storageError(error: unknown): CrossbusError {
  if (error instanceof CrossbusError) return error
  const name = (error as { name?: unknown } | null)?.name
  if (name === 'QuotaExceededError') return new CrossbusError('QUOTA_EXCEEDED', 'the IndexedDB quota is exceeded', { cause: error })
  return new CrossbusError('STORAGE_UNAVAILABLE', `IndexedDB is unavailable: ${String((error as { message?: unknown } | null)?.message ?? error)}`, { cause: error })
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
  const { dbName = 'crossbus', ...rest } = options
  const retention = checkRetention(rest)
  let use: UseStore | undefined

  /** Runs one transaction; opens the database lazily, and once more if the browser closed the connection. */
  async function transact<T>(mode: IDBTransactionMode, work: (store: IDBObjectStore) => Promise<T>): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      try {
        if (typeof indexedDB === 'undefined') throw new CrossbusError('STORAGE_UNAVAILABLE', 'IndexedDB is not available in this context')
        use ??= createStore(dbName, OBJECT_STORE)
        return await use(mode, work)
      } catch (error) {
        // Safari and Chromium close idle or backgrounded connections: https://bugs.webkit.org/show_bug.cgi?id=226547
        if (attempt === 1 && (error as { name?: unknown } | null)?.name === 'InvalidStateError') {
          use = undefined
          continue
        }
        throw storageError(error)
      }
    }
  }

  const done = (store: IDBObjectStore): Promise<void> => promisifyRequest(store.transaction)

  return {
    append(events) {
      return transact('readwrite', async (store) => {
        const next = ((await promisifyRequest(store.get(NEXT))) as number | undefined) ?? 1
        const positions = events.map((_event, index) => next + index)
        events.forEach((event, index) => store.put({ ...event, position: next + index }, eventKey(next + index)))
        store.put(next + events.length, NEXT)
        await done(store)
        return positions
      })
    },
    read(after, limit) {
      return transact('readonly', (store) =>
        promisifyRequest(store.getAll(IDBKeyRange.bound(eventKey(after), eventKey(Number.POSITIVE_INFINITY), true), limit)) as Promise<StoredEvent[]>,
      )
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
    compact(now = Date.now()) {
      return transact('readwrite', async (store) => {
        const events = (await promisifyRequest(store.getAll(IDBKeyRange.bound(eventKey(0), eventKey(Number.POSITIVE_INFINITY))))) as StoredEvent[]
        const consumers = (await promisifyRequest(store.getAll(consumerRange()))) as ConsumerState[]
        const verdicts = retentionVerdicts(events, consumers, retention, now)
        let deleted = 0
        let evicted = 0
        verdicts.forEach((verdict, index) => {
          if (verdict === 'keep') return
          if (verdict === 'delete') deleted++
          else evicted++
          store.delete(eventKey((events[index] as StoredEvent).position))
        })
        await done(store)
        return { deleted, evicted }
      })
    },
    close() {
      const current = use
      use = undefined
      void current?.('readonly', (store) => store.transaction.db.close()).catch(() => {})
    },
  }
}
