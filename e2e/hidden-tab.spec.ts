// A really hidden tab (a background tab of a browser that throttles hidden
// tabs, as a user's does: see the 'hidden' project in playwright.config.ts)
// sends and receives at full speed: link flushes happen at the end of the
// task (a microtask) and delivery slices yield through MessageChannel, never
// through timers, which Chromium throttles in hidden tabs (DESIGN.md, semantics 2 and 4).
import { expect, test } from '@playwright/test'
import { HARNESS, PAGES_ORIGIN } from './fixtures.ts'
import { RawContext, type RawTab } from './raw-tabs.ts'
import type {} from './pages/harness.ts'

const URL_ = `${PAGES_ORIGIN}${HARNESS}`

let raw: RawContext
let visible: RawTab
let hidden: RawTab
let name: string

test.beforeEach(async ({ browser }, testInfo) => {
  name = `e2e-hidden-${testInfo.testId}-${Math.random().toString(36).slice(2, 8)}`
  raw = await RawContext.create(browser)
  visible = await raw.open(URL_)
  hidden = await raw.open(URL_, true) // a tab behind the visible one, never selected
  expect(await visible.evaluate(() => document.visibilityState)).toBe('visible')
  expect(await hidden.evaluate(() => document.visibilityState)).toBe('hidden')
  // The browser throttles this tab's timers: ten chained setTimeout(0) take seconds, not milliseconds.
  const chainedTimersMs = await hidden.evaluate(async () => {
    const started = performance.now()
    for (let index = 0; index < 10; index++) await new Promise((resolve) => setTimeout(resolve, 0))
    return performance.now() - started
  })
  testInfo.annotations.push({ type: 'throttling', description: `10 chained setTimeout(0) in the hidden tab: ${chainedTimersMs.toFixed(0)} ms` })
  expect(chainedTimersMs).toBeGreaterThan(1000)
  for (const tab of [visible, hidden]) {
    await tab.evaluate((busName) => {
      window.ctx = new window.kit.Ctx({ name: busName })
    }, name)
  }
})

test.afterEach(async () => {
  expect(visible.errors, 'uncaught errors in the visible tab').toEqual([])
  expect(hidden.errors, 'uncaught errors in the hidden tab').toEqual([])
  await raw.close()
})

test('a hidden tab answers 20 requests for bursts, each from a message handler, and the visible tab gets them all at once', async () => {
  const bursts = 20
  const size = 500
  // The hidden tab publishes a burst whenever it is asked, in the handler of the asking event.
  await hidden.evaluate((burstSize) => {
    const { ctx, kit } = window
    ctx.bus.subscribe('burst.go', (event) => {
      if (event.headers[kit.PROBE] !== undefined) return
      const burst = event.data as number
      for (let n = 0; n < burstSize; n++) ctx.bus.publish('burst.data', { burst, n })
    })
  }, size)
  await visible.evaluate((capacity) => void window.ctx.record('burst.data', { capacity }), bursts * size)
  await visible.evaluate(() => window.ctx.wanted('burst.go'))
  await hidden.evaluate(() => window.ctx.wanted('burst.data'))

  // The visible tab asks for burst k + 1 when burst k is complete, and times the whole exchange.
  const result = await visible.evaluate(
    ({ count, burstSize }) =>
      new Promise<{ ms: number; received: number; inOrder: boolean }>((resolve) => {
        const { ctx } = window
        const started = performance.now()
        let received = 0
        ctx.bus.subscribe(
          'burst.data',
          (event) => {
            const { burst, n } = event.data as { burst: number; n: number }
            received++
            if (n !== burstSize - 1) return
            if (burst + 1 < count) ctx.bus.publish('burst.go', burst + 1)
            else {
              const seen = ctx.events('burst.data')
              const inOrder = seen.every((each, index) => {
                const data = each.data as { burst: number; n: number }
                return data.burst * burstSize + data.n === index
              })
              resolve({ ms: performance.now() - started, received, inOrder })
            }
          },
          { capacity: count * burstSize },
        )
        ctx.bus.publish('burst.go', 0)
      }),
    { count: bursts, burstSize: size },
  )
  test.info().annotations.push({ type: 'bursts', description: `${bursts} bursts of ${size} from the hidden tab in ${result.ms.toFixed(0)} ms` })
  expect(result).toMatchObject({ received: bursts * size, inOrder: true })
  // Timer-paced sending would cost about a second per burst here (see the throttling check).
  expect(result.ms).toBeLessThan(3000)
  expect(await hidden.evaluate(() => document.visibilityState)).toBe('hidden')
  expect(await hidden.evaluate(() => window.ctx.bus.stats().transports[0]!.sent)).toBeGreaterThanOrEqual(bursts * size)
})

test('a hidden tab receiving a long burst drains it in many slices without waiting for timers', async () => {
  const events = 20_000
  // Each event costs the hidden tab some work, so delivery takes many 8 ms slices.
  await hidden.evaluate((count) => {
    const notes = window.state.notes
    notes.delivered = 0
    notes.slices = 0
    notes.sink = 0
    let inSlice = false
    window.ctx.bus.subscribe(
      'long.burst',
      (event) => {
        if (event.headers[window.kit.PROBE] !== undefined) return
        if (!inSlice) {
          inSlice = true
          notes.slices!++
          if (notes.delivered === 0) notes.first = performance.now()
          queueMicrotask(() => (inSlice = false)) // runs once this drain (one slice) is over
        }
        for (let index = 0; index < 2000; index++) notes.sink! += Math.sqrt(index + (event.data as number))
        notes.delivered!++
        if (notes.delivered === count) notes.last = performance.now()
      },
      { capacity: count },
    )
  }, events)
  await visible.evaluate(() => window.ctx.wanted('long.burst'))
  await visible.evaluate((count) => {
    for (let n = 0; n < count; n++) window.ctx.bus.publish('long.burst', n)
  }, events)

  await expect.poll(() => hidden.evaluate(() => window.state.notes.delivered), { timeout: 20_000 }).toBe(events)
  const { slices, ms } = await hidden.evaluate(() => ({ slices: window.state.notes.slices!, ms: window.state.notes.last! - window.state.notes.first! }))
  test.info().annotations.push({ type: 'slices', description: `${events} events drained in ${slices} slices over ${ms.toFixed(0)} ms in the hidden tab` })
  // Slices chained through setTimeout would be throttled after the fifth: seconds per slice, not milliseconds.
  expect(slices).toBeGreaterThanOrEqual(10)
  expect(ms).toBeLessThan(3000)
  expect(await hidden.evaluate(() => document.visibilityState)).toBe('hidden')
})
