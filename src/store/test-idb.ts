/**
 * IndexedDB for tests: the real one in Chromium, fake-indexeddb where there is
 * none (Node). Each test gets databases of its own.
 */
import * as fake from 'fake-indexeddb'

export const realIndexedDb = typeof indexedDB !== 'undefined'
if (!realIndexedDb) {
  const globals = globalThis as Record<string, unknown>
  globals.indexedDB = new fake.IDBFactory()
  for (const name of ['IDBKeyRange', 'IDBObjectStore', 'IDBTransaction', 'IDBDatabase', 'IDBRequest'] as const) globals[name] ??= fake[name]
}

let databases = 0

/** A database name no other test uses. */
export function freshDbName(prefix = 'crossbus-test'): string {
  return `${prefix}-${Date.now()}-${++databases}`
}
