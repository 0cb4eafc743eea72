/**
 * The origin id: one per device, bus name and bridge name, the same for every context that
 * holds the connection in turn, so events this device exported are known as
 * its own when they come back (from a JetStream consumer, after a failover).
 * Kept in IndexedDB where there is one; elsewhere (Node, workerd) a random id
 * per process.
 */
import { randomId } from '../../ids.js'

const DB_NAME = 'crossbus-nats'
const STORE = 'origin'
/** An IndexedDB that does not answer in this time is not waited for: a random id serves this holder. */
const TIMEOUT_MS = 2000

const generated = new Map<string, string>()

/** This device's origin id for `key` (bus name and bridge name; a holder asks once, when it takes over). */
export async function originId(key: string): Promise<string> {
  const factory = (globalThis as { indexedDB?: IDBFactory }).indexedDB
  if (factory !== undefined) {
    try {
      return await withTimeout(stored(factory, key), TIMEOUT_MS)
    } catch {
      // No storage here (a private mode, an opaque origin): fall through.
    }
  }
  let id = generated.get(key)
  if (id === undefined) generated.set(key, (id = `${randomId()}${randomId()}`))
  return id
}

/** Reads the id, or writes a new one, in one readwrite transaction: two contexts asking at once get the same id. */
function stored(factory: IDBFactory, name: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const open = factory.open(DB_NAME, 1)
    open.onupgradeneeded = () => open.result.createObjectStore(STORE)
    open.onerror = () => reject(open.error)
    open.onblocked = () => reject(new Error('blocked'))
    open.onsuccess = () => {
      const db = open.result
      const transaction = db.transaction(STORE, 'readwrite')
      const store = transaction.objectStore(STORE)
      let id: string | undefined
      const read = store.get(name)
      read.onsuccess = () => {
        if (typeof read.result === 'string' && read.result.length > 0) id = read.result
        else store.put((id = `${randomId()}${randomId()}`), name)
      }
      transaction.oncomplete = () => {
        db.close()
        if (id === undefined) reject(new Error('no origin id'))
        else resolve(id)
      }
      transaction.onerror = () => {
        db.close()
        reject(transaction.error)
      }
      transaction.onabort = () => {
        db.close()
        reject(transaction.error)
      }
    }
  })
}

function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined
  return Promise.race([
    promise,
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error('timed out')), ms)
    }),
  ]).finally(() => clearTimeout(timer))
}
