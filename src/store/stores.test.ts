import { describe, expect, test, vi } from 'vitest'
import { indexedDbStore } from './idb.js'
import { memoryStore } from './memory.js'
import { describeStore, event } from '../../test/store-conformance.js'
import { deleteDatabase, freshDbName, readRaw, realIndexedDb, writeRaw } from '../../test/idb.js'

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

  test('a record that is not a batch of events comes back as a bare placeholder at its position; the read goes on past it', async () => {
    const dbName = freshDbName()
    const store = indexedDbStore({ dbName })
    await store.append([event(1), event(2)])
    // As another library or a bug might leave it: a string where a batch belongs, and a batch with holes in it.
    await writeRaw(dbName, [
      [['b', 3], 'not a batch'],
      [
        ['b', 6],
        [null, { ...event(5), position: 5 }, 7],
      ],
      ['next', 7],
    ])
    await store.append([event(7)])
    const read = await store.read(0, 10)
    expect(read.map((stored) => [stored.position, stored.seq])).toEqual([
      [1, 1],
      [2, 2],
      [3, undefined],
      [4, undefined],
      [5, 5],
      [6, undefined],
      [7, 7],
    ])
    expect(read[2]).toEqual({ position: 3, generation: read[0]?.generation })
    expect((await store.read(4, 1)).map((stored) => stored.position)).toEqual([5])
    expect(await store.compact(2_000)).toEqual({ deleted: 0, evicted: 0 })
    store.close()
  })

  test('a malformed counter or consumer record never makes positions repeat or a cursor jump', async () => {
    const dbName = freshDbName()
    const store = indexedDbStore({ dbName })
    const [first] = await store.append([event(1), event(2)])
    await writeRaw(dbName, [
      ['next', 'seven'],
      [['c', 'mailer'], { pattern: 'orders.*', cursor: 'far' }],
    ])
    const [next] = await store.append([event(3)])
    expect(next).toBe((first as number) + 2)
    expect(await store.register('mailer', 'orders.*')).toEqual({ pattern: 'orders.*', cursor: 0 })
    expect(await readRaw(dbName, 'next')).toBe((next as number) + 1)
    store.close()
  })

  test('a database deleted and created again is another generation: reads say so, and a reader past its end starts from its start', async () => {
    const dbName = freshDbName()
    const one = indexedDbStore({ dbName })
    const other = indexedDbStore({ dbName })
    await one.append([event(1), event(2), event(3)])
    const [before] = await other.read(0, 1)
    expect(before?.generation).toEqual(expect.any(String))
    expect((await one.read(0, 1))[0]?.generation).toBe(before?.generation)
    await deleteDatabase(dbName)
    await one.append([event(4)])
    const after = await other.read(3, 10)
    expect(after.map((stored) => [stored.position, stored.seq])).toEqual([[1, 4]])
    expect(after[0]?.generation).not.toBe(before?.generation)
    one.close()
    other.close()
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
