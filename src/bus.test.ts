import { afterEach, describe, expect, test, vi } from 'vitest'
import type { BusEvent } from './index.js'
import { SLICE_MS } from './dispatcher.js'
import { codeOf, deferred, diagnostics, localBus, microtasks, recorder } from '../test/helpers.js'

afterEach(() => {
  vi.restoreAllMocks()
})

describe('publish()', () => {
  test('returns a receipt at once and never calls a handler inside the call', async () => {
    const bus = localBus()
    const seen = recorder()
    bus.subscribe('cart.updated', seen.handler)
    const receipt = bus.publish('cart.updated', { items: 1 })
    expect(seen.events).toHaveLength(0)
    expect(receipt).toMatchObject({ id: `${bus.id}:1`, queued: 1, dropped: 0 })
    await expect(receipt.persisted).resolves.toBeUndefined()
    await seen.until(1)
    expect(seen.events[0]?.data).toEqual({ items: 1 })
  })

  test('delivers in publish order, with strictly increasing seq and unique ids', async () => {
    const bus = localBus()
    const seen = recorder<number>()
    bus.subscribe('n', seen.handler)
    for (let index = 0; index < 500; index++) bus.publish('n', index)
    const events = await seen.until(500)
    expect(events.map((event) => event.data)).toEqual([...Array(500).keys()])
    expect(events.every((event, index) => index === 0 || event.seq > (events[index - 1] as BusEvent).seq)).toBe(true)
    expect(new Set(events.map((event) => event.id)).size).toBe(500)
  })

  test('gives a frozen envelope whose data is shared by reference between subscribers', async () => {
    const bus = localBus()
    const first = recorder()
    const second = recorder()
    bus.subscribe('a.b', first.handler)
    bus.subscribe('a.*', second.handler)
    const data = { nested: { value: 1 } }
    const before = Date.now()
    bus.publish('a.b', data, { headers: { trace: 't1' } })
    const [event] = await first.until(1)
    await second.until(1)
    expect(Object.isFrozen(event)).toBe(true)
    expect(Object.isFrozen(event?.headers)).toBe(true)
    expect(event).toMatchObject({ topic: 'a.b', source: bus.id, seq: 1, headers: { trace: 't1' }, redelivered: false })
    expect(event?.time).toBeGreaterThanOrEqual(before)
    expect(event?.time).toBeLessThanOrEqual(Date.now())
    expect(event?.data).toBe(data)
    expect(second.events[0]).toBe(event)
    expect(() => {
      ;(event as { topic: string }).topic = 'changed'
    }).toThrow(TypeError)
  })

  test('copy: true gives a subscription its own structuredClone of the data', async () => {
    const bus = localBus()
    const shared = recorder()
    const copied = recorder()
    bus.subscribe('a', shared.handler)
    bus.subscribe('a', copied.handler, { copy: true })
    const data = { list: [1, 2] }
    bus.publish('a', data)
    await shared.until(1)
    await copied.until(1)
    expect(shared.events[0]?.data).toBe(data)
    expect(copied.events[0]?.data).not.toBe(data)
    expect(copied.events[0]?.data).toEqual(data)
    expect(Object.isFrozen(copied.events[0])).toBe(true)
  })

  test('routes by NATS wildcards', async () => {
    const bus = localBus()
    const star = recorder()
    const tail = recorder()
    const all = recorder()
    bus.subscribe('cart.*', star.handler)
    bus.subscribe('orders.>', tail.handler)
    bus.subscribe('>', all.handler)
    for (const topic of ['cart.updated', 'cart.a.b', 'orders.eu', 'orders.eu.created', 'other']) bus.publish(topic, topic)
    await all.until(5)
    await tail.until(2)
    expect(star.events.map((event) => event.topic)).toEqual(['cart.updated'])
    expect(tail.events.map((event) => event.topic)).toEqual(['orders.eu', 'orders.eu.created'])
  })

  test.each([
    ['orders.*', 'a pattern'],
    ['', 'an empty topic'],
    ['a..b', 'a malformed topic'],
    ['$reply.x', 'a reserved topic'],
  ])('throws INVALID_TOPIC synchronously for %j (%s)', (topic) => {
    const bus = localBus()
    expect(codeOf(() => bus.publish(topic, 1))).toBe('INVALID_TOPIC')
    expect(bus.stats().published).toBe(0)
  })

  test('throws INVALID_TOPIC synchronously for a malformed pattern in every subscribing method', () => {
    const bus = localBus()
    const noop = (): void => {}
    expect(codeOf(() => bus.subscribe('a.>.b', noop))).toBe('INVALID_TOPIC')
    expect(codeOf(() => bus.process('a b', noop))).toBe('INVALID_TOPIC')
    expect(codeOf(() => bus.reply('', noop))).toBe('INVALID_TOPIC')
    expect(codeOf(() => bus.stream('a.*x'))).toBe('INVALID_TOPIC')
    expect(codeOf(() => bus.once('..'))).toBe('INVALID_TOPIC')
    expect(codeOf(() => bus.request('a.*', 1))).toBe('INVALID_TOPIC')
  })

  test('throws TypeError for wrong argument types', () => {
    const bus = localBus()
    expect(() => bus.subscribe('a', 'nope' as never)).toThrow(TypeError)
    expect(() => bus.subscribe('a', () => {}, { capacity: 0 })).toThrow(TypeError)
    expect(() => bus.subscribe('a', () => {}, { overflow: 'drop-all' as never })).toThrow(TypeError)
    expect(() => localBus({ capacity: 1.5 })).toThrow(TypeError)
    expect(() => bus.process('a', () => {}, { retry: { attempts: 0 } })).toThrow(TypeError)
  })

  test('validate: true refuses data that cannot be structured-cloned with NOT_CLONEABLE', () => {
    const validating = localBus({ validate: true })
    expect(codeOf(() => validating.publish('a', { callback: () => {} }))).toBe('NOT_CLONEABLE')
    expect(codeOf(() => validating.publish('a', { fine: [1, new Date()] }))).toBeUndefined()
    const plain = localBus()
    expect(codeOf(() => plain.publish('a', { callback: () => {} }))).toBeUndefined()
  })

  test('durable features throw NO_STORE without a store', () => {
    const bus = localBus()
    expect(codeOf(() => bus.publish('a', 1, { durable: true }))).toBe('NO_STORE')
    expect(codeOf(() => bus.subscribe('a', () => {}, { durable: 'worker' }))).toBe('NO_STORE')
  })

  test('works with detached methods', async () => {
    const { publish, subscribe, stats } = localBus()
    const seen = recorder()
    subscribe('a', seen.handler)
    publish('a', 1)
    await seen.until(1)
    expect(stats().delivered).toBe(1)
  })

  test('a handler may publish, subscribe and unsubscribe while events are being delivered', async () => {
    const bus = localBus()
    const late = recorder()
    const echoes = recorder()
    let victim: { unsubscribe(): void } | undefined
    const victimSeen = recorder()
    let lateSubscribed = false
    bus.subscribe('ping', (event) => {
      victim?.unsubscribe()
      if (!lateSubscribed) bus.subscribe('ping', late.handler)
      lateSubscribed = true
      bus.publish('pong', event.data)
    })
    victim = bus.subscribe('ping', victimSeen.handler)
    bus.subscribe('pong', echoes.handler)
    bus.publish('ping', 1)
    bus.publish('ping', 2)
    await echoes.until(2)
    expect(victimSeen.events).toHaveLength(0)
    expect(echoes.events.map((event) => event.data)).toEqual([1, 2])
    // Events are routed when published: a subscription made during delivery sees later publishes only.
    expect(late.events).toHaveLength(0)
    bus.publish('ping', 3)
    await late.until(1)
    expect(late.events.map((event) => event.data)).toEqual([3])
  })
})

describe('bounded queues', () => {
  test('drop-newest keeps the queue and refuses the new event, counting and reporting the drops', async () => {
    const seen = diagnostics()
    const bus = localBus({ onDiagnostic: seen.onDiagnostic })
    const gate = deferred()
    const stalled: number[] = []
    const sub = bus.subscribe(
      'jobs',
      async (event) => {
        stalled.push(event.data as number)
        await gate.promise
      },
      { capacity: 3 },
    )
    const healthy = recorder()
    bus.subscribe('jobs', healthy.handler)
    const receipts = [1, 2, 3, 4, 5, 6].map((value) => bus.publish('jobs', value))
    expect(receipts.map((receipt) => receipt.dropped)).toEqual([0, 0, 0, 1, 1, 1])
    expect(receipts.map((receipt) => receipt.queued)).toEqual([2, 2, 2, 1, 1, 1])
    await healthy.until(6)
    await microtasks()
    expect(sub.stats()).toMatchObject({ pattern: 'jobs', dropped: 3, capacity: 3 })
    expect(bus.stats().dropped).toBe(3)
    // Drops are reported once per subscription and task, with a count.
    expect(seen.of('drop')).toEqual([expect.objectContaining({ subscription: 'jobs', count: 3, topic: 'jobs' })])
    gate.resolve()
    await bus.close()
    expect(stalled).toEqual([1, 2, 3])
  })

  test('drop-oldest evicts the head so the newest events survive', async () => {
    const bus = localBus({ onDiagnostic: () => {} })
    const seen = recorder<number>()
    bus.subscribe('n', seen.handler, { capacity: 3, overflow: 'drop-oldest' })
    for (let value = 1; value <= 6; value++) bus.publish('n', value)
    await seen.until(3)
    await bus.close()
    expect(seen.events.map((event) => event.data)).toEqual([4, 5, 6])
    expect(bus.stats().dropped).toBe(3)
  })

  test('a burst published in one task must fit in capacity: the default warning names the subscription and its capacity', async () => {
    const warn = vi.spyOn(console, 'warn').mockImplementation(() => {})
    const bus = localBus({ capacity: 10 })
    const seen = recorder()
    bus.subscribe('burst.*', seen.handler)
    for (let index = 0; index < 25; index++) bus.publish('burst.x', index)
    await seen.until(10)
    await microtasks()
    for (let index = 0; index < 25; index++) bus.publish('burst.x', index)
    await seen.until(20)
    await microtasks()
    // Once per kind and place, however many drops follow.
    expect(warn).toHaveBeenCalledTimes(1)
    expect(String(warn.mock.calls[0]?.[0])).toMatch(/"burst\.\*": queue full \(capacity 10, drop-newest\): dropped 15 event/)
    expect(bus.stats().dropped).toBe(30)
  })

  test('publish cost does not depend on a stalled subscriber: its queue never grows past capacity', () => {
    const bus = localBus({ onDiagnostic: () => {} })
    const sub = bus.subscribe('x', () => new Promise<void>(() => {}), { capacity: 100 })
    for (let index = 0; index < 10_000; index++) bus.publish('x', index)
    expect(sub.stats()).toMatchObject({ queued: 100, dropped: 9_900 })
  })
})

describe('delivery isolation', () => {
  test('a throwing, a rejecting and a hanging handler harm no other subscription and no publisher', async () => {
    const seen = diagnostics()
    const bus = localBus({ onDiagnostic: seen.onDiagnostic })
    const throwing = bus.subscribe('t', () => {
      throw new Error('boom')
    })
    const rejecting = bus.subscribe('t', () => Promise.reject(new Error('nope')))
    bus.subscribe('t', () => new Promise<void>(() => {}))
    const healthy = recorder()
    bus.subscribe('t', healthy.handler)
    for (let index = 0; index < 5; index++) expect(() => bus.publish('t', index)).not.toThrow()
    await healthy.until(5)
    await vi.waitFor(() => expect(rejecting.stats().failed).toBe(5))
    expect(throwing.stats()).toMatchObject({ failed: 5, delivered: 0 })
    expect(bus.stats().failed).toBe(10)
    expect(seen.of('handler-error').map((diagnostic) => (diagnostic.error as Error).message)).toContain('boom')
  })

  test('an async handler is awaited before the same subscription gets its next event', async () => {
    const bus = localBus()
    const log: string[] = []
    const gates = [deferred(), deferred()]
    const done = recorder()
    bus.subscribe('a', async (event) => {
      const index = event.data as number
      log.push(`start ${index}`)
      await gates[index]?.promise
      log.push(`end ${index}`)
      done.handler(event)
    })
    bus.publish('a', 0)
    bus.publish('a', 1)
    await microtasks()
    expect(log).toEqual(['start 0'])
    gates[0]?.resolve()
    gates[1]?.resolve()
    await done.until(2)
    expect(log).toEqual(['start 0', 'end 0', 'start 1', 'end 1'])
  })

  test('long bursts are drained in time slices, so the page gets turns between them', async () => {
    let fakeNow = 0
    vi.spyOn(performance, 'now').mockImplementation(() => (fakeNow += 1))
    const bus = localBus({ capacity: 100_000 })
    const seen = recorder()
    bus.subscribe('burst', seen.handler)
    for (let index = 0; index < 20_000; index++) bus.publish('burst', index)
    await microtasks()
    // The first slice stopped at its deadline (the clock advances 1 ms per reading here)...
    expect(seen.events.length).toBeGreaterThan(0)
    expect(seen.events.length).toBeLessThan(20_000)
    expect(seen.events.length).toBeLessThanOrEqual(32 * SLICE_MS)
    // ...and later slices, in later tasks, deliver the rest in order.
    await seen.until(20_000)
    expect(seen.events.map((event) => event.data)).toEqual([...Array(20_000).keys()])
  })
})

describe('robustness', () => {
  test('a handler throwing a value String() cannot convert is counted like any failure; delivery goes on', async () => {
    const bus = localBus({ onDiagnostic: () => {} })
    const healthy = recorder()
    const odd = bus.subscribe('x', () => {
      throw Object.create(null)
    })
    bus.subscribe('x', healthy.handler)
    bus.publish('x', 1)
    bus.publish('x', 2)
    await healthy.until(2)
    await vi.waitFor(() => expect(odd.stats().failed).toBe(2))
    await expect(bus.close()).resolves.toBeUndefined()
  })

  test('a subscription out of time goes to the back: a long burst on one does not starve another', async () => {
    let fakeNow = 0
    vi.spyOn(performance, 'now').mockImplementation(() => (fakeNow += 1))
    const bus = localBus({ capacity: 100_000 })
    const busy = recorder()
    let busyCountWhenOtherRan = -1
    bus.subscribe('busy', busy.handler)
    bus.subscribe('other', () => {
      busyCountWhenOtherRan = busy.events.length
    })
    for (let index = 0; index < 20_000; index++) bus.publish('busy', index)
    bus.publish('other', 'me')
    await busy.until(20_000)
    expect(busyCountWhenOtherRan).toBeGreaterThan(0)
    expect(busyCountWhenOtherRan).toBeLessThan(20_000)
  })

  test('header values must be strings', () => {
    const bus = localBus()
    expect(() => bus.publish('a', 1, { headers: { n: 1 as unknown as string } })).toThrow(TypeError)
    expect(() => bus.publish('a', 1, { headers: { n: '1' } })).not.toThrow()
  })
})

describe('subscriptions', () => {
  test('unsubscribe() and Symbol.dispose stop delivery and discard what was queued', async () => {
    const bus = localBus()
    const kept = recorder()
    const gone = recorder()
    const disposed = recorder()
    bus.subscribe('a', kept.handler)
    const sub = bus.subscribe('a', gone.handler)
    {
      using _scoped = bus.subscribe('a', disposed.handler)
      bus.publish('a', 1)
    }
    sub.unsubscribe()
    sub.unsubscribe()
    bus.publish('a', 2)
    await kept.until(2)
    expect(gone.events).toHaveLength(0)
    expect(disposed.events).toHaveLength(0)
    expect(bus.stats().subscriptions.map((stats) => stats.pattern)).toEqual(['a'])
  })

  test('aborting the signal unsubscribes', async () => {
    const bus = localBus()
    const controller = new AbortController()
    const seen = recorder()
    const other = recorder()
    bus.subscribe('a', seen.handler, { signal: controller.signal })
    bus.subscribe('a', other.handler)
    bus.publish('a', 1)
    await seen.until(1)
    controller.abort()
    bus.publish('a', 2)
    await other.until(2)
    expect(seen.events).toHaveLength(1)
    bus.subscribe('a', seen.handler, { signal: controller.signal })
    expect(bus.stats().subscriptions).toHaveLength(1)
  })

  test('stats() counts publishes, deliveries and lists subscriptions', async () => {
    const bus = localBus()
    const seen = recorder()
    bus.subscribe('a.*', seen.handler, { capacity: 7 })
    bus.publish('a.b', 1)
    bus.publish('zzz', 2)
    await seen.until(1)
    expect(bus.stats()).toMatchObject({
      published: 2,
      delivered: 1,
      dropped: 0,
      failed: 0,
      received: 0,
      rejected: 0,
      peers: 0,
      transports: [],
      subscriptions: [{ pattern: 'a.*', queued: 0, capacity: 7, delivered: 1, dropped: 0, failed: 0 }],
    })
    expect(bus.peers()).toEqual([])
  })
})

describe('retain and last', () => {
  test('a late subscriber with last: true first gets the retained event of each matching topic', async () => {
    const bus = localBus()
    bus.publish('room.a', 'a1', { retain: true })
    bus.publish('room.a', 'a2', { retain: true })
    bus.publish('room.b', 'b1', { retain: true })
    bus.publish('room.c', 'not retained')
    bus.publish('other', 'o1', { retain: true })
    const late = recorder<string>()
    const plain = recorder<string>()
    bus.subscribe('room.*', late.handler, { last: true })
    bus.subscribe('room.*', plain.handler)
    bus.publish('room.a', 'a3')
    await late.until(3)
    expect(late.events.map((event) => event.data)).toEqual(['a2', 'b1', 'a3'])
    await plain.until(1)
    expect(plain.events.map((event) => event.data)).toEqual(['a3'])
  })
})

describe('close()', () => {
  test('stops publish with CLOSED, delivers what was queued, and is idempotent', async () => {
    const bus = localBus()
    const seen = recorder()
    bus.subscribe('a', async (event) => {
      await Promise.resolve()
      seen.handler(event)
    })
    bus.publish('a', 1)
    bus.publish('a', 2)
    const first = bus.close()
    expect(bus.close()).toBe(first)
    expect(codeOf(() => bus.publish('a', 3))).toBe('CLOSED')
    expect(codeOf(() => bus.subscribe('a', () => {}))).toBe('CLOSED')
    await first
    expect(seen.events.map((event) => event.data)).toEqual([1, 2])
    expect(bus.stats().subscriptions).toEqual([])
  })

  test('Symbol.asyncDispose closes the bus', async () => {
    let outer: ReturnType<typeof localBus> | undefined
    {
      await using bus = localBus()
      outer = bus
    }
    expect(codeOf(() => outer?.publish('a', 1))).toBe('CLOSED')
  })

  test('flush() resolves when there is nothing to hand over', async () => {
    const bus = localBus()
    bus.publish('a', 1)
    await expect(bus.flush()).resolves.toBeUndefined()
  })
})
