/**
 * IndexedDB for tests: the real one in Chromium, fake-indexeddb where there is
 * none (Node). Each test gets databases of its own.
 */
import { IDBDatabase, IDBFactory, IDBKeyRange, IDBObjectStore, IDBRequest, IDBTransaction } from 'fake-indexeddb'

export const realIndexedDb = typeof indexedDB !== 'undefined'
if (!realIndexedDb) {
  const globals = globalThis as Record<string, unknown>
  globals.indexedDB = new IDBFactory()
  const classes = { IDBKeyRange, IDBObjectStore, IDBTransaction, IDBDatabase, IDBRequest }
  for (const [name, value] of Object.entries(classes)) globals[name] ??= value
}

let databases = 0

/** A database name no other test uses. */
export function freshDbName(prefix = 'crossbus-test'): string {
  return `${prefix}-${Date.now()}-${++databases}`
}

/** Opens a database as another tab would, without crossbus: for tests that tamper with the log. */
function openRaw(dbName: string): Promise<IDBDatabase> {
  return new Promise((resolve, reject) => {
    const request = indexedDB.open(dbName)
    request.onupgradeneeded = () => request.result.createObjectStore('log')
    request.onsuccess = () => resolve(request.result)
    request.onerror = () => reject(request.error)
  })
}

/** Writes records straight into a crossbus log's object store (a corrupt record, a tampered counter). */
export async function writeRaw(dbName: string, entries: readonly [IDBValidKey, unknown][]): Promise<void> {
  const db = await openRaw(dbName)
  try {
    await new Promise<void>((resolve, reject) => {
      const transaction = db.transaction('log', 'readwrite')
      const store = transaction.objectStore('log')
      for (const [key, value] of entries) store.put(value, key)
      transaction.oncomplete = () => resolve()
      transaction.onerror = () => reject(transaction.error)
      transaction.onabort = () => reject(transaction.error)
    })
  } finally {
    db.close()
  }
}

/** Reads one record of a crossbus log's object store. */
export async function readRaw(dbName: string, key: IDBValidKey): Promise<unknown> {
  const db = await openRaw(dbName)
  try {
    return await new Promise((resolve, reject) => {
      const request = db.transaction('log', 'readonly').objectStore('log').get(key)
      request.onsuccess = () => resolve(request.result)
      request.onerror = () => reject(request.error)
    })
  } finally {
    db.close()
  }
}

/** Deletes a database as another tab (or "clear site data") would; open crossbus connections let go of it. */
export function deleteDatabase(dbName: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const request = indexedDB.deleteDatabase(dbName)
    request.onsuccess = () => resolve()
    request.onerror = () => reject(request.error)
  })
}
