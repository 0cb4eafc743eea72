import { describe, expect, test, vi } from 'vitest'
import { indexedDbStore } from './idb.js'
import { memoryStore } from './memory.js'
import { describeStore, event } from '../../test/store-conformance.js'
import { freshDbName, realIndexedDb } from '../../test/idb.js'

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
    current ||= freshDbName()
    const store = indexedDbStore({ dbName: current })
    queueMicrotask(() => (current = ''))
    return store
  }
  return indexedDbStore({ dbName: freshDbName(), ...options })
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

describe('indexedDbStore: what browsers do to a database', () => {
  test('a quota exceeded while appending rejects with QUOTA_EXCEEDED, the cause kept, and the log is as before', async () => {
    const store = indexedDbStore({ dbName: freshDbName() })
    const [first] = await store.append([event(1)])
    const quota = new DOMException('The quota has been exceeded.', 'QuotaExceededError')
    const put = vi.spyOn(IDBObjectStore.prototype, 'put').mockImplementationOnce(() => {
      throw quota
    })
    try {
      const failure = await store.append([event(2)]).catch((error: unknown) => error)
      expect(failure).toMatchObject({ code: 'QUOTA_EXCEEDED', cause: quota })
    } finally {
      put.mockRestore()
    }
    const [next] = await store.append([event(3)])
    expect(next).toBe((first as number) + 1)
    expect((await store.read(0, 10)).map((stored) => stored.seq)).toEqual([1, 3])
    store.close()
  })

  test('an open blocked behind another connection fails with STORAGE_UNAVAILABLE after openTimeout, then works once unblocked', async () => {
    const dbName = freshDbName()
    const store = indexedDbStore({ dbName, openTimeout: 200 })
    await store.append([event(1)])
    store.close()
    // Another connection that ignores versionchange, and a deletion waiting behind it:
    // opens queue behind the deletion without any event.
    const holder = await new Promise<IDBDatabase>((resolve, reject) => {
      const request = indexedDB.open(dbName)
      request.onsuccess = () => resolve(request.result)
      request.onerror = () => reject(request.error)
    })
    const deletion = indexedDB.deleteDatabase(dbName)
    const deleted = new Promise<void>((resolve) => (deletion.onsuccess = () => resolve()))
    const failure = await store.read(0, 10).catch((error: unknown) => error)
    expect(failure).toMatchObject({ code: 'STORAGE_UNAVAILABLE' })
    expect(String((failure as Error).message)).toMatch(/did not open within 200 ms/)
    holder.close()
    await deleted
    // The database was deleted meanwhile: a fresh, empty log.
    expect(await store.read(0, 10)).toEqual([])
    store.close()
  })

  test('lets go of its connection when another asks for a version change, and reopens when used', async () => {
    const dbName = freshDbName()
    const store = indexedDbStore({ dbName })
    await store.append([event(1)])
    const upgraded = await new Promise<IDBDatabase>((resolve, reject) => {
      const request = indexedDB.open(dbName, 2)
      request.onsuccess = () => resolve(request.result)
      request.onerror = () => reject(request.error)
      request.onblocked = () => reject(new Error('blocked by the store'))
    })
    upgraded.close()
    expect((await store.read(0, 10)).map((stored) => stored.seq)).toEqual([1])
    store.close()
  })
})
