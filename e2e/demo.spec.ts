// The demo page, served by Vite with demo/vite.config.ts as `npm run demo` does,
// driven as a person would: buttons and what the cards show. The only look
// inside is `window.crossbusDemo.bus.stats()`, to check the numbers shown.
// Screenshots are attached to each test's results (test-results/e2e/…); with
// CROSSBUS_DEMO_SCREENSHOT=docs/demo.png the stalled-consumer test also saves
// the README's screenshot there.
import { test as base, expect as baseExpect, type Locator, type Page } from '@playwright/test'
import type {} from '../demo/main.ts'

/** Several tabs, each with its workers, on a busy 2-core machine: give visible state time to settle. */
const expect = baseExpect.configure({ timeout: 15_000 })

const CONSUMER = 'demo.work.>'

interface Fixtures {
  /** Uncaught errors of every page of the test's browser context; must stay empty. */
  pageErrors: string[]
  /** Opens the demo in a new tab and waits until this tab, its worker, the shared and the service worker show. */
  openDemo: () => Promise<Page>
}

const test = base.extend<Fixtures>({
  viewport: { width: 1400, height: 1000 },
  pageErrors: async ({}, use) => {
    const errors: string[] = []
    await use(errors)
    expect(errors, 'uncaught errors in the pages').toEqual([])
  },
  openDemo: async ({ context, pageErrors }, use) => {
    // Every page of the context: those the demo opens with window.open too.
    context.on('page', (page) => void page.on('pageerror', (error) => pageErrors.push(`${page.url()}: ${String(error)}`)))
    await use(async () => {
      const page = await context.newPage()
      await page.goto('/')
      await ready(page)
      return page
    })
  },
})

test.describe.configure({ timeout: 90_000 })

/** Waits until the page draws its own card and those of its dedicated, shared and service workers. */
async function ready(page: Page): Promise<void> {
  await expect(page).toHaveTitle('crossbus demo')
  await expect(page.locator('body')).toHaveAttribute('data-ready', 'true')
  for (const kind of ['worker', 'shared-worker', 'service-worker']) await expect(page.locator(`.card[data-kind="${kind}"]`).first()).toBeVisible()
}

/** Clicks "Open another tab" and returns the tab it opened, ready. */
async function openTabFrom(page: Page): Promise<Page> {
  const [opened] = await Promise.all([page.context().waitForEvent('page'), page.getByRole('button', { name: 'Open another tab' }).click()])
  await ready(opened)
  return opened
}

/** The id this page shows for itself (on its own card). */
async function selfId(page: Page): Promise<string> {
  const id = await page.locator('.card[data-self]').getAttribute('data-context')
  expect(id).toBeTruthy()
  return id as string
}

const card = (page: Page, id: string): Locator => page.locator(`.card[data-context="${id}"]`)
const consumer = (context: Locator, field: 'queued' | 'capacity' | 'delivered' | 'dropped'): Locator =>
  context.locator(`tr[data-pattern="${CONSUMER}"] [data-column="${field}"]`)

/** The id of the dedicated worker card that belongs to tab `tabId`, as `page` shows it. */
async function workerOf(page: Page, tabId: string): Promise<string> {
  const title = tabId === (await selfId(page)) ? 'dedicated worker of this tab' : `dedicated worker of tab ${tabId}`
  const worker = page.locator('.card[data-kind="worker"]').filter({ has: page.locator('[data-field="title"]', { hasText: title }) })
  await expect(worker).toHaveCount(1)
  return (await worker.getAttribute('data-context')) as string
}

async function burst(page: Page, count: number): Promise<void> {
  await page.locator('#burst-count').fill(String(count))
  await page.getByRole('button', { name: 'Publish burst' }).click()
  await expect(page.locator('#burst-result')).toContainText(`Published ${count.toLocaleString('en-US')} events on demo.work.orders`)
}

/**
 * Every card's consumer in `page` shows these numbers, but those listed in
 * `except`: each event published once reaches each consumer once, whatever
 * number of paths (BroadcastChannel, shared worker, service worker) it took.
 */
async function expectConsumers(page: Page, expected: Record<string, string>, except: readonly string[] = []): Promise<void> {
  for (const context of await page.locator('.card').all()) {
    const id = (await context.getAttribute('data-context')) as string
    if (except.includes(id)) continue
    const kind = await context.getAttribute('data-kind')
    for (const [field, text] of Object.entries(expected)) {
      await expect(consumer(context, field as 'queued'), `${field} of ${kind} ${id}${id === (await selfId(page)) ? ' (the publisher)' : ''}`).toHaveText(text)
    }
  }
}

/** The numbers a card shows, as plain numbers. */
interface Shown {
  counters: Record<string, number>
  peers: number
  subscriptions: { pattern: string; queued: number; capacity: number; delivered: number; dropped: number }[]
  links: { queued: number; capacity: number; sent: number; received: number; dropped: number; peers: number }[]
}

/**
 * The page's own card shows what its bus.stats() says: read in the animation
 * frame right after the page's own render (its loop asked for this frame first),
 * so no event can slip in between what is shown and what stats() says.
 */
async function expectOwnCardIsStats(page: Page): Promise<void> {
  await expect(async () => {
    const { shown, stats } = await page.evaluate(
      () =>
        new Promise<{ shown: Shown; stats: Shown }>((resolve) =>
          requestAnimationFrame(() => {
            const own = document.querySelector('.card[data-self]') as HTMLElement
            const number = (text: string | null | undefined): number => Number((text ?? '').replaceAll(',', ''))
            const field = (scope: Element, name: string): string | null | undefined => scope.querySelector(`[data-field="${name}"]`)?.textContent
            const column = (row: Element, name: string): string | null | undefined => row.querySelector(`[data-column="${name}"]`)?.textContent
            const pair = (text: string | null | undefined): [number, number] => {
              const [left, right] = (text ?? '').split('/')
              return [number(left), number(right)]
            }
            const counters = ['published', 'received', 'delivered', 'dropped', 'rejected', 'failed'] as const
            const shown: Shown = {
              counters: Object.fromEntries(counters.map((name) => [name, number(field(own, name))])),
              peers: number(field(own, 'peers')),
              subscriptions: [...own.querySelectorAll('tr[data-pattern]')].map((row) => ({
                pattern: (row as HTMLElement).dataset.pattern as string,
                queued: number(column(row, 'queued')),
                capacity: number(column(row, 'capacity')),
                delivered: number(column(row, 'delivered')),
                dropped: number(column(row, 'dropped')),
              })),
              links: [...own.querySelectorAll('tr[data-link]')].map((row) => {
                const [queued, capacity] = pair(column(row, 'queued'))
                return {
                  queued,
                  capacity,
                  sent: number(column(row, 'sent')),
                  received: number(column(row, 'received')),
                  dropped: number(column(row, 'dropped')),
                  peers: number(column(row, 'peers')),
                }
              }),
            }
            const stats = window.crossbusDemo.bus.stats()
            resolve({
              shown,
              stats: {
                counters: Object.fromEntries(counters.map((name) => [name, stats[name]])),
                peers: stats.peers,
                subscriptions: stats.subscriptions.map(({ pattern, queued, capacity, delivered, dropped }) => ({
                  pattern,
                  queued,
                  capacity,
                  delivered,
                  dropped,
                })),
                links: stats.transports.map(({ queued, capacity, sent, received, dropped, peers }) => ({ queued, capacity, sent, received, dropped, peers })),
              },
            })
          }),
        ),
    )
    expect(shown).toEqual(stats)
  }).toPass({ timeout: 15_000 })
}

/** The stats of the consumer subscription in `page`'s bus. */
function consumerStats(page: Page): Promise<{ queued: number; capacity: number; delivered: number; dropped: number } | undefined> {
  return page.evaluate((pattern) => window.crossbusDemo.bus.stats().subscriptions.find((subscription) => subscription.pattern === pattern), CONSUMER)
}

const formatted = (value: number): string => value.toLocaleString('en-US')

/** A full-page screenshot kept with the test's results (and, given a path, saved there too). */
async function screenshot(page: Page, name: string, alsoTo?: string): Promise<void> {
  const path = test.info().outputPath(`${name}.png`)
  await page.screenshot({ path, fullPage: true })
  await test.info().attach(name, { path, contentType: 'image/png' })
  if (alsoTo !== undefined) await page.screenshot({ path: alsoTo, fullPage: true })
}

test('the room shows this tab, its dedicated worker, the shared worker and the service worker, with the numbers of bus.stats()', async ({ openDemo }) => {
  const page = await openDemo()
  const id = await selfId(page)
  expect(id).toBe(await page.evaluate(() => window.crossbusDemo.bus.id))
  await expect(page.locator('#self-id')).toHaveText(id)
  await expect(page.locator('.card')).toHaveCount(4)
  await expect(page.locator('.card[data-kind="tab"]')).toHaveCount(1)
  await expect(card(page, id).locator('[data-field="title"]')).toHaveText('this tab')

  // Each of the three workers is this tab's peer, shown on its card.
  const workers = await page
    .locator('.card:not([data-self])')
    .evaluateAll((cards) => cards.map((element) => (element as HTMLElement).dataset.context as string))
  expect(workers).toHaveLength(3)
  await expect(card(page, id).locator('[data-field="peers"]')).toHaveText('3')
  for (const worker of workers) {
    await expect(card(page, id).locator(`[data-peer="${worker}"]`)).toBeVisible()
    await expect(card(page, worker).locator(`[data-peer="${id}"]`)).toBeVisible()
    await expect(card(page, worker).locator('[data-field="health"]')).toHaveText('live')
  }
  await expectOwnCardIsStats(page)

  // A request answered by this tab's dedicated worker, through its reply handler.
  const worker = await workerOf(page, id)
  await page.getByRole('button', { name: 'Ask the worker' }).click()
  await expect(page.locator('#ask-result')).toContainText(`dedicated worker ${worker} answered in`)
  await expect(page.locator('#ask-result')).toContainText('its consumer has finished 0 events, is normal')
  await screenshot(page, 'one-tab')
})

test('a second tab opened from the demo and the first show each other, and a burst reaches every consumer in every context', async ({ openDemo }) => {
  const first = await openDemo()
  const second = await openTabFrom(first)
  const [firstId, secondId] = [await selfId(first), await selfId(second)]
  expect(secondId).not.toBe(firstId)

  // Both rooms: two tabs, a dedicated worker each, the shared worker, the service worker.
  for (const page of [first, second]) {
    await expect(page.locator('.card')).toHaveCount(6)
    await expect(page.locator('.card[data-kind="tab"]')).toHaveCount(2)
    await expect(page.locator('.card[data-kind="worker"]')).toHaveCount(2)
  }
  await expect(card(first, firstId).locator(`[data-peer="${secondId}"]`)).toBeVisible()
  await expect(card(second, secondId).locator(`[data-peer="${firstId}"]`)).toBeVisible()
  await expect(card(first, secondId).locator(`[data-peer="${firstId}"]`)).toBeVisible()
  await expect(card(first, firstId).locator('[data-field="peers"]')).toHaveText('5')
  expect(await workerOf(second, firstId)).toBe(await workerOf(first, firstId))

  await burst(first, 1000)
  await expectConsumers(first, { delivered: '1,000', queued: '0', dropped: '0' })
  await expectConsumers(second, { delivered: '1,000', queued: '0', dropped: '0' })
  expect(await consumerStats(second)).toMatchObject({ delivered: 1000, queued: 0, dropped: 0 })
  await expectOwnCardIsStats(first)
  await expectOwnCardIsStats(second)
  await screenshot(first, 'two-tabs-first')
  await screenshot(second, 'two-tabs-second')
})

test('a stalled consumer fills its queue to capacity and drops the rest, while every other consumer keeps up', async ({ openDemo }) => {
  const first = await openDemo()
  const second = await openTabFrom(first)
  const secondId = await selfId(second)
  const stalled = card(first, secondId)
  await expect(first.locator('.card')).toHaveCount(6)

  // The command goes over the bus; the second tab's next status shows it took effect.
  await stalled.getByRole('button', { name: 'stalled', exact: true }).click()
  await expect(stalled.locator('[data-field="mode"]')).toHaveText('stalled')
  await expect(card(second, secondId).locator('[data-field="mode"]')).toHaveText('stalled')

  await burst(first, 1000)
  await expectConsumers(first, { delivered: '1,000', queued: '0', dropped: '0' }, [secondId])
  // The stalled consumer holds one event and queues the rest.
  await expect(consumer(stalled, 'queued')).toHaveText('999')
  await burst(first, 1000)
  await expectConsumers(first, { delivered: '2,000', queued: '0', dropped: '0' }, [secondId])

  // 2,000 events: one held by the handler, 1,024 queued (its capacity), 975 dropped.
  const capacity = 1024
  const dropped = 2000 - 1 - capacity
  await expect(consumer(stalled, 'queued')).toHaveText(formatted(capacity))
  await expect(consumer(stalled, 'capacity')).toHaveText(formatted(capacity))
  await expect(consumer(stalled, 'dropped')).toHaveText(formatted(dropped))
  await expect(consumer(stalled, 'delivered')).toHaveText('0')
  await expect(stalled.locator('[data-field="consumer-queued"]')).toHaveText(formatted(capacity))
  await expect(card(second, secondId).locator('[data-field="dropped"]')).toHaveText(formatted(dropped))
  // What the first tab shows of the second is what the second tab's bus says.
  expect(await consumerStats(second)).toEqual({ pattern: CONSUMER, queued: capacity, capacity, delivered: 0, dropped, failed: 0 })
  expect(await second.evaluate(() => window.crossbusDemo.bus.stats().dropped)).toBe(dropped)
  await expectOwnCardIsStats(first)
  await expectOwnCardIsStats(second)
  await screenshot(first, 'stalled-consumer', process.env.CROSSBUS_DEMO_SCREENSHOT)

  // Back to normal: the held event finishes and the queue drains; what was dropped stays dropped.
  await stalled.getByRole('button', { name: 'normal', exact: true }).click()
  await expect(consumer(stalled, 'delivered')).toHaveText(formatted(capacity + 1))
  await expect(consumer(stalled, 'queued')).toHaveText('0')
  expect(await consumerStats(second)).toMatchObject({ delivered: capacity + 1, queued: 0, dropped })
})

test('closing the second tab from its card removes it and its worker from the first tab at once', async ({ openDemo }) => {
  const first = await openDemo()
  const second = await openTabFrom(first)
  const [firstId, secondId] = [await selfId(first), await selfId(second)]
  await expect(first.locator('.card')).toHaveCount(6)
  const secondWorker = await workerOf(first, secondId)

  const closed = second.waitForEvent('close')
  await card(first, secondId).getByRole('button', { name: 'Close tab' }).click()
  await closed
  // Well inside the 5 s peer timeout: its bye and its released lock tell the others at once.
  await expect(card(first, secondId)).toHaveCount(0, { timeout: 4000 })
  await expect(card(first, secondWorker)).toHaveCount(0, { timeout: 4000 })
  await expect(first.locator('.card')).toHaveCount(4)
  await expect(card(first, firstId).locator(`[data-peer="${secondId}"]`)).toHaveCount(0)
  await expect(card(first, firstId).locator('[data-field="peers"]')).toHaveText('3')
  const log = first.locator('#log')
  await expect(log).toContainText(`closing: says bye on every link and releases its lock`)
  // Its bye, or its lock released, whichever this tab heard first.
  await expect(log).toContainText(new RegExp(`peer ${secondId} (left|is gone)`))
  await expect(log).toContainText(`tab ${secondId} left the room`)
  await expectOwnCardIsStats(first)
  await screenshot(first, 'after-close')
})

test('a tab opened later starts from the retained note, and draws every card from retained statuses', async ({ openDemo }) => {
  const first = await openDemo()
  const firstId = await selfId(first)
  const text = `Deploy at 17:00, from ${firstId}`
  await first.getByLabel('note').fill(text)
  await first.getByRole('button', { name: 'Publish retained note' }).click()
  await expect(first.locator('#state-current')).toHaveText(text)

  const later = await openTabFrom(first)
  await expect(later.locator('#state-current')).toHaveText(text)
  await expect(later.locator('#state-meta')).toContainText(`set by tab ${firstId}`)
  await expect(later.locator('.card')).toHaveCount(6)
  await expect(later.locator(`.card[data-context="${firstId}"]`)).toBeVisible()
  await screenshot(later, 'later-tab')
})

test('durable events: a consumer tab closed while it works hands over to a waiting one, which replays what the first had not acknowledged', async ({
  openDemo,
  context,
}) => {
  const page = await openDemo()
  const openConsumer = async (state: 'live' | 'standby'): Promise<Page> => {
    const [opened] = await Promise.all([context.waitForEvent('page'), page.getByRole('button', { name: 'Open a durable consumer tab' }).click()])
    await ready(opened)
    await expect(opened.locator('#durable-consume')).toHaveAttribute('data-state', state)
    return opened
  }
  const numbers = async (consumerTab: Page): Promise<{ n: number; redelivered: boolean }[]> =>
    (
      await consumerTab
        .locator('#durable-events li')
        .evaluateAll((items) => items.map((item) => ({ text: item.textContent ?? '', redelivered: item.getAttribute('data-redelivered') === 'true' })))
    ).map(({ text, redelivered }) => ({ n: Number(/#(\d+)/.exec(text)?.[1]), redelivered }))

  const first = await openConsumer('live')
  // One live consumer per name: a second tab waits its turn, and says so.
  const second = await openConsumer('standby')
  await expect(second.locator('#durable-status')).toContainText('waits its turn')
  await page.locator('#durable-count').fill('10')
  await page.getByRole('button', { name: 'Publish durable events' }).click()
  await expect(page.locator('#durable-status')).toContainText('10 durable events (#1–#10) committed to IndexedDB')
  // The first consumer handles one event every 0.4 s; close its tab after two.
  await expect.poll(async () => (await numbers(first)).length).toBeGreaterThanOrEqual(2)
  const beforeClose = Math.max(...(await numbers(first)).map((entry) => entry.n))
  await first.close()

  await expect(second.locator('#durable-consume')).toHaveAttribute('data-state', 'live')
  await expect.poll(async () => (await numbers(second)).map((entry) => entry.n).includes(10), { timeout: 20_000 }).toBe(true)
  const replayed = await numbers(second)
  // At least once: what the first tab did not finish, in order, up to the last; all of it was stored before this tab took over.
  const seen = replayed.map((entry) => entry.n).reverse()
  expect(seen).toEqual(Array.from({ length: seen.length }, (_, index) => 11 - seen.length + index))
  // Nothing skipped: it starts at most one past the last event seen in the first tab (which may have finished one more while closing).
  expect(seen[0]).toBeLessThanOrEqual(beforeClose + 2)
  expect(replayed.every((entry) => entry.redelivered)).toBe(true)
  await expect(second.locator('#durable-redelivered')).toHaveText(String(replayed.length))
  const shot = test.info().outputPath('durable-replay.png')
  await second.screenshot({ path: shot, fullPage: true })
  await test.info().attach('durable replay', { path: shot, contentType: 'image/png' })
})
