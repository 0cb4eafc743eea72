// Durable publish and durable subscriptions over every store: memoryStore, and
// indexedDbStore on fake-indexeddb (Node) or on real IndexedDB (Chromium).
import { describe, expect, test, vi } from 'vitest'
import { createBus } from './bus.js'
import { CrossbusError } from './errors.js'
import { indexedDbStore } from './store/idb.js'
import { memoryStore } from './store/memory.js'
import { deleteDatabase, freshDbName, readRaw, realIndexedDb, writeRaw } from '../test/idb.js'
import { codeOf, deferred, diagnostics, localBus, microtasks, recorder } from '../test/helpers.js'
import { messageChannelPair } from '../test/link-conformance.js'
import type { BusEvent, Diagnostic, Store } from './types.js'

/** A new log; `open()` gives another handle on it (another context's, for IndexedDB). */
interface Log {
  store: Store
  open(): Store
  /** Puts one malformed record at the end of the log, as something that is not crossbus might. */
  corrupt(): Promise<void>
}

const logs: [string, (options?: { maxEvents?: number }) => Log][] = [
  [
    'memoryStore',
    (options) => {
      const store = memoryStore(options)
      return {
        store,
        open: () => store,
        corrupt: async () => void (await store.append([{ id: 42, topic: 'jobs', seq: 'x', headers: null } as never])),
      }
    },
  ],
  [
    `indexedDbStore (${realIndexedDb ? 'IndexedDB' : 'fake-indexeddb'})`,
    (options) => {
      const dbName = freshDbName('crossbus-durable')
      return {
        store: indexedDbStore({ dbName, ...options }),
        open: () => indexedDbStore({ dbName, ...options }),
        corrupt: async () => {
          // The layout of src/store/idb.ts: 'next' is the next position, ['b', last] a batch of events.
          const next = ((await readRaw(dbName, 'next')) as number | undefined) ?? 1
          await writeRaw(dbName, [
            ['next', next + 1],
            [['b', next], 'not a batch of events'],
          ])
        },
      }
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

describe.each(logs)('durable acks on %s: nothing lost at the seams (issue 10)', (_name, newLog) => {
  const cursorOf = async (log: Log, name: string, pattern: string): Promise<number> => (await log.open().register(name, pattern)).cursor

  test.each([
    [0, undefined],
    [1, undefined],
    [0, 0],
    [1, 0],
    [2, 0],
    [3, 0],
  ])("a processor's success just before close() is acked (close %i microtask(s) after the handler finished, timeout %s)", async (wait, timeout) => {
    const log = newLog()
    const bus = localBus({ store: log.store })
    const finished = deferred()
    bus.process(
      'jobs',
      async () => {
        await Promise.resolve()
        finished.resolve()
      },
      { durable: 'finisher' },
    )
    bus.publish('jobs', 1, { durable: true })
    await finished.promise
    await microtasks(wait)
    await (timeout === undefined ? bus.close() : bus.close({ timeout }))
    expect(await cursorOf(log, 'finisher', 'jobs')).toBe(1)
    expect(bus.stats()).toMatchObject({ delivered: 1, failed: 0 })
  })

  test("a processor's synchronous success just before its subscription ends is acked", async () => {
    const log = newLog()
    const bus = localBus({ store: log.store })
    const finished = deferred()
    const processor = bus.process('jobs', () => finished.resolve(), { durable: 'quick' })
    bus.publish('jobs', 1, { durable: true })
    await finished.promise
    processor.unsubscribe()
    await bus.close()
    expect(await cursorOf(log, 'quick', 'jobs')).toBe(1)
  })

  test('a deadLetter callback that throws does not ack: the event stays in the log and comes again', async () => {
    const log = newLog()
    const { of, onDiagnostic } = diagnostics()
    const bus = localBus({ store: log.store, onDiagnostic })
    const letters: BusEvent[] = []
    bus.process(
      'jobs',
      () => {
        throw new Error('cannot do it')
      },
      {
        durable: 'picky',
        retry: { attempts: 1 },
        deadLetter: (event) => {
          letters.push(event)
          if (letters.length === 1) throw new Error('the dead-letter sink is down')
        },
      },
    )
    await vi.waitFor(() => expect(bus.stats().subscriptions[0]?.standby).toBe(false))
    bus.publish('jobs', 'x', { durable: true })
    await vi.waitFor(() => expect(letters).toHaveLength(1))
    // Not acked: compaction keeps it.
    expect(await log.store.compact()).toMatchObject({ deleted: 0 })
    expect((await log.store.read(0, 10)).map((stored) => stored.data)).toEqual(['x'])
    await vi.waitFor(() => expect(letters).toHaveLength(2), { timeout: 5000 })
    expect(letters.map((letter) => [letter.data, letter.redelivered])).toEqual([
      ['x', false],
      ['x', true],
    ])
    expect(of('handler-error').some((diagnostic) => /deadLetter threw/.test(diagnostic.message))).toBe(true)
    // The callback returned the second time: acked, and the event may leave.
    await vi.waitFor(async () => expect(await cursorOf(log, 'picky', 'jobs')).toBe(1))
    await bus.close()
  })

  test('a dead letter whose durable append fails does not ack the original: it comes again and its dead letter is stored', async () => {
    const log = newLog()
    const bus = localBus({ store: log.store, onDiagnostic: () => {} })
    const append = log.store.append.bind(log.store)
    let refused = 0
    vi.spyOn(log.store, 'append').mockImplementation((events) => {
      if (refused === 0 && events.some((event) => event.topic === 'jobs.failed')) {
        refused++
        return Promise.reject(new CrossbusError('QUOTA_EXCEEDED', 'the storage quota is exceeded'))
      }
      return append(events)
    })
    const attempts: boolean[] = []
    bus.process(
      'jobs',
      (event) => {
        attempts.push(event.redelivered)
        throw new Error('cannot do it')
      },
      { durable: 'charger', retry: { attempts: 1 }, deadLetter: 'jobs.failed' },
    )
    await vi.waitFor(() => expect(bus.stats().subscriptions[0]?.standby).toBe(false))
    bus.publish('jobs', 'x', { durable: true })
    await vi.waitFor(() => expect(attempts).toEqual([false, true]), { timeout: 5000 })
    await vi.waitFor(async () =>
      expect((await log.store.read(0, 10)).map((stored) => [stored.topic, stored.data])).toEqual([
        ['jobs', 'x'],
        ['jobs.failed', 'x'],
      ]),
    )
    expect(refused).toBe(1)
    await vi.waitFor(async () => expect(await cursorOf(log, 'charger', 'jobs')).toBe(2))
    await bus.close()
  })

  test('FIFO per source: durable and plain events of one context reach a durable subscription in publish order', async () => {
    const { store } = newLog()
    const bus = localBus({ store })
    const seen = recorder()
    bus.subscribe('a', seen.handler, { durable: 'ordered' })
    await vi.waitFor(() => expect(bus.stats().subscriptions[0]?.standby).toBe(false))
    const expected: string[] = []
    for (let round = 0; round < 5; round++) {
      for (let index = 1; index <= 4; index++) {
        const data = `${round}:A${index}`
        expected.push(data)
        bus.publish('a', data, { durable: index % 2 === 1 })
      }
      if (round % 2 === 1) await bus.flush()
    }
    await seen.until(expected.length)
    expect(seqs(seen.events)).toEqual(expected)
    await bus.close()
  })

  test('a plain event held behind a durable one whose append failed is not lost: it arrives once the hold times out', async () => {
    const { store } = newLog()
    const bus = localBus({ store, onDiagnostic: () => {} })
    const seen = recorder()
    bus.subscribe('a', seen.handler, { durable: 'patient' })
    await vi.waitFor(() => expect(bus.stats().subscriptions[0]?.standby).toBe(false))
    vi.spyOn(store, 'append').mockRejectedValueOnce(new CrossbusError('QUOTA_EXCEEDED', 'the storage quota is exceeded'))
    const lost = bus.publish('a', 'never stored', { durable: true })
    bus.publish('a', 'plain')
    await expect(lost.persisted).rejects.toMatchObject({ code: 'QUOTA_EXCEEDED' })
    expect(seqs(await seen.until(1))).toEqual(['plain'])
    bus.publish('a', 'stored', { durable: true })
    bus.publish('a', 'after')
    await seen.until(3)
    expect(seqs(seen.events)).toEqual(['plain', 'stored', 'after'])
    await bus.close()
  }, 10_000)

  test('close() delivers the plain events held behind durable ones it will not read any more', async () => {
    const { store } = newLog()
    const bus = localBus({ store })
    const seen = recorder()
    bus.subscribe('a', seen.handler, { durable: 'closing' })
    await vi.waitFor(() => expect(bus.stats().subscriptions[0]?.standby).toBe(false))
    bus.publish('a', 'durable', { durable: true })
    bus.publish('a', 'plain')
    // Closing in the same task: the durable event is committed, but the consumer reads nothing more.
    await bus.close()
    expect(seqs(seen.events)).toContain('plain')
    expect(bus.stats()).toMatchObject({ dropped: 0 })
  })

  test("FIFO per source across contexts: a durable subscription gets another context's durable and plain events in publish order", async () => {
    const log = newLog()
    const { left, right } = messageChannelPair()
    const publisher = createBus({ store: log.store, transports: [left] })
    const consumer = createBus({ store: log.open(), transports: [right] })
    const seen = recorder()
    consumer.subscribe('a', seen.handler, { durable: 'remote-ordered' })
    await vi.waitFor(() => expect(consumer.stats().subscriptions[0]?.standby).toBe(false))
    // Once a probe arrives, the publisher knows the consumer's interest (its durable subscription came first).
    const probe = recorder()
    consumer.subscribe('probe', probe.handler)
    await vi.waitFor(() => {
      publisher.publish('probe', 0)
      expect(probe.events.length).toBeGreaterThan(0)
    })
    const expected = ['A1', 'A2', 'A3', 'A4']
    for (const [index, data] of expected.entries()) publisher.publish('a', data, { durable: index % 2 === 0 })
    await seen.until(4)
    expect(seqs(seen.events)).toEqual(expected)
    await Promise.all([publisher.close(), consumer.close()])
  })

  test('a malformed record in the log is skipped with a storage-error, counted, and the consumer goes on', async () => {
    const log = newLog()
    const { of, onDiagnostic } = diagnostics()
    const bus = localBus({ store: log.store, onDiagnostic })
    bus.publish('jobs', 1, { durable: true })
    bus.publish('jobs', 2, { durable: true })
    await bus.flush()
    await log.corrupt()
    bus.publish('jobs', 3, { durable: true })
    await bus.flush()
    const seen = recorder()
    bus.subscribe('jobs', seen.handler, { durable: 'tough' })
    await seen.until(3)
    expect(seqs(seen.events)).toEqual([1, 2, 3])
    const [report] = of('storage-error')
    expect(report?.message).toMatch(/malformed record at position 3/)
    expect(bus.stats().rejected).toBe(1)
    // Past it: acked, so the consumer does not trip on it again.
    await vi.waitFor(async () => expect(await cursorOf(log, 'tough', 'jobs')).toBe(4))
    bus.publish('jobs', 4, { durable: true })
    await seen.until(4)
    expect(of('storage-error')).toHaveLength(1)
    await bus.close()
  })

  test('durable + retain as persisted state: 1,000 updates with no consumer leave one entry after compaction', async () => {
    const { store } = newLog()
    const bus = localBus({ store })
    for (let index = 0; index < 1000; index++) bus.publish('settings.theme', { version: index }, { durable: true, retain: true })
    await bus.flush()
    expect(await store.compact()).toEqual({ deleted: 999, evicted: 0 })
    expect((await store.read(0, 2000)).map((stored) => stored.data)).toEqual([{ version: 999 }])
    await bus.close()
    const later = localBus({ store })
    const seen = recorder()
    later.subscribe('settings.*', seen.handler, { last: true })
    expect(seqs(await seen.until(1))).toEqual([{ version: 999 }])
    await later.close()
  })

  test('stats() of a durable subscription has a backlog: the stored matching events it has not acked yet', async () => {
    const { store } = newLog()
    const bus = localBus({ store })
    const gate = deferred()
    const subscription = bus.subscribe('jobs', () => gate.promise, { durable: 'behind', capacity: 8 })
    await vi.waitFor(() => expect(subscription.stats()).toMatchObject({ standby: false, backlog: 0 }))
    for (let index = 0; index < 100; index++) bus.publish('jobs', index, { durable: true })
    await bus.flush()
    // One running, seven queued, 92 waiting in the store: queued caps at the capacity, backlog does not.
    await vi.waitFor(() => expect(subscription.stats()).toMatchObject({ queued: 7, capacity: 8, backlog: 100 }))
    gate.resolve()
    await vi.waitFor(() => expect(subscription.stats()).toMatchObject({ delivered: 100, backlog: 0 }))
    await bus.close()
  })
})

describe('durable log on indexedDbStore: what happens to a database while in use', () => {
  test("close() closes its store's connection: 200 buses created and closed leave no connection open", async () => {
    const open = new Set<IDBDatabase>()
    const factory = indexedDB
    const realOpen = factory.open.bind(factory)
    const realClose = IDBDatabase.prototype.close
    const opening = vi.spyOn(factory, 'open').mockImplementation((...args: Parameters<IDBFactory['open']>) => {
      const request = realOpen(...args)
      request.addEventListener('success', () => open.add(request.result))
      return request
    })
    const closing = vi.spyOn(IDBDatabase.prototype, 'close').mockImplementation(function (this: IDBDatabase) {
      open.delete(this)
      realClose.call(this)
    })
    try {
      const dbName = freshDbName('crossbus-cycles')
      for (let cycle = 0; cycle < 200; cycle++) {
        const bus = localBus({ store: indexedDbStore({ dbName }) })
        bus.subscribe('jobs', () => {}, { durable: 'cycler' })
        await bus.publish('jobs', cycle, { durable: true }).persisted
        await bus.close()
      }
      expect(opening.mock.calls.length).toBeGreaterThanOrEqual(200)
      expect(open.size).toBe(0)
    } finally {
      opening.mockRestore()
      closing.mockRestore()
    }
  }, 60_000)

  test.each([10, 50])(
    'the database deleted by another tab: a live consumer reports it and reads the new log from its start (%i new events)',
    async (count) => {
      const dbName = freshDbName('crossbus-deleted')
      const { of, onDiagnostic } = diagnostics()
      const publisher = localBus({ store: indexedDbStore({ dbName }) })
      const consumer = localBus({ store: indexedDbStore({ dbName }), onDiagnostic })
      const seen = recorder()
      consumer.subscribe('jobs', seen.handler, { durable: 'survivor' })
      for (let index = 0; index < 20; index++) publisher.publish('jobs', index, { durable: true })
      await publisher.flush()
      await seen.until(20)
      await deleteDatabase(dbName)
      // Positions start again at 1 in the new database; every one of these was committed.
      const receipts = Array.from({ length: count }, (_, index) => publisher.publish('jobs', 100 + index, { durable: true }))
      await Promise.all(receipts.map((receipt) => receipt.persisted))
      await seen.until(20 + count)
      expect(seqs(seen.events.slice(20))).toEqual(Array.from({ length: count }, (_, index) => 100 + index))
      const [report] = of('storage-error')
      expect(report?.error).toMatchObject({ code: 'STORAGE_UNAVAILABLE' })
      expect(report?.message).toMatch(/deleted or replaced/)
      await Promise.all([publisher.close(), consumer.close()])
    },
    15_000,
  )
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
