// Errors that reach people (issue 10): handler errors reach the platform's error reporting,
// and a reply handler's error keeps its shape across a link.
import { afterEach, describe, expect, test, vi } from 'vitest'
import { localBus } from '../test/helpers.js'
import { joined, messageChannelPair } from '../test/link-conformance.js'
import { createBus } from './bus.js'
import { CrossbusError, isCrossbusError } from './errors.js'
import type { Bus } from './types.js'

afterEach(() => {
  vi.unstubAllGlobals()
  vi.restoreAllMocks()
})

/** Six failing handler calls: three throws, two rejections, one failed processor attempt. */
async function failSixTimes(bus: Bus): Promise<unknown[]> {
  const thrown = [new Error('one'), new TypeError('two'), 'three', new Error('four'), { five: 5 }, new Error('six')]
  let next = 0
  bus.subscribe('sync', () => {
    throw thrown[next++]
  })
  bus.subscribe('async', () => Promise.reject(thrown[next++]))
  bus.process('job', () => Promise.reject(thrown[next++]), { retry: { attempts: 1 } })
  bus.publish('sync', 1)
  bus.publish('sync', 2)
  bus.publish('sync', 3)
  await expect.poll(() => next).toBe(3)
  bus.publish('async', 4)
  bus.publish('async', 5)
  await expect.poll(() => next).toBe(5)
  bus.publish('job', 6)
  await expect.poll(() => bus.stats().failed).toBe(6)
  return thrown
}

describe('handler errors', () => {
  test('without onDiagnostic, every one goes to reportError where the platform has it (window.onerror and monitors see it)', async () => {
    const reportError = vi.fn()
    vi.stubGlobal('reportError', reportError)
    const bus = localBus()
    const thrown = await failSixTimes(bus)
    expect(reportError.mock.calls.map(([error]) => error)).toEqual(thrown)
    await bus.close()
  })

  test('without onDiagnostic and without reportError (Node), every one goes to console.error, naming the subscription', async () => {
    vi.stubGlobal('reportError', undefined)
    const consoleError = vi.spyOn(console, 'error').mockImplementation(() => {})
    const consoleWarn = vi.spyOn(console, 'warn').mockImplementation(() => {})
    const bus = localBus()
    const thrown = await failSixTimes(bus)
    const errors = consoleError.mock.calls.filter(([message]) => String(message).includes('handler failed'))
    expect(errors.map(([, error]) => error)).toEqual(thrown)
    expect(String(errors[0]?.[0])).toContain('"sync"')
    expect(consoleWarn).not.toHaveBeenCalledWith(expect.stringContaining('handler failed'), expect.anything())
    await bus.close()
  })

  test('with onDiagnostic, it gets each one and the platform is left alone', async () => {
    const reportError = vi.fn()
    vi.stubGlobal('reportError', reportError)
    const seen: unknown[] = []
    const bus = localBus({ onDiagnostic: (diagnostic) => diagnostic.type === 'handler-error' && seen.push(diagnostic.error) })
    const thrown = await failSixTimes(bus)
    expect(seen).toEqual(thrown)
    expect(reportError).not.toHaveBeenCalled()
    await bus.close()
  })
})

class ValidationError extends Error {
  code = 'E_VALIDATION'
  field = 'n'
  override name = 'ValidationError'
}

describe('a reply handler’s error across a link', () => {
  async function pair(handler: () => unknown): Promise<{ asker: Bus; close: () => Promise<void> }> {
    const link = messageChannelPair()
    const replier = createBus({ transports: [link.left], onDiagnostic: () => {} })
    const asker = createBus({ transports: [link.right], onDiagnostic: () => {} })
    replier.reply('check', handler)
    await joined(asker)
    await expect.poll(() => asker.peers().length).toBe(1)
    return { asker, close: () => Promise.all([replier.close(), asker.close()]).then(() => undefined) }
  }

  test('keeps name, message, stack, cause and own fields', async () => {
    const { asker, close } = await pair(() => {
      throw new ValidationError('n must be positive', { cause: new RangeError('-1') })
    })
    const failure = await asker.request('check', -1).catch((error: unknown) => error)
    expect(failure).toBeInstanceOf(Error)
    expect(failure).toMatchObject({ name: 'ValidationError', message: 'n must be positive', code: 'E_VALIDATION', field: 'n' })
    expect((failure as Error).stack).toContain('ValidationError')
    expect((failure as Error).cause).toMatchObject({ name: 'RangeError', message: '-1' })
    await close()
  })

  test('a thrown value that is not an Error arrives as itself', async () => {
    const { asker, close } = await pair(() => {
      throw { reason: 'nope', retry: false }
    })
    await expect(asker.request('check', 1)).rejects.toEqual({ reason: 'nope', retry: false })
    await close()
  })

  test('a CrossbusError is a CrossbusError again, with its code', async () => {
    const { asker, close } = await pair(() => {
      throw new CrossbusError('TIMEOUT', 'the upstream took too long')
    })
    const failure = await asker.request('check', 1).catch((error: unknown) => error)
    expect(isCrossbusError(failure, 'TIMEOUT')).toBe(true)
    expect((failure as Error).message).toBe('crossbus: the upstream took too long')
    await close()
  })
})
