// Options that fail loudly, retries that wait for the network, and last() (issue 12).
import { afterEach, describe, expect, test, vi } from 'vitest'
import { deferred, localBus } from '../test/helpers.js'
import { createBus } from './bus.js'
import { resolveRetry } from './retry.js'
import { indexedDbStore } from './store/idb.js'
import { memoryStore } from './store/memory.js'
import { broadcastChannel } from './transports/broadcast-channel.js'
import { messagePort } from './transports/message-port.js'

afterEach(() => {
  vi.unstubAllGlobals()
})

/** The message of the TypeError `run` throws. */
function typeError(run: () => unknown): string {
  try {
    run()
  } catch (error) {
    if (error instanceof TypeError) return error.message
    return `not a TypeError: ${String(error)}`
  }
  return 'did not throw'
}

describe('an option name that does not exist', () => {
  test('is a TypeError that names it, the closest known option and all of them', () => {
    // biome-ignore lint/suspicious/noExplicitAny: the point is an option the types refuse
    const loose = (value: object): any => value
    const message = typeError(() => createBus(loose({ nmae: 'x' })))
    expect(message).toContain('"nmae"')
    expect(message).toContain('did you mean "name"')
    expect(message).toContain('transports')
    expect(typeError(() => createBus(loose({ transport: [] })))).toContain('did you mean "transports"')
    const bus = localBus()
    expect(typeError(() => bus.subscribe('a', () => {}, loose({ capacty: 2 })))).toMatch(/subscribe has no option "capacty" \(did you mean "capacity"\?\)/)
    expect(typeError(() => bus.process('a', () => {}, loose({ retries: 3 })))).toContain('process has no option "retries"')
    expect(typeError(() => bus.process('a', () => {}, { retry: loose({ attempt: 3 }) }))).toContain('did you mean "attempts"')
    expect(typeError(() => bus.publish('a', 1, loose({ durabel: true })))).toContain('did you mean "durable"')
    expect(typeError(() => bus.stream('a', loose({ sginal: undefined })))).toContain('stream has no option "sginal"')
    expect(typeError(() => bus.reply('a', () => 1, loose({ concurency: 2 })))).toContain('did you mean "concurrency"')
    expect(typeError(() => bus.request('a', 1, loose({ timout: 5 })))).toContain('did you mean "timeout"')
    expect(typeError(() => bus.once('a', loose({ timeot: 5 })))).toContain('did you mean "timeout"')
    expect(typeError(() => bus.close(loose({ timeuot: 0 })))).toContain('did you mean "timeout"')
    expect(typeError(() => broadcastChannel(loose({ chanel: 'x' })))).toContain('did you mean "channel"')
    expect(typeError(() => messagePort(new MessageChannel().port1, loose({ origins: ['x'] })))).toContain('did you mean "origin"')
    expect(typeError(() => memoryStore(loose({ maxEvent: 1 })))).toContain('did you mean "maxEvents"')
    expect(typeError(() => indexedDbStore(loose({ dbname: 'x' })))).toContain('did you mean "dbName"')
  })
})

describe('retry.attempts', () => {
  test('Infinity is allowed (an outbox retries until it succeeds), and every invalid value gets the same message', () => {
    expect(resolveRetry({ attempts: Number.POSITIVE_INFINITY }).attempts).toBe(Number.POSITIVE_INFINITY)
    const messages = [0, -1, 1.5, Number.NaN, Number.NEGATIVE_INFINITY].map((attempts) => typeError(() => resolveRetry({ attempts })))
    expect(new Set(messages).size).toBe(5)
    for (const message of messages) expect(message).toMatch(/^crossbus: retry\.attempts must be an integer >= 1, or Infinity, got /)
  })

  test('a processor with attempts: Infinity goes on retrying past any finite count', async () => {
    const bus = localBus({ onDiagnostic: () => {} })
    const done = deferred<number>()
    let attempts = 0
    bus.process(
      'outbox',
      () => {
        attempts++
        if (attempts < 12) throw new Error('server down')
        done.resolve(attempts)
      },
      { retry: { attempts: Number.POSITIVE_INFINITY, initialDelay: 0, maxDelay: 0 } },
    )
    bus.publish('outbox', 1)
    await expect(done.promise).resolves.toBe(12)
    expect(bus.stats()).toMatchObject({ retried: 11, deadLettered: 0 })
    await bus.close()
  })
})

describe('a retry while the platform says it is offline', () => {
  /** Makes the platform say it is offline (a browser's navigator.onLine, or a Node stand-in); returns the way back online. */
  function offline(): () => void {
    if (typeof window !== 'undefined') {
      let online = false
      Object.defineProperty(navigator, 'onLine', { configurable: true, get: () => online })
      return () => {
        online = true
        window.dispatchEvent(new Event('online'))
        delete (navigator as { onLine?: boolean }).onLine
      }
    }
    const scope = new EventTarget()
    vi.stubGlobal('navigator', { onLine: false })
    vi.stubGlobal('addEventListener', scope.addEventListener.bind(scope))
    vi.stubGlobal('removeEventListener', scope.removeEventListener.bind(scope))
    return () => {
      vi.stubGlobal('navigator', { onLine: true })
      scope.dispatchEvent(new Event('online'))
    }
  }

  test('waits for the online event instead of burning its attempts', async () => {
    const goOnline = offline()
    const bus = localBus({ onDiagnostic: () => {} })
    let attempts = 0
    const second = deferred()
    bus.process(
      'sync',
      () => {
        attempts++
        if (attempts === 1) throw new Error('offline')
        second.resolve()
      },
      { retry: { attempts: 2, initialDelay: 0, maxDelay: 0 } },
    )
    bus.publish('sync', 1)
    await expect.poll(() => bus.stats().failed).toBe(1)
    // Offline: the backoff (0 ms) is long over, and the second attempt still waits.
    await new Promise((resolve) => setTimeout(resolve, 20))
    expect(attempts).toBe(1)
    goOnline()
    await second.promise
    expect(bus.stats()).toMatchObject({ retried: 1, deadLettered: 0, failed: 1 })
    await bus.close()
  })
})

describe('last(topic)', () => {
  test('is the retained event of that topic this context holds, at once; undefined before; INVALID_TOPIC for a bad topic', () => {
    const bus = localBus()
    expect(bus.last('cart.state')).toBeUndefined()
    const receipt = bus.publish('cart.state', { items: 1 }, { retain: true })
    bus.publish('cart.state', { items: 9 })
    expect(bus.last('cart.state')).toMatchObject({ id: receipt.id, data: { items: 1 } })
    bus.publish('cart.state', { items: 2 }, { retain: true })
    expect(bus.last('cart.state')?.data).toEqual({ items: 2 })
    expect(() => bus.last('cart.*')).toThrow(expect.objectContaining({ code: 'INVALID_TOPIC' }))
  })
})
