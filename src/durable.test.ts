// Durable publish and durable subscriptions over every store: memoryStore, and
// indexedDbStore on fake-indexeddb (Node) or on real IndexedDB (Chromium).
import { describe, expect, test, vi } from 'vitest'
import { createBus } from './bus.js'
import { CrossbusError } from './errors.js'
import { indexedDbStore } from './store/idb.js'
import { memoryStore } from './store/memory.js'
import { freshDbName, realIndexedDb } from '../test/idb.js'
import { codeOf, deferred, diagnostics, localBus, recorder } from '../test/helpers.js'
import { messageChannelPair } from '../test/link-conformance.js'
import type { BusEvent, Diagnostic, Store } from './types.js'

/** A new log; `open()` gives another handle on it (another context's, for IndexedDB). */
interface Log {
  store: Store
  open(): Store
}

const logs: [string, (options?: { maxEvents?: number }) => Log][] = [
  [
    'memoryStore',
    (options) => {
      const store = memoryStore(options)
      return { store, open: () => store }
    },
  ],
  [
    `indexedDbStore (${realIndexedDb ? 'IndexedDB' : 'fake-indexeddb'})`,
    (options) => {
      const dbName = freshDbName('crossbus-durable')
      return { store: indexedDbStore({ dbName, ...options }), open: () => indexedDbStore({ dbName, ...options }) }
    },
  ],
]

/** Resolves with the first diagnostic of a type. */
function firstOf(type: Diagnostic['type']): { onDiagnostic: (diagnostic: Diagnostic) => void; seen: Promise<Diagnostic> } {
  const seen = deferred<Diagnostic>()
  return { onDiagnostic: (diagnostic) => diagnostic.type === type && seen.resolve(diagnostic), seen: seen.promise }
}

const seqs = (events: readonly BusEvent[]): unknown[] => events.map((event) => event.data)

describe.each(logs)('durable log on %s', (_name, newLog) => {
  test('persisted resolves once the event is committed; non-durable receipts resolve at once', async () => {
    const { store } = newLog()
    const bus = localBus({ store })
    const receipt = bus.publish('orders.created', { id: 1 }, { durable: true, headers: { trace: 't1' } })
    await receipt.persisted
    const [stored] = await store.read(0, 10)
    expect(stored).toMatchObject({ id: receipt.id, topic: 'orders.created', data: { id: 1 }, headers: { trace: 't1' }, retain: false })
    await expect(bus.publish('orders.created', { id: 2 }).persisted).resolves.toBeUndefined()
    expect(await store.read(0, 10)).toHaveLength(1)
    expect(bus.stats().stored).toBe(1)
    await bus.close()
  })

  test('a burst published in one task is one append transaction', async () => {
    const { store } = newLog()
    const append = vi.spyOn(store, 'append')
    const bus = localBus({ store })
    const receipts = Array.from({ length: 300 }, (_, index) => bus.publish('orders.created', index, { durable: true }))
    await Promise.all(receipts.map((receipt) => receipt.persisted))
    expect(append).toHaveBeenCalledTimes(1)
    expect(append.mock.calls[0]?.[0]).toHaveLength(300)
    // Published while that write is under way: gathered into the next one.
    const first = bus.publish('orders.created', 'a', { durable: true })
    await Promise.resolve()
    await Promise.resolve()
    const later = [bus.publish('orders.created', 'b', { durable: true }), bus.publish('orders.created', 'c', { durable: true })]
    await Promise.all([first, ...later].map((receipt) => receipt.persisted))
    expect(append.mock.calls.slice(1).map(([events]) => events.map((event) => event.data))).toEqual([['a'], ['b', 'c']])
    await bus.close()
  })

  test('a new durable consumer replays what is stored (redelivered), then follows live events without a gap or a duplicate', async () => {
    const log = newLog()
    const publisher = localBus({ store: log.store })
    for (let index = 0; index < 50; index++) publisher.publish('orders.created', index, { durable: true })
    await publisher.flush()
    const consumer = localBus({ store: log.open() })
    const seen = recorder()
    consumer.subscribe('orders.*', seen.handler, { durable: 'mailer', capacity: 16 })
    // Published here while the replay is under way: read from the store after the replayed ones.
    await seen.until(5)
    for (let index = 50; index < 100; index++) consumer.publish('orders.created', index, { durable: true })
    await seen.until(100)
    await consumer.flush()
    expect(seqs(seen.events)).toEqual(Array.from({ length: 100 }, (_, index) => index))
    expect(seen.events.slice(0, 50).every((event) => event.redelivered)).toBe(true)
    expect(seen.events.slice(50).some((event) => event.redelivered)).toBe(false)
    expect(consumer.stats().subscriptions[0]).toMatchObject({ durable: 'mailer', standby: false, delivered: 100, dropped: 0 })
    await Promise.all([publisher.close(), consumer.close()])
  })

  test('acks what it handled: the next instance starts after it, and replays what was not finished', async () => {
    const log = newLog()
    const bus = localBus({ store: log.store })
    const handled: unknown[] = []
    const stuck = deferred()
    const subscription = bus.subscribe(
      'jobs.>',
      (event) => {
        if (event.data === 3) return stuck.promise
        handled.push(event.data)
        return undefined
      },
      { durable: 'worker' },
    )
    for (let index = 0; index < 6; index++) bus.publish('jobs.run', index, { durable: true })
    await vi.waitFor(() => expect(handled).toEqual([0, 1, 2]))
    subscription.unsubscribe()
    // Finishing after its subscription ended is too late to count: it comes again.
    stuck.resolve()
    await bus.close()
    // The handler of 3 never finished: 3, 4 and 5 come again.
    const again = localBus({ store: log.open() })
    const replay = recorder()
    again.subscribe('jobs.>', replay.handler, { durable: 'worker' })
    await replay.until(3)
    expect(seqs(replay.events)).toEqual([3, 4, 5])
    expect(replay.events.every((event) => event.redelivered)).toBe(true)
    await again.close()
    expect((await log.open().register('worker', 'jobs.>')).cursor).toBeGreaterThan(0)
  })

  test('close() resolves once the last ack is written', async () => {
    const log = newLog()
    const bus = localBus({ store: log.store })
    const seen = recorder()
    bus.subscribe('jobs', seen.handler, { durable: 'closer' })
    for (let index = 0; index < 3; index++) bus.publish('jobs', index, { durable: true })
    await seen.until(3)
    await bus.close()
    expect((await log.open().register('closer', 'jobs')).cursor).toBe(3)
  })

  test("a durable subscription's full queue loses nothing: the rest waits in the store", async () => {
    const { store } = newLog()
    const bus = localBus({ store })
    const seen = recorder()
    bus.subscribe(
      'ticks',
      async (event) => {
        seen.handler(event)
        await Promise.resolve()
      },
      { durable: 'slow', capacity: 8 },
    )
    const receipts = Array.from({ length: 500 }, (_, index) => bus.publish('ticks', index, { durable: true }))
    await seen.until(500)
    expect(seqs(seen.events)).toEqual(Array.from({ length: 500 }, (_, index) => index))
    expect(receipts.every((receipt) => receipt.dropped === 0)).toBe(true)
    await vi.waitFor(() => expect(bus.stats()).toMatchObject({ dropped: 0, delivered: 500 }))
    await bus.close()
  })

  test('under drop-oldest, live events that push out stored ones cost only the live ones', async () => {
    const { store } = newLog()
    const { list, onDiagnostic } = diagnostics()
    const bus = localBus({ store, onDiagnostic })
    const gate = deferred()
    const seen: unknown[] = []
    bus.subscribe(
      'mixed',
      async (event) => {
        await gate.promise
        seen.push(event.data)
      },
      { durable: 'mixer', capacity: 4, overflow: 'drop-oldest' },
    )
    for (let index = 0; index < 6; index++) bus.publish('mixed', `stored-${index}`, { durable: true })
    await vi.waitFor(() => expect(bus.stats().subscriptions[0]?.queued).toBe(3))
    // The queue holds stored-1..3 (stored-0 is running); six live events push everything out.
    for (let index = 0; index < 6; index++) bus.publish('mixed', `live-${index}`)
    gate.resolve()
    await vi.waitFor(() => expect(seen.filter((data) => String(data).startsWith('stored'))).toHaveLength(6))
    expect(seen.filter((data) => String(data).startsWith('stored'))).toEqual([0, 1, 2, 3, 4, 5].map((index) => `stored-${index}`))
    // Only live events were lost, each counted.
    const live = seen.filter((data) => String(data).startsWith('live'))
    expect(bus.stats().dropped).toBe(6 - live.length)
    expect(list.filter((diagnostic) => diagnostic.type === 'drop').reduce((sum, diagnostic) => sum + (diagnostic.count ?? 0), 0)).toBe(6 - live.length)
    await bus.close()
  })

  test('a durable subscription also gets non-durable events while live, which are not stored', async () => {
    const { store } = newLog()
    const bus = localBus({ store })
    const seen = recorder()
    bus.subscribe('news', seen.handler, { durable: 'reader' })
    await vi.waitFor(() => expect(bus.stats().subscriptions[0]?.standby).toBe(false))
    bus.publish('news', 'live only')
    bus.publish('news', 'kept', { durable: true })
    await seen.until(2)
    expect(seqs(seen.events).sort()).toEqual(['kept', 'live only'])
    expect((await store.read(0, 10)).map((stored) => stored.data)).toEqual(['kept'])
    await bus.close()
  })

  test('a processor acks after success and after dead-lettering; the dead letter is durable and the event leaves the log', async () => {
    const log = newLog()
    const bus = localBus({ store: log.store, onDiagnostic: () => {} })
    const attempts: number[] = []
    bus.process(
      'payments.charge',
      (event, { attempt }) => {
        attempts.push(attempt)
        if (event.data === 'bad') throw new Error('card declined')
      },
      { durable: 'charger', retry: { attempts: 2, initialDelay: 1, jitter: false }, deadLetter: 'payments.failed' },
    )
    bus.publish('payments.charge', 'good', { durable: true })
    bus.publish('payments.charge', 'bad', { durable: true })
    // Acked up to the dead letter's own position (3), which it does not match.
    await vi.waitFor(async () => expect((await log.open().register('charger', 'payments.charge')).cursor).toBe(3))
    expect(attempts).toEqual([1, 1, 2])
    // The dead letter was stored; a durable consumer of it gets it with the error.
    const failed = recorder()
    bus.subscribe('payments.failed', failed.handler, { durable: 'auditor' })
    const [letter] = await failed.until(1)
    expect(letter).toMatchObject({
      data: 'bad',
      headers: { 'x-crossbus-topic': 'payments.charge', 'x-crossbus-error': 'card declined', 'x-crossbus-attempts': '2' },
    })
    await vi.waitFor(async () => expect((await log.open().register('auditor', 'payments.failed')).cursor).toBe(3))
    expect(await log.store.compact()).toMatchObject({ deleted: 3 })
    expect(await log.store.read(0, 10)).toEqual([])
    await bus.close()
  })

  test('one live instance per consumer name: another waits on standby and takes over where it stopped', async () => {
    const log = newLog()
    const first = localBus({ store: log.store })
    const second = localBus({ store: log.open() })
    const one = recorder()
    const two = recorder()
    const live = first.subscribe('work', one.handler, { durable: 'crew' })
    await vi.waitFor(() => expect(first.stats().subscriptions[0]?.standby).toBe(false))
    second.subscribe('work', two.handler, { durable: 'crew' })
    expect(second.stats().subscriptions[0]).toMatchObject({ durable: 'crew', standby: true })
    for (let index = 0; index < 10; index++) first.publish('work', index, { durable: true })
    await one.until(10)
    live.unsubscribe()
    for (let index = 10; index < 20; index++) first.publish('work', index, { durable: true })
    await two.until(10)
    expect(seqs(one.events)).toEqual(Array.from({ length: 10 }, (_, index) => index))
    expect(seqs(two.events)).toEqual(Array.from({ length: 10 }, (_, index) => index + 10))
    expect(second.stats().subscriptions[0]?.standby).toBe(false)
    await Promise.all([first.close(), second.close()])
  })

  test('a durable stream acks an event when the next one is asked for', async () => {
    const log = newLog()
    const bus = localBus({ store: log.store })
    for (let index = 0; index < 3; index++) bus.publish('feed', index, { durable: true })
    const taken: unknown[] = []
    for await (const event of bus.stream('feed', { durable: 'tail' })) {
      taken.push(event.data)
      if (taken.length === 2) break
    }
    expect(taken).toEqual([0, 1])
    await bus.close()
    // 0 and 1 were handled (the loop body finished for both); 2 was never taken.
    const again = localBus({ store: log.open() })
    const rest = recorder()
    again.subscribe('feed', rest.handler, { durable: 'tail' })
    await rest.until(1)
    expect(seqs(rest.events)).toEqual([2])
    await again.close()
  })

  test('retained durable events outlive the context that published them', async () => {
    const log = newLog()
    const before = localBus({ store: log.store })
    before.publish('theme', 'dark', { durable: true, retain: true })
    await before.close()
    const after = localBus({ store: log.open() })
    const seen = recorder()
    after.subscribe('theme', seen.handler, { last: true })
    const [event] = await seen.until(1)
    expect(event).toMatchObject({ topic: 'theme', data: 'dark' })
    await after.close()
  })

  test('maxEvents evicts the oldest events no consumer has taken, counted and reported', async () => {
    const { store } = newLog({ maxEvents: 5 })
    const evicted = firstOf('drop')
    const bus = localBus({ store, onDiagnostic: evicted.onDiagnostic })
    for (let index = 0; index < 12; index++) bus.publish('unclaimed', index, { durable: true })
    const diagnostic = await evicted.seen
    expect(diagnostic).toMatchObject({ count: 7 })
    expect(diagnostic.message).toMatch(/evicted 7 event/)
    expect(bus.stats().evicted).toBe(7)
    expect((await store.read(0, 20)).map((stored) => stored.data)).toEqual([7, 8, 9, 10, 11])
    await bus.close()
  })

  test('durable events reach a durable consumer in another context once: from the store, not also live', async () => {
    const log = newLog()
    const { left, right } = messageChannelPair()
    const publisher = createBus({ store: log.store, transports: [left] })
    const consumer = createBus({ store: log.open(), transports: [right] })
    const seen = recorder()
    const live = recorder()
    consumer.subscribe('orders.*', seen.handler, { durable: 'shipper' })
    consumer.subscribe('orders.*', live.handler)
    await vi.waitFor(() => expect(publisher.peers()).toHaveLength(1))
    await vi.waitFor(() => expect(consumer.stats().subscriptions.find((stats) => stats.durable)?.standby).toBe(false))
    for (let index = 0; index < 20; index++) publisher.publish('orders.created', index, { durable: true })
    await Promise.all([seen.until(20), live.until(20)])
    await publisher.flush()
    await consumer.flush()
    expect(seqs(seen.events)).toEqual(Array.from({ length: 20 }, (_, index) => index))
    expect(seqs(live.events)).toEqual(Array.from({ length: 20 }, (_, index) => index))
    await Promise.all([publisher.close(), consumer.close()])
  })
})

describe('durable failures', () => {
  test('no store: NO_STORE; a durable name must be a non-empty string and cannot be local', () => {
    const plain = localBus()
    expect(codeOf(() => plain.publish('a', 1, { durable: true }))).toBe('NO_STORE')
    const bus = localBus({ store: memoryStore() })
    expect(() => bus.subscribe('a', () => {}, { durable: '' })).toThrow(TypeError)
    expect(() => bus.subscribe('a', () => {}, { durable: 'x', local: true })).toThrow(/cannot be local/)
    expect(() => bus.publish('a', 1, { durable: true, local: true })).toThrow(/both durable and local/)
    expect(() => localBus({ store: {} as Store })).toThrow(/store must be a Store/)
  })

  test('a store that fails: persisted rejects with its code, a storage-error is reported, non-durable traffic is untouched', async () => {
    vi.stubGlobal('indexedDB', undefined)
    try {
      const reported = firstOf('storage-error')
      const bus = localBus({ store: indexedDbStore({ dbName: 'nowhere' }), onDiagnostic: reported.onDiagnostic })
      const seen = recorder()
      bus.subscribe('a', seen.handler)
      const durable = bus.publish('a', 'durable', { durable: true })
      const plain = bus.publish('a', 'plain')
      await expect(durable.persisted).rejects.toMatchObject({ code: 'STORAGE_UNAVAILABLE' })
      await expect(plain.persisted).resolves.toBeUndefined()
      // Delivered live all the same.
      expect(seqs(await seen.until(2))).toEqual(['durable', 'plain'])
      expect(await reported.seen).toMatchObject({ type: 'storage-error' })
      // A failure nobody awaits is reported, never an unhandled rejection.
      bus.publish('a', 'unawaited', { durable: true })
      await bus.flush()
      await bus.close()
    } finally {
      vi.unstubAllGlobals()
    }
  })

  test('QUOTA_EXCEEDED reaches persisted with the cause kept', async () => {
    const store = memoryStore()
    const quota = new DOMException('The quota has been exceeded.', 'QuotaExceededError')
    vi.spyOn(store, 'append').mockRejectedValueOnce(new CrossbusError('QUOTA_EXCEEDED', 'the storage quota is exceeded', { cause: quota }))
    const bus = localBus({ store, onDiagnostic: () => {} })
    const failure = await bus.publish('a', 1, { durable: true }).persisted.catch((error: unknown) => error)
    expect(failure).toMatchObject({ code: 'QUOTA_EXCEEDED', cause: quota })
    // The next transaction is not affected.
    await expect(bus.publish('a', 2, { durable: true }).persisted).resolves.toBeUndefined()
    await bus.close()
  })

  test('data that cannot be stored is refused at publish with NOT_CLONEABLE', () => {
    const bus = localBus({ store: memoryStore() })
    expect(codeOf(() => bus.publish('a', { run: () => {} }, { durable: true }))).toBe('NOT_CLONEABLE')
  })

  test('a durable consumer whose store fails reports it and keeps trying; nothing is lost', async () => {
    const store = memoryStore()
    const read = vi.spyOn(store, 'read').mockRejectedValueOnce(new Error('disk on fire'))
    const reported = firstOf('storage-error')
    const bus = localBus({ store, onDiagnostic: reported.onDiagnostic })
    bus.publish('jobs', 1, { durable: true })
    await bus.flush()
    const seen = recorder()
    bus.subscribe('jobs', seen.handler, { durable: 'retrier' })
    expect((await reported.seen).message).toMatch(/cannot reach the store \(STORAGE_UNAVAILABLE\): the store failed: disk on fire/)
    expect(seqs(await seen.until(1))).toEqual([1])
    expect(read.mock.calls.length).toBeGreaterThan(1)
    await bus.close()
  })
})
