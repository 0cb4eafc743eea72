import { describe, expect, test, vi } from 'vitest'
import { recorder, localBus } from '../test/helpers.js'

describe('request() and reply()', () => {
  test('resolves with the reply handler’s return value, sync or async', async () => {
    const bus = localBus()
    bus.reply('math.double', (event) => (event.data as number) * 2)
    bus.reply('math.slow', async (event) => {
      await Promise.resolve()
      return `slow ${String(event.data)}`
    })
    await expect(bus.request('math.double', 21)).resolves.toBe(42)
    await expect(bus.request('math.slow', 1)).resolves.toBe('slow 1')
  })

  test('fails at once with NO_RESPONDERS when no reply handler matches', async () => {
    const bus = localBus()
    bus.subscribe('math.double', () => {})
    bus.reply('other.*', () => 1)
    await expect(bus.request('math.double', 1)).rejects.toMatchObject({ code: 'NO_RESPONDERS' })
  })

  test('fails with TIMEOUT when no reply comes in time (default 5000 ms)', async () => {
    vi.useFakeTimers()
    try {
      const bus = localBus()
      bus.reply('hang', () => new Promise(() => {}))
      const pending = bus.request('hang', 1)
      const check = expect(pending).rejects.toMatchObject({ code: 'TIMEOUT' })
      await vi.advanceTimersByTimeAsync(4999)
      await vi.advanceTimersByTimeAsync(1)
      await check
      const short = bus.request('hang', 1, { timeout: 10 })
      const shortCheck = expect(short).rejects.toMatchObject({ code: 'TIMEOUT' })
      await vi.advanceTimersByTimeAsync(10)
      await shortCheck
    } finally {
      vi.useRealTimers()
    }
  })

  test('rejects with the reply handler’s error', async () => {
    const bus = localBus({ onDiagnostic: () => {} })
    bus.reply('fail', () => {
      throw new RangeError('out of range')
    })
    await expect(bus.request('fail', 1)).rejects.toThrow(RangeError)
  })

  test('rejects with ABORTED when its signal aborts, and with CLOSED when the bus closes', async () => {
    const bus = localBus()
    bus.reply('hang', () => new Promise(() => {}))
    const controller = new AbortController()
    const aborted = bus.request('hang', 1, { signal: controller.signal })
    controller.abort()
    await expect(aborted).rejects.toMatchObject({ code: 'ABORTED' })
    const closing = bus.request('hang', 2)
    void bus.close()
    await expect(closing).rejects.toMatchObject({ code: 'CLOSED' })
  })

  test('the first reply wins and reply traffic stays off wildcard subscribers', async () => {
    const bus = localBus()
    const everything = recorder()
    bus.subscribe('>', everything.handler)
    bus.reply('who', () => 'first')
    bus.reply('who', async () => {
      await new Promise((resolve) => setTimeout(resolve, 0))
      return 'second'
    })
    await expect(bus.request('who', null)).resolves.toBe('first')
    await everything.until(1)
    expect(everything.events.map((event) => event.topic)).toEqual(['who'])
  })

  test('a reply handler also receives plain publishes, whose result goes nowhere', async () => {
    const bus = localBus()
    const calls: unknown[] = []
    bus.reply('ask', (event) => {
      calls.push(event.data)
      return 'answer'
    })
    bus.publish('ask', 'plain')
    await vi.waitFor(() => expect(calls).toEqual(['plain']))
    expect(bus.stats().published).toBe(1)
  })
})
