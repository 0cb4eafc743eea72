// The bus in workerd (Cloudflare Workers), the runtime itself: no BroadcastChannel there,
// and the test pool installs a stub that never delivers, so the default must be no link.
import { expect, test, vi } from 'vitest'
import { createBus } from './bus.js'
import { defaultTransports } from './transports/default.js'
import { describeLink, messageChannelPair } from '../test/link-conformance.js'

test('runs in workerd', () => {
  expect(navigator.userAgent).toBe('Cloudflare-Workers')
})

test('chooses no default link in workerd, whatever `typeof BroadcastChannel` says', () => {
  expect(defaultTransports()).toEqual([])
  const bus = createBus()
  expect(bus.stats().transports).toEqual([])
})

test('publishes, delivers in order, processes with timeouts and retries, and answers requests', async () => {
  const bus = createBus({ onDiagnostic: () => {} })
  const seen: number[] = []
  bus.subscribe('edge.*', (event) => {
    seen.push(event.data as number)
  })
  for (let index = 0; index < 100; index++) bus.publish('edge.n', index)
  await vi.waitFor(() => expect(seen).toHaveLength(100), { interval: 1 })
  expect(seen).toEqual([...Array(100).keys()])

  const attempts: number[] = []
  const dead: unknown[] = []
  bus.process(
    'edge.job',
    (_event, { attempt, signal }) => {
      attempts.push(attempt)
      return new Promise<void>((_resolve, reject) => signal.addEventListener('abort', () => reject(signal.reason)))
    },
    { timeout: 5, retry: { attempts: 2, initialDelay: 1, jitter: false }, deadLetter: (_event, error) => dead.push(error) },
  )
  bus.publish('edge.job', 'x')
  await vi.waitFor(() => expect(dead).toHaveLength(1), { interval: 1 })
  expect(attempts).toEqual([1, 2])
  expect(dead[0]).toMatchObject({ code: 'TIMEOUT' })

  bus.reply('edge.ask', (event) => `edge says ${String(event.data)}`)
  await expect(bus.request('edge.ask', 'hi')).resolves.toBe('edge says hi')
  await bus.close()
})

// MessageChannel works inside one worker (without transfer lists, which crossbus never uses).
describeLink('MessagePort in workerd', messageChannelPair)
