// What a context publishes as it starts reaches the contexts already subscribed,
// with no wait in user code (issue 10): a tab on load, a dedicated worker, a
// shared worker and a service worker, each publishing at module evaluation, in
// a microtask and in setTimeout(0) (e2e/pages/startup-context.ts). And close()
// under traffic: remote events stop at once, and the deadline holds.
import type { Page } from '@playwright/test'
import { expect, startBus, test } from './fixtures.ts'

const STARTUP = '/e2e/pages/startup-context.ts'
const topics = (kind: string): string[] => ['evaluation', 'microtask', 'timer'].map((when) => `started.${kind}.${when}`).sort()
const startedIn = (page: Page): Promise<string[]> =>
  page.evaluate(() =>
    window.ctx
      .events('started.>')
      .map((event) => event.topic)
      .sort(),
  )

test('a tab that publishes on load reaches the tab already subscribed', async ({ open, name }) => {
  const existing = await open()
  await startBus(existing, name)
  await existing.evaluate(() => void window.ctx.record('started.>'))
  await open(`/e2e/pages/startup.html?name=${encodeURIComponent(name)}`)
  await expect.poll(() => startedIn(existing)).toEqual(topics('tab'))
})

test('a dedicated worker’s first events reach the page that subscribed before starting it', async ({ open, name }) => {
  const page = await open()
  await page.evaluate(
    ({ busName, script }) => {
      const worker = new Worker(`${script}?name=${encodeURIComponent(busName)}`, { type: 'module' })
      window.ctx = new window.kit.Ctx({ name: busName, transports: [window.kit.messagePort(worker)] })
      window.ctx.record('started.>')
    },
    { busName: name, script: STARTUP },
  )
  await expect.poll(() => startedIn(page)).toEqual(topics('dedicated'))
})

test('a shared worker’s first events reach the tab whose connection started it', async ({ open, name }) => {
  const page = await open()
  await page.evaluate(
    ({ busName, script }) => {
      const { port } = new SharedWorker(`${script}?name=${encodeURIComponent(busName)}`, { type: 'module', name: busName })
      window.ctx = new window.kit.Ctx({ name: busName, transports: [window.kit.messagePort(port)] })
      window.ctx.record('started.>')
    },
    { busName: name, script: STARTUP },
  )
  await expect.poll(() => startedIn(page)).toEqual(topics('shared'))
})

test('a service worker’s first events reach the page that registered it', async ({ open, name }) => {
  const page = await open()
  await page.evaluate(
    async ({ busName, script }) => {
      window.ctx = new window.kit.Ctx({ name: busName, transports: [window.kit.messagePort(navigator.serviceWorker)] })
      window.ctx.record('started.>')
      await navigator.serviceWorker.register(`${script}?name=${encodeURIComponent(busName)}`, { type: 'module' })
    },
    { busName: name, script: STARTUP },
  )
  await expect.poll(() => startedIn(page), { timeout: 10_000 }).toEqual(topics('service'))
})

test('close() under traffic: remote events stop at once and the deadline holds, whatever a peer keeps publishing', async ({ open, name }) => {
  const publisher = await open()
  const closing = await open()
  await startBus(publisher, name)
  await closing.evaluate((busName) => {
    window.ctx = new window.kit.Ctx({ name: busName })
    window.state.notes.handled = 0
    // Slower than its peer: one event per macrotask, a queue large enough never to drop.
    window.ctx.bus.subscribe(
      'feed',
      async () => {
        window.state.notes.handled = (window.state.notes.handled ?? 0) + 1
        await new Promise((resolve) => setTimeout(resolve, 0))
      },
      { capacity: 100_000 },
    )
  }, name)
  await publisher.evaluate(() => window.ctx.wanted('feed'))
  // The publisher keeps going (bounded: 3,000 chunks of 100, one chunk per macrotask) while the other tab closes.
  await publisher.evaluate(() => {
    window.state.notes.chunks = 0
    const pump = (): void => {
      window.ctx.publish('feed', 100)
      window.state.notes.chunks = (window.state.notes.chunks ?? 0) + 1
      if (window.state.notes.chunks < 3000 && window.state.notes.stop !== 1) setTimeout(pump, 0)
    }
    pump()
  })
  await expect.poll(() => closing.evaluate(() => window.state.notes.handled)).toBeGreaterThan(50)
  const result = await closing.evaluate(async () => {
    const queued = window.ctx.bus.stats().subscriptions[0]?.queued ?? 0
    const handled = window.state.notes.handled ?? 0
    const started = performance.now()
    await window.ctx.bus.close({ timeout: 300 })
    return { queued, afterClose: (window.state.notes.handled ?? 0) - handled, ms: performance.now() - started, dropped: window.ctx.bus.stats().dropped }
  })
  const stillPublishing = await publisher.evaluate(() => (window.state.notes.chunks ?? 0) < 3000)
  await publisher.evaluate(() => {
    window.state.notes.stop = 1
  })
  expect(stillPublishing, 'the peer was still publishing when close() resolved').toBe(true)
  expect(result.afterClose).toBeLessThanOrEqual(result.queued)
  // What was left queued at the deadline, and what arrived while closing, is counted.
  expect(result.dropped).toBeGreaterThan(0)
})
