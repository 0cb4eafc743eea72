import { describe, expect, test, vi } from 'vitest'
import type { BusEvent } from './index.js'
import { microtasks, localBus } from '../test/helpers.js'

describe('stream()', () => {
  test('yields matching events in order through for await', async () => {
    const bus = localBus()
    const received: unknown[] = []
    const reading = (async () => {
      for await (const event of bus.stream('feed.*')) {
        received.push(event.data)
        if (received.length === 3) break
      }
    })()
    bus.publish('feed.a', 1)
    bus.publish('other', 'x')
    bus.publish('feed.b', 2)
    await microtasks()
    bus.publish('feed.a', 3)
    await reading
    expect(received).toEqual([1, 2, 3])
    // break → return() unsubscribed the stream.
    expect(bus.stats().subscriptions).toEqual([])
  })

  test('is bounded like any subscription: an unread stream drops by its overflow policy', async () => {
    const bus = localBus({ onDiagnostic: () => {} })
    const stream = bus.stream('n', { capacity: 2, overflow: 'drop-oldest' })
    for (let value = 1; value <= 5; value++) bus.publish('n', value)
    expect(bus.stats().subscriptions[0]).toMatchObject({ queued: 2, dropped: 3 })
    expect((await stream.next()).value?.data).toBe(4)
    expect((await stream.next()).value?.data).toBe(5)
    await stream.return?.()
  })

  test('ends at once when its signal aborts', async () => {
    const bus = localBus()
    const controller = new AbortController()
    const stream = bus.stream('n', { signal: controller.signal })
    const pending = stream.next()
    controller.abort()
    await expect(pending).resolves.toEqual({ done: true, value: undefined })
    bus.publish('n', 1)
    await expect(stream.next()).resolves.toMatchObject({ done: true })
  })

  test('ends after what is queued when the bus closes', async () => {
    const bus = localBus()
    const stream = bus.stream('n')
    bus.publish('n', 1)
    bus.publish('n', 2)
    await bus.close()
    const values: unknown[] = []
    for await (const event of stream) values.push(event.data)
    expect(values).toEqual([1, 2])
  })

  test('hands events to concurrent next() calls in order', async () => {
    const bus = localBus()
    const stream = bus.stream('n')
    const first = stream.next()
    const second = stream.next()
    bus.publish('n', 'a')
    bus.publish('n', 'b')
    expect((await first).value?.data).toBe('a')
    expect((await second).value?.data).toBe('b')
    await stream.return?.()
  })
})

describe('once()', () => {
  test('resolves with the first matching event and unsubscribes', async () => {
    const bus = localBus()
    const next = bus.once('ready.*')
    bus.publish('ready.db', 1)
    bus.publish('ready.cache', 2)
    const event: BusEvent = await next
    expect(event).toMatchObject({ topic: 'ready.db', data: 1 })
    expect(bus.stats()).toMatchObject({ dropped: 0, subscriptions: [] })
  })

  test('rejects with TIMEOUT, ABORTED or CLOSED', async () => {
    vi.useFakeTimers()
    try {
      const bus = localBus()
      const timedOut = bus.once('never', { timeout: 100 })
      const check = expect(timedOut).rejects.toMatchObject({ code: 'TIMEOUT' })
      await vi.advanceTimersByTimeAsync(100)
      await check
      const controller = new AbortController()
      const aborted = bus.once('never', { signal: controller.signal })
      controller.abort('user')
      await expect(aborted).rejects.toMatchObject({ code: 'ABORTED', cause: 'user' })
      await expect(bus.once('x', { signal: AbortSignal.abort() })).rejects.toMatchObject({ code: 'ABORTED' })
      const closing = bus.once('never')
      await bus.close()
      await expect(closing).rejects.toMatchObject({ code: 'CLOSED' })
      await expect(bus.once('never')).rejects.toMatchObject({ code: 'CLOSED' })
      expect(vi.getTimerCount()).toBe(0)
    } finally {
      vi.useRealTimers()
    }
  })
})
