import { afterEach, beforeEach, describe, expect, test, vi } from 'vitest'
import { CrossbusError, type BusEvent } from './index.js'
import { deferred, diagnostics, recorder, localBus } from '../test/helpers.js'

beforeEach(() => {
  vi.useFakeTimers()
})
afterEach(() => {
  vi.useRealTimers()
})

const noJitter = { jitter: false }

describe('process()', () => {
  test('retries a failing handler with exponential backoff on timers, then succeeds', async () => {
    const seen = diagnostics()
    const bus = localBus({ onDiagnostic: seen.onDiagnostic })
    const attempts: { attempt: number; at: number }[] = []
    const redelivered: boolean[] = []
    const done = deferred()
    const start = Date.now()
    const processor = bus.process(
      'jobs',
      ({ data, redelivered: again }, { attempt }) => {
        attempts.push({ attempt, at: Date.now() - start })
        redelivered.push(again)
        if (attempt < 3) throw new Error(`fail ${attempt}`)
        expect(data).toBe('payload')
        done.resolve()
      },
      { retry: { ...noJitter, initialDelay: 100, factor: 2 } },
    )
    bus.publish('jobs', 'payload')
    await vi.advanceTimersByTimeAsync(99)
    expect(attempts.map((entry) => entry.attempt)).toEqual([1])
    await vi.advanceTimersByTimeAsync(1)
    expect(attempts.map((entry) => entry.attempt)).toEqual([1, 2])
    await vi.advanceTimersByTimeAsync(199)
    expect(attempts).toHaveLength(2)
    await vi.advanceTimersByTimeAsync(1)
    await done.promise
    expect(attempts).toEqual([
      { attempt: 1, at: 0 },
      { attempt: 2, at: 100 },
      { attempt: 3, at: 300 },
    ])
    // A retried event is a redelivery.
    expect(redelivered).toEqual([false, true, true])
    await vi.waitFor(() => expect(processor.stats().delivered).toBe(1))
    expect(processor.stats()).toMatchObject({ failed: 2, delivered: 1 })
    expect(bus.stats()).toMatchObject({ failed: 2, retried: 2, delivered: 1, deadLettered: 0 })
    expect(seen.of('retry')).toHaveLength(2)
  })

  test('times out an attempt: its signal aborts with TIMEOUT even when the handler ignores it', async () => {
    const bus = localBus({ onDiagnostic: () => {} })
    const signals: AbortSignal[] = []
    const dead = deferred<{ event: BusEvent; error: unknown }>()
    bus.process(
      'slow',
      (_event, { signal }) => {
        signals.push(signal)
        return new Promise<void>(() => {})
      },
      { timeout: 50, retry: { attempts: 2, initialDelay: 10, ...noJitter }, deadLetter: (event, error) => dead.resolve({ event, error }) },
    )
    bus.publish('slow', 1)
    await vi.advanceTimersByTimeAsync(49)
    expect(signals).toHaveLength(1)
    expect(signals[0]?.aborted).toBe(false)
    await vi.advanceTimersByTimeAsync(1)
    expect(signals[0]?.aborted).toBe(true)
    expect(signals[0]?.reason).toMatchObject({ code: 'TIMEOUT' })
    await vi.advanceTimersByTimeAsync(60)
    const { event, error } = await dead.promise
    expect(signals).toHaveLength(2)
    expect(event.data).toBe(1)
    expect(error).toBeInstanceOf(CrossbusError)
    expect(error).toMatchObject({ code: 'TIMEOUT' })
    expect(bus.stats()).toMatchObject({ failed: 2, retried: 1, deadLettered: 1 })
  })

  test('dead-letters to a topic with the original data and x-crossbus-* headers', async () => {
    const bus = localBus({ onDiagnostic: () => {} })
    const letters = recorder()
    bus.subscribe('dead.jobs', letters.handler)
    bus.process(
      'jobs.*',
      () => {
        throw new Error('cannot do it')
      },
      { retry: { attempts: 3, initialDelay: 1, ...noJitter }, deadLetter: 'dead.jobs' },
    )
    bus.publish('jobs.resize', { file: 'a.png' }, { headers: { trace: 'abc' } })
    await vi.advanceTimersByTimeAsync(10)
    const [letter] = await letters.until(1)
    expect(letter?.data).toEqual({ file: 'a.png' })
    expect(letter?.headers).toEqual({
      trace: 'abc',
      'x-crossbus-topic': 'jobs.resize',
      'x-crossbus-error': 'cannot do it',
      'x-crossbus-attempts': '3',
    })
    expect(bus.stats().deadLettered).toBe(1)
  })

  test('without deadLetter, a spent event becomes a dead-letter diagnostic', async () => {
    const seen = diagnostics()
    const bus = localBus({ onDiagnostic: seen.onDiagnostic })
    bus.process('x', () => Promise.reject(new Error('no')), { retry: { attempts: 1 } })
    bus.publish('x', 1)
    await vi.waitFor(() => expect(seen.of('dead-letter')).toHaveLength(1))
    expect(seen.of('dead-letter')[0]).toMatchObject({ subscription: 'x', topic: 'x', eventId: `${bus.id}:1` })
    expect(bus.stats().deadLettered).toBe(1)
  })

  test('runs up to `concurrency` events at once, starting them in order', async () => {
    const bus = localBus()
    let running = 0
    let peak = 0
    const started: number[] = []
    const gates = Array.from({ length: 6 }, () => deferred())
    const finished = recorder()
    bus.process(
      'work',
      async (event) => {
        const index = event.data as number
        started.push(index)
        running++
        peak = Math.max(peak, running)
        await gates[index]?.promise
        running--
        finished.handler(event)
      },
      { concurrency: 3 },
    )
    for (let index = 0; index < 6; index++) bus.publish('work', index)
    await vi.waitFor(() => expect(started).toEqual([0, 1, 2]))
    gates[1]?.resolve()
    await vi.waitFor(() => expect(started).toEqual([0, 1, 2, 3]))
    for (const gate of gates) gate.resolve()
    await finished.until(6)
    expect(peak).toBe(3)
    expect(started).toEqual([0, 1, 2, 3, 4, 5])
  })

  test('aborting one processor stops only that processor: its attempt aborts and its backoff wait ends', async () => {
    const seen = diagnostics()
    const bus = localBus({ onDiagnostic: seen.onDiagnostic })
    const controller = new AbortController()
    let attempts = 0
    bus.process(
      'task',
      () => {
        attempts++
        throw new Error('retry me')
      },
      { signal: controller.signal, retry: { attempts: 5, initialDelay: 1000, ...noJitter } },
    )
    const other = recorder()
    bus.process('task', other.handler)
    bus.publish('task', 1)
    await vi.waitFor(() => expect(attempts).toBe(1))
    // Now waiting 1 s before attempt 2: abort during the wait.
    controller.abort()
    expect(vi.getTimerCount()).toBe(0)
    await vi.advanceTimersByTimeAsync(10_000)
    expect(attempts).toBe(1)
    await other.until(1)
    bus.publish('task', 2)
    await other.until(2)
    expect(attempts).toBe(1)
    expect(seen.of('dead-letter')).toHaveLength(0)
    expect(bus.stats().deadLettered).toBe(0)
  })

  test('an attempt that never reads its signal still times out, and one that reads it late finds it aborted', async () => {
    const bus = localBus({ onDiagnostic: () => {} })
    const late = deferred<AbortSignal>()
    const errors: unknown[] = []
    bus.process('ignores', () => new Promise<void>(() => {}), {
      timeout: 20,
      retry: { attempts: 1 },
      deadLetter: (_event, error) => errors.push(error),
    })
    bus.process(
      'late',
      (_event, context) =>
        new Promise<void>((resolve) => {
          setTimeout(() => {
            late.resolve(context.signal)
            resolve()
          }, 30)
        }),
      { timeout: 20, retry: { attempts: 1 }, deadLetter: (_event, error) => errors.push(error) },
    )
    bus.publish('ignores', 1)
    bus.publish('late', 2)
    await vi.advanceTimersByTimeAsync(30)
    const signal = await late.promise
    expect(signal.aborted).toBe(true)
    expect(signal.reason).toMatchObject({ code: 'TIMEOUT' })
    expect(errors).toHaveLength(2)
    expect(errors).toEqual([expect.objectContaining({ code: 'TIMEOUT' }), expect.objectContaining({ code: 'TIMEOUT' })])
    expect(bus.stats()).toMatchObject({ delivered: 0, failed: 2, deadLettered: 2 })
  })

  test('an in-flight attempt sees its signal abort when the processor is unsubscribed', async () => {
    const bus = localBus({ onDiagnostic: () => {} })
    const aborted = deferred<unknown>()
    const sub = bus.process('task', (_event, { signal }) => {
      signal.addEventListener('abort', () => aborted.resolve(signal.reason))
      return new Promise<void>(() => {})
    })
    bus.publish('task', 1)
    await vi.waitFor(() => expect(bus.stats().published).toBe(1))
    await vi.advanceTimersByTimeAsync(0)
    sub.unsubscribe()
    await expect(aborted.promise).resolves.toMatchObject({ code: 'ABORTED' })
    expect(bus.stats().retried).toBe(0)
  })

  test('close({ timeout: 0 }) aborts running attempts with CLOSED and drops what processors had queued, counted', async () => {
    const seen = diagnostics()
    const bus = localBus({ onDiagnostic: seen.onDiagnostic })
    const reasons: unknown[] = []
    bus.process('task', (_event, { signal }) => {
      return new Promise<void>((_resolve, reject) => {
        signal.addEventListener('abort', () => {
          reasons.push(signal.reason)
          reject(signal.reason)
        })
      })
    })
    bus.publish('task', 1)
    bus.publish('task', 2)
    bus.publish('task', 3)
    await vi.advanceTimersByTimeAsync(0)
    await bus.close({ timeout: 0 })
    expect(reasons).toEqual([expect.objectContaining({ code: 'CLOSED' })])
    expect(bus.stats()).toMatchObject({ dropped: 2, deadLettered: 0, retried: 0 })
    await vi.waitFor(() => expect(seen.of('drop')[0]).toMatchObject({ count: 2 }))
  })

  test('validates its options', () => {
    const bus = localBus()
    expect(() => bus.process('a', () => {}, { concurrency: 0 })).toThrow(TypeError)
    expect(() => bus.process('a', () => {}, { timeout: -1 })).toThrow(TypeError)
    expect(() => bus.process('a', () => {}, { deadLetter: 'bad topic' })).toThrow(CrossbusError)
    // Its own dead letters would come back to it, forever.
    expect(() => bus.process('jobs.*', () => {}, { deadLetter: 'jobs.dead' })).toThrow(/matches the processor's own pattern/)
  })
})
