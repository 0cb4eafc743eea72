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
