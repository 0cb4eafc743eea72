// Startup in Node (issue 10): a worker thread's first events, a worker that serves, a request on load.
import { Worker } from 'node:worker_threads'
import { bundle } from '../test/bundle.js'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { recorder } from '../test/helpers.js'
import { createBus } from './bus.js'
import { broadcastChannel } from './transports/broadcast-channel.js'
import { messagePort } from './transports/message-port.js'
import type { Bus } from './types.js'

let workerFile: string

let bundled: { file: string; dispose(): void }

beforeAll(async () => {
  bundled = await bundle(new URL('../test/startup-worker.ts', import.meta.url))
  workerFile = bundled.file
})

afterAll(() => {
  bundled.dispose()
})

const buses: Bus[] = []
function unique(): { name: string; channel: string } {
  const name = `startup-${Date.now()}-${Math.random().toString(36).slice(2)}`
  return { name, channel: `${name}-bc` }
}

/** Resolves with the exit code once the worker exits. */
const exited = (worker: Worker): Promise<number> => new Promise((resolve) => worker.once('exit', resolve))

describe.each(['port', 'broadcast'] as const)('a worker thread linked by %s', (link) => {
  test('its first events (module evaluation, microtask, timer) reach the page that subscribed before starting it', async () => {
    const { name, channel } = unique()
    const seen = recorder()
    const worker = new Worker(workerFile, { workerData: { name, channel, link, work: 'publish' } })
    const bus = createBus({ name, transports: [link === 'port' ? messagePort(worker) : broadcastChannel({ channel })] })
    buses.push(bus)
    bus.subscribe('started.*', seen.handler)
    try {
      await seen.until(3)
      expect(seen.events.map((event) => event.topic).sort()).toEqual(['started.evaluation', 'started.microtask', 'started.timer'])
    } finally {
      await bus.close()
      await worker.terminate()
    }
  })

  test('a worker whose bus processes jobs stays alive and serves them until its bus closes, then exits', async () => {
    const { name, channel } = unique()
    const worker = new Worker(workerFile, { workerData: { name, channel, link, work: 'serve' } })
    const exit = exited(worker)
    const bus = createBus({ name, transports: [link === 'port' ? messagePort(worker) : broadcastChannel({ channel })] })
    const done = recorder()
    bus.subscribe('jobs.done', done.handler)
    try {
      // The worker is there (a BroadcastChannel does not keep what was posted before it listened).
      await expect.poll(() => bus.peers().length, { timeout: 5000 }).toBe(1)
      for (let index = 0; index < 100; index++) bus.publish('jobs.run', index)
      await expect.poll(() => done.events.filter((event) => typeof event.data === 'number').length, { timeout: 5000 }).toBe(100)
      bus.publish('jobs.quit', null)
      expect(await exit).toBe(0)
    } finally {
      await bus.close()
      await worker.terminate()
    }
  })
})

test('keepAlive: false lets a worker thread exit when its own script is done, subscriptions or not', async () => {
  const { name, channel } = unique()
  const worker = new Worker(workerFile, { workerData: { name, channel, link: 'broadcast', work: 'serve', keepAlive: false } })
  expect(await exited(worker)).toBe(0)
})

describe('a context that just started', () => {
  test.each(['port', 'broadcast'] as const)('publishes at once after createBus() (%s): the existing subscriber gets it, no wait in user code', async (link) => {
    const { name, channel } = unique()
    const { port1, port2 } = new MessageChannel()
    const existing = createBus({ name, transports: [link === 'port' ? messagePort(port1) : broadcastChannel({ channel })] })
    const seen = recorder()
    existing.subscribe('session.logout', seen.handler)
    const fresh = createBus({ name, transports: [link === 'port' ? messagePort(port2) : broadcastChannel({ channel })] })
    fresh.publish('session.logout', 'everywhere')
    await seen.until(1)
    expect(seen.events[0]?.data).toBe('everywhere')
    await Promise.all([existing.close(), fresh.close()])
    port1.close()
  })

  test.each(['port', 'broadcast'] as const)(
    'a request on load (%s) waits for discovery and gets its reply; NO_RESPONDERS only once discovery found none',
    async (link) => {
      const { name, channel } = unique()
      const { port1, port2 } = new MessageChannel()
      const replier = createBus({ name, transports: [link === 'port' ? messagePort(port1) : broadcastChannel({ channel })] })
      replier.reply('math.double', (event) => (event.data as number) * 2)
      const fresh = createBus({ name, transports: [link === 'port' ? messagePort(port2) : broadcastChannel({ channel })] })
      await expect(fresh.request('math.double', 21)).resolves.toBe(42)
      await expect(fresh.request('math.triple', 1)).rejects.toMatchObject({ code: 'NO_RESPONDERS' })
      await Promise.all([replier.close(), fresh.close()])
      port1.close()
    },
  )
})

describe('worker threads in a pool (issue 12)', () => {
  test('three worker threads and this thread in queue group "pool" share the jobs, each once; three requests run in three threads at once', async () => {
    const { name, channel } = unique()
    const workers = [0, 1, 2].map(() => new Worker(workerFile, { workerData: { name, channel, link: 'port', work: 'pool' } }))
    const bus = createBus({ name, transports: workers.map((worker) => messagePort(worker)) })
    buses.push(bus)
    const done = recorder<{ by: string; job: number }>()
    bus.subscribe('jobs.done', done.handler)
    bus.process('jobs.run', (event) => void bus.publish('jobs.done', { by: bus.id, job: event.data as number }), { queue: 'pool' })
    try {
      await expect.poll(() => bus.peers().length, { timeout: 5000 }).toBe(3)
      // Until every worker's membership has arrived, probes show who takes part.
      await expect
        .poll(
          () => {
            bus.publish('jobs.run', -1)
            return new Set(done.events.map((event) => event.data.by)).size
          },
          { timeout: 5000 },
        )
        .toBe(4)
      const before = done.events.length
      await expect.poll(() => bus.stats().subscriptions.find((sub) => sub.pattern === 'jobs.run')?.queued, { timeout: 5000 }).toBe(0)
      for (let index = 0; index < 400; index++) bus.publish('jobs.run', index)
      await expect.poll(() => done.events.filter((event) => event.data.job >= 0).length, { timeout: 10_000 }).toBe(400)
      const jobs = done.events.slice(before).filter((event) => event.data.job >= 0)
      expect(new Set(jobs.map((event) => event.data.job)).size).toBe(400)
      const by = new Map<string, number>()
      for (const event of jobs) by.set(event.data.by, (by.get(event.data.by) ?? 0) + 1)
      expect(by.size).toBe(4)
      for (const count of by.values()) expect(count).toBeGreaterThan(40)
      // Three requests of 50 ms at once: one per worker thread.
      const answers = (await Promise.all([1, 2, 3].map((n) => bus.request('work.sum', n, { timeout: 5000 })))) as { by: string }[]
      expect(new Set(answers.map((answer) => answer.by)).size).toBe(3)
    } finally {
      await bus.close()
      await Promise.all(workers.map((worker) => worker.terminate()))
    }
  })
})

afterAll(async () => {
  await Promise.all(buses.map((bus) => bus.close()))
})
