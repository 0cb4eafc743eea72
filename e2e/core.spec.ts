// The core bus in a real Chromium tab: non-blocking publish, ordered delivery,
// bounded queues under a stalled consumer, and time-sliced delivery of bursts.
import { expect, test } from '@playwright/test'
import type {} from './pages/core.ts'

let pageErrors: string[] = []

test.beforeEach(async ({ page }) => {
  pageErrors = []
  page.on('pageerror', (error) => pageErrors.push(String(error)))
  await page.goto('/e2e/pages/core.html')
  await expect.poll(() => (pageErrors.length > 0 ? pageErrors.join('\n') : page.locator('#status').textContent())).toBe('ready')
})

test.afterEach(() => {
  expect(pageErrors).toEqual([])
})

test('publish returns before any delivery, and each subscription receives its events in order', async ({ page }) => {
  const count = 1000
  const result = await page.evaluate((n) => window.crossbusE2E.ordering(n), count)

  expect(result.published).toBe(2 * count)
  expect(result.deliveredInsidePublish).toBe(false)
  expect(result.deliveredAfterPublishSameTask).toBe(0)

  const expected = Array.from({ length: count }, (_, n) => n)
  expect(result.exact).toEqual(expected)
  expect(result.asyncOrder).toEqual(expected)
  expect(result.asyncMaxInFlight).toBe(1)

  const interleaved = expected.flatMap((n) => [
    { topic: 'order.a', n },
    { topic: 'order.b', n },
  ])
  expect(result.wildcard.map(({ topic, n }) => ({ topic, n }))).toEqual(interleaved)
  const seqs = result.wildcard.map((event) => event.seq)
  expect(seqs).toEqual(Array.from({ length: 2 * count }, (_, index) => index + 1))
})

test('a stalled subscriber with capacity 10 drops exactly the overflow; another subscriber receives everything', async ({ page }) => {
  const first = 1000
  const second = 50
  const result = await page.evaluate(([a, b]) => window.crossbusE2E.stalled(a, b), [first, second] as const)

  // First burst, one task: 10 fit the queue, the rest overflow. Then the stalled handler
  // takes event 0 and never returns, leaving one free slot for the second burst.
  const expectedDropped = first - 10 + (second - 1)
  expect(result.stalledStarted).toEqual([0])
  expect(result.stalledSub).toEqual({ queued: 10, capacity: 10, dropped: expectedDropped, delivered: 0 })
  expect(result.healthyReceived).toEqual(Array.from({ length: first + second }, (_, n) => n))
  expect(result.healthySub).toMatchObject({ queued: 0, dropped: 0, delivered: first + second })
  expect(result.stats).toEqual({ published: first + second, delivered: first + second, dropped: expectedDropped })
  expect(result.receiptDropped).toBe(expectedDropped)
  expect(result.dropDiagnostics).toBe(expectedDropped)
})

test('a long burst is delivered in time slices: a timer and a frame requested before it run before it ends', async ({ page }, testInfo) => {
  const events = 200_000
  const result = await page.evaluate((n) => window.crossbusE2E.burst(n), events)
  testInfo.annotations.push({
    type: 'burst',
    description: `${result.delivered} events in ${result.totalMs.toFixed(0)} ms over ${result.slices} slices, longest ${result.longestSliceMs.toFixed(1)} ms; setTimeout(0) ran at ${result.timeoutRanAt}, rAF at ${result.frameRanAt}`,
  })

  expect(result.delivered).toBe(events)
  expect(result.inOrder).toBe(true)
  expect(result.slices).toBeGreaterThanOrEqual(3)
  // The timer and the frame were requested before the burst was published and
  // ran while part of it was still queued: the bus gave the page its turn.
  expect(result.timeoutRanAt).toBeGreaterThan(0)
  expect(result.timeoutRanAt).toBeLessThan(events)
  expect(result.frameRanAt).toBeGreaterThan(0)
  expect(result.frameRanAt).toBeLessThan(events)
})
