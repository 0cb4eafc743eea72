import { IDBFactory } from 'fake-indexeddb'
import { describe, expect, test, vi } from 'vitest'
import { indexedDbStore } from './idb.js'
import { memoryStore } from './memory.js'
import { describeStore, event } from './test-store-conformance.js'

// Real IndexedDB in Chromium; fake-indexeddb where there is none (Node).
const realIndexedDb = typeof indexedDB !== 'undefined'
if (!realIndexedDb) (globalThis as { indexedDB?: IDBFactory }).indexedDB = new IDBFactory()
if (typeof IDBKeyRange === 'undefined') {
  const { IDBKeyRange: FakeKeyRange } = await import('fake-indexeddb')
  ;(globalThis as { IDBKeyRange?: unknown }).IDBKeyRange = FakeKeyRange
}

let databases = 0
/** One database per test, so tests cannot see each other's logs; two handles of one test share theirs. */
let current = ''

// Handles made in the same task share a log (the suite's "two handles on one log"); later ones start afresh.
let sharedMemory: ReturnType<typeof memoryStore> | undefined
describeStore('memoryStore', (options) => {
  if (options !== undefined) return memoryStore(options)
  if (sharedMemory === undefined) {
    sharedMemory = memoryStore()
    queueMicrotask(() => (sharedMemory = undefined))
  }
  return sharedMemory
})

describeStore(`indexedDbStore (${realIndexedDb ? 'IndexedDB' : 'fake-indexeddb'})`, (options) => {
  if (options === undefined) {
    current ||= `crossbus-test-${Date.now()}-${++databases}`
    const store = indexedDbStore({ dbName: current })
    queueMicrotask(() => (current = ''))
    return store
  }
  return indexedDbStore({ dbName: `crossbus-test-${Date.now()}-${++databases}`, ...options })
})

describe('indexedDbStore failures', () => {
  test('rejects with STORAGE_UNAVAILABLE where there is no IndexedDB, and nothing else breaks', async () => {
    vi.stubGlobal('indexedDB', undefined)
    try {
      const store = indexedDbStore({ dbName: 'nowhere' })
      await expect(store.append([event(1)])).rejects.toMatchObject({ code: 'STORAGE_UNAVAILABLE' })
    } finally {
      vi.unstubAllGlobals()
    }
  })

  test('reopens by itself after close()', async () => {
    const store = indexedDbStore({ dbName: `crossbus-reopen-${Date.now()}` })
    await store.append([event(1)])
    store.close()
    await store.append([event(2)])
    expect((await store.read(0, 10)).map((stored) => stored.seq)).toEqual([1, 2])
  })
})
