import { afterEach, beforeEach, describe, expect, test, vi } from 'vitest'
import { CrossbusError } from './errors.js'
import { backoffDelay, DEFAULT_RETRY, resolveRetry, sleep } from './retry.js'

describe('backoffDelay()', () => {
  const policy = { ...DEFAULT_RETRY, jitter: false }

  test('grows by factor from initialDelay and stops at maxDelay', () => {
    expect([1, 2, 3, 4].map((failed) => backoffDelay(policy, failed))).toEqual([100, 200, 400, 800])
    expect(backoffDelay({ ...policy, maxDelay: 300 }, 5)).toBe(300)
  })

  test('jitter spreads a wait over [delay / 2, delay]', () => {
    const jittered = { ...policy, jitter: true }
    expect(backoffDelay(jittered, 2, () => 0)).toBe(100)
    expect(backoffDelay(jittered, 2, () => 0.999999)).toBeCloseTo(200, 3)
  })
})

describe('resolveRetry()', () => {
  test('fills in the documented defaults', () => {
    expect(resolveRetry(undefined)).toEqual({ attempts: 3, initialDelay: 100, maxDelay: 30_000, factor: 2, jitter: true })
  })

  test('refuses nonsense with a TypeError', () => {
    expect(() => resolveRetry({ attempts: 0 })).toThrow(TypeError)
    expect(() => resolveRetry({ initialDelay: -1 })).toThrow(TypeError)
    expect(() => resolveRetry({ factor: Number.NaN })).toThrow(TypeError)
  })
})

describe('sleep()', () => {
  beforeEach(() => {
    vi.useFakeTimers()
  })
  afterEach(() => {
    vi.useRealTimers()
  })

  test('resolves after the delay', async () => {
    let done = false
    const waiting = sleep(1000).then(() => {
      done = true
    })
    await vi.advanceTimersByTimeAsync(999)
    expect(done).toBe(false)
    await vi.advanceTimersByTimeAsync(1)
    await waiting
    expect(done).toBe(true)
  })

  test('rejects with ABORTED as soon as its signal aborts, leaving no timer behind', async () => {
    const controller = new AbortController()
    const waiting = sleep(60_000, controller.signal)
    controller.abort('stop')
    await expect(waiting).rejects.toMatchObject({ code: 'ABORTED', cause: 'stop' })
    expect(vi.getTimerCount()).toBe(0)
  })

  test('keeps a CrossbusError reason as it is', async () => {
    const reason = new CrossbusError('CLOSED', 'closed')
    await expect(sleep(10, AbortSignal.abort(reason))).rejects.toBe(reason)
  })
})
