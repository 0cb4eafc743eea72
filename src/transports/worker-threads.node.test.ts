import { MessageChannel as NodeMessageChannel, Worker } from 'node:worker_threads'
import { bundle } from '../../test/bundle.js'
import { afterAll, beforeAll, expect, test, vi } from 'vitest'
import { createBus } from '../bus.js'
import type { Bus } from '../types.js'
import { broadcastChannel } from './broadcast-channel.js'
import { messagePort } from './message-port.js'
import { describeLink } from '../../test/link-conformance.js'

let workerFile: string

let bundled: { file: string; dispose(): void }

beforeAll(async () => {
  bundled = await bundle(new URL('../../test/worker-entry.ts', import.meta.url))
  workerFile = bundled.file
})

afterAll(() => {
  bundled.dispose()
})

async function withWorker(run: (bus: Bus, names: { name: string; channel: string }) => Promise<void>): Promise<void> {
  const name = `threads-${Date.now()}-${Math.random()}`
  const channel = `${name}-bc`
  const worker = new Worker(workerFile, { workerData: { name, channel } })
  const bus = createBus({ name, transports: [messagePort(worker)] })
  try {
    await run(bus, { name, channel })
  } finally {
    await bus.close()
    await worker.terminate()
  }
}

test('a worker thread linked by its port answers requests and exchanges events both ways', async () => {
  await withWorker(async (bus) => {
    await vi.waitFor(() => expect(bus.peers()).toHaveLength(1), { interval: 5, timeout: 5000 })
    const back: unknown[] = []
    bus.subscribe('from.worker', (event) => {
      back.push(event.data)
    })
    const reply = await vi.waitFor(() => bus.request('worker.echo', 'hi', { timeout: 1000 }), { interval: 5, timeout: 5000 })
    expect(reply).toMatchObject({ echoed: 'hi', by: bus.peers()[0]?.id })
    await vi.waitFor(() => expect(bus.publish('to.worker', -1).queued).toBe(1), { interval: 5 })
    for (let index = 0; index < 1000; index++) bus.publish('to.worker', index)
    await vi.waitFor(() => expect(back.filter((value) => (value as number) >= 0)).toHaveLength(1000), { interval: 5, timeout: 5000 })
    expect(back.filter((value) => (value as number) >= 0)).toEqual([...Array(1000).keys()])
  })
})

test('BroadcastChannel crosses worker threads, and a worker that closes says goodbye', async () => {
  await withWorker(async (viaPort, { name, channel }) => {
    // A second context in this thread, linked to the worker by BroadcastChannel only.
    const viaChannel = createBus({ name, transports: [broadcastChannel({ channel })] })
    try {
      await vi.waitFor(() => expect(viaChannel.peers().length).toBeGreaterThanOrEqual(1), { interval: 5, timeout: 5000 })
      const reply = await vi.waitFor(() => viaChannel.request('worker.echo', 'over the channel', { timeout: 1000 }), { interval: 5, timeout: 5000 })
      expect(reply).toMatchObject({ echoed: 'over the channel' })
      await vi.waitFor(() => expect(viaPort.publish('worker.close', null).queued).toBe(1), { interval: 5 })
      await vi.waitFor(() => expect(viaPort.peers()).toEqual([]), { interval: 5, timeout: 5000 })
    } finally {
      await viaChannel.close()
    }
  })
})

// The conformance suite over Node's worker_threads ports: the left side through the
// EventEmitter API a worker_threads Worker has (on/off), the right through the port itself.
describeLink('worker_threads MessagePort', () => {
  const { port1, port2 } = new NodeMessageChannel()
  const injector = new NodeMessageChannel()
  const left = messagePort({
    postMessage: (message: unknown) => port1.postMessage(message),
    on: (type: 'message' | 'messageerror', listener: (data: unknown) => void) => {
      port1.on(type, listener)
      injector.port2.on(type, listener)
    },
    off: (type: 'message' | 'messageerror', listener: (data: unknown) => void) => {
      port1.off(type, listener)
      injector.port2.off(type, listener)
    },
  })
  return {
    left,
    right: messagePort(port2),
    inject: (message) => injector.port1.postMessage(message),
  }
})
