// close(): graceful, with a deadline (issue 10).
import { describe, expect, test } from 'vitest'
import { createBus } from './bus.js'
import { messagePort } from './transports/message-port.js'
import { codeOf, deferred, diagnostics, localBus, recorder } from '../test/helpers.js'
import { joined } from '../test/link-conformance.js'
import type { HandlerContext } from './types.js'

describe('close() with a deadline', () => {
  test('resolves once its timeout passes while a subscribe handler never settles; the handler sees its signal abort with CLOSED', async () => {
    const seen = diagnostics()
    const bus = localBus({ onDiagnostic: seen.onDiagnostic })
    const aborted = deferred<unknown>()
    const started = deferred()
    bus.subscribe('jobs', (_event, { signal }: HandlerContext) => {
      signal.addEventListener('abort', () => aborted.resolve(signal.reason))
      started.resolve()
      return new Promise<void>(() => {})
    })
    for (let index = 0; index < 3; index++) bus.publish('jobs', index)
    await started.promise
    await bus.close({ timeout: 30 })
    await expect(aborted.promise).resolves.toMatchObject({ code: 'CLOSED' })
    // The two behind the hung one were never handled: dropped and counted.
    expect(bus.stats().dropped).toBe(2)
    await expect.poll(() => seen.of('drop').reduce((sum, drop) => sum + (drop.count ?? 0), 0)).toBe(2)
  })

  test('the bus option closeTimeout is the default deadline, and a reply handler that hangs cannot hold close() either', async () => {
    const bus = localBus({ closeTimeout: 30, onDiagnostic: () => {} })
    const aborted = deferred<unknown>()
    bus.reply('math.slow', (_event, { signal }: HandlerContext) => {
      signal.addEventListener('abort', () => aborted.resolve(signal.reason))
      return new Promise(() => {})
    })
    const asked = bus.request('math.slow', 1, { timeout: 10_000 }).catch((error: unknown) => error)
    await expect.poll(() => bus.stats().published).toBe(1)
    await bus.close()
    await expect(asked).resolves.toMatchObject({ code: 'CLOSED' })
    await expect(aborted.promise).resolves.toMatchObject({ code: 'CLOSED' })
  })

  test('lets a running processor attempt and what is queued behind it finish before the deadline: nothing aborted, nothing dropped', async () => {
    const bus = localBus()
    const done: number[] = []
    const aborts: unknown[] = []
    bus.process(
      'jobs',
      async (event, { signal }) => {
        signal.addEventListener('abort', () => aborts.push(signal.reason))
        await new Promise((resolve) => setTimeout(resolve, 5))
        done.push(event.data as number)
      },
      { concurrency: 1 },
    )
    for (let index = 0; index < 3; index++) bus.publish('jobs', index)
    await expect.poll(() => bus.stats().subscriptions[0]?.queued).toBe(2)
    await bus.close({ timeout: 5_000 })
    expect(done).toEqual([0, 1, 2])
    expect(aborts).toEqual([])
    expect(bus.stats()).toMatchObject({ delivered: 3, dropped: 0, failed: 0 })
  })

  test('close({ timeout: 0 }) is immediate: what is queued is dropped and counted, not delivered', async () => {
    const bus = localBus({ onDiagnostic: () => {} })
    const seen = recorder()
    bus.subscribe('a', seen.handler)
    bus.publish('a', 1)
    bus.publish('a', 2)
    await bus.close({ timeout: 0 })
    expect(seen.events).toEqual([])
    expect(bus.stats().dropped).toBe(2)
  })

  test('refuses options that are not a duration', () => {
    const bus = localBus()
    expect(() => bus.close({ timeout: -1 })).toThrow(/timeout must be a number >= 0/)
    expect(() => createBus({ transports: [], closeTimeout: Number.NaN })).toThrow(/closeTimeout must be a number >= 0/)
  })

  test('stops taking remote events at once: a peer that keeps publishing cannot keep close() waiting, and what it sent after close() is counted, not handled', async () => {
    const { port1, port2 } = new MessageChannel()
    const seen = diagnostics()
    const closing = createBus({ name: 'close-remote', transports: [messagePort(port1)], onDiagnostic: seen.onDiagnostic })
    const publisher = createBus({ name: 'close-remote', transports: [messagePort(port2)], onDiagnostic: () => {} })
    let handled = 0
    // A consumer slower than its peer: one event per macrotask, a queue large enough never to drop.
    closing.subscribe(
      'feed',
      async () => {
        handled++
        await new Promise((resolve) => setTimeout(resolve, 0))
      },
      { capacity: 100_000 },
    )
    await joined(publisher)
    await expect.poll(() => publisher.publish('feed', 0).queued).toBeGreaterThan(0)
    let publishing = true
    const pump = (async () => {
      // Bounded: at most 2,000 chunks of 100, one chunk per macrotask.
      for (let chunk = 0; publishing && chunk < 2_000; chunk++) {
        for (let index = 0; index < 100; index++) publisher.publish('feed', index)
        await new Promise((resolve) => setTimeout(resolve, 0))
      }
    })()
    await expect.poll(() => handled).toBeGreaterThan(20)
    const queuedAtClose = closing.stats().subscriptions[0]?.queued ?? 0
    const handledAtClose = handled
    await closing.close({ timeout: 200 })
    // What was already queued was delivered; nothing that arrived later was.
    expect(handled - handledAtClose).toBeLessThanOrEqual(queuedAtClose)
    publishing = false
    await pump
    expect(codeOf(() => closing.publish('feed', 1))).toBe('CLOSED')
    await publisher.close()
    port1.close()
    port2.close()
  })
})
