// The demo's NATS panel, as a person would use it: the demo served as `npm run demo` serves it, opened in two
// browser contexts (two devices) with ?nats=<the test's nats-server>, and its buttons. Without the parameter
// the panel only says how to turn it on (the other demo tests run without a server).
import { test as base, expect as baseExpect, type Page } from '@playwright/test'
import { startNatsServer, type NatsTestServer } from '../test/nats.ts'
import type {} from '../demo/main.ts'

const expect = baseExpect.configure({ timeout: 20_000 })
/** The demo's dev server (playwright.config.ts: the pages' port + 1). */
const DEMO = `http://127.0.0.1:${Number(process.env.CROSSBUS_E2E_PORT ?? 5174) + 1}/`

const test = base.extend<{ nats: NatsTestServer; pageErrors: string[] }>({
  nats: async ({}, use) => {
    const server = await startNatsServer()
    try {
      await use(server)
    } finally {
      await server.dispose()
    }
  },
  pageErrors: async ({}, use) => {
    const errors: string[] = []
    await use(errors)
    expect(errors, 'uncaught errors in the pages').toEqual([])
  },
})

async function openDemo(page: Page, errors: string[], query = ''): Promise<Page> {
  page.on('pageerror', (error) => errors.push(`${page.url()}: ${String(error)}`))
  await page.goto(`${DEMO}${query}`)
  await expect(page.locator('body')).toHaveAttribute('data-ready', 'true')
  return page
}

const field = (page: Page, name: string) => page.locator(`#nats-panel [data-nats="${name}"]`)

test('the NATS panel: two devices, durable events through the outbox, counts and the backlog shown', async ({ browser, nats, pageErrors }) => {
  test.setTimeout(90_000)
  const devices = [await browser.newContext({ viewport: { width: 1400, height: 1000 } }), await browser.newContext({ viewport: { width: 1400, height: 1000 } })]
  try {
    const query = `?nats=${encodeURIComponent(nats.wsUrl)}`
    const a = await openDemo(await (devices[0] as (typeof devices)[0]).newPage(), pageErrors, query)
    const b = await openDemo(await (devices[1] as (typeof devices)[0]).newPage(), pageErrors, query)
    for (const page of [a, b]) await expect(page.locator('#nats-status')).toHaveAttribute('data-state', 'ok')
    await expect(a.locator('#nats-status')).toContainText('this tab holds the connection')

    await a.locator('#nats-count').fill('7')
    await a.getByRole('button', { name: 'Publish durable events to NATS' }).click()
    await expect(field(b, 'received')).toHaveText('7')
    await expect(b.locator('#nats-events li')).toHaveCount(7)
    await expect(field(a, 'exported')).toHaveText('7')
    await expect(field(a, 'outbox')).toHaveText('0')
    await expect(field(a, 'received')).toHaveText('0') // its own never come back

    // The server goes away: the backlog waits in IndexedDB, shown, and drains once it is back.
    await nats.kill()
    await expect(a.locator('#nats-status')).toHaveAttribute('data-state', 'error')
    await a.locator('#nats-count').fill('5')
    await a.getByRole('button', { name: 'Publish durable events to NATS' }).click()
    await expect(field(a, 'outbox')).toHaveText('5')
    await nats.start()
    await expect(field(b, 'received')).toHaveText('12', { timeout: 30_000 })
    await expect(field(a, 'outbox')).toHaveText('0')
    const stats = await a.evaluate(() => window.crossbusDemo.bridge?.stats())
    expect(stats).toMatchObject({ holder: true, status: 'connected', exported: 12, outbox: 0 })
    const shot = await a
      .locator('#nats-panel')
      .screenshot(process.env.CROSSBUS_NATS_SCREENSHOT === undefined ? {} : { path: process.env.CROSSBUS_NATS_SCREENSHOT })
    await test.info().attach('nats panel', { body: shot, contentType: 'image/png' })
  } finally {
    for (const device of devices) await device.close()
  }
})

test('without ?nats the panel only says how to turn it on, and no NATS code is loaded', async ({ browser, pageErrors }) => {
  const context = await browser.newContext()
  try {
    const page = await openDemo(await context.newPage(), pageErrors)
    await expect(page.locator('#nats-panel .nats-off')).toBeVisible()
    await expect(page.locator('#nats-panel .nats-on')).toBeHidden()
    expect(await page.evaluate(() => window.crossbusDemo.bridge)).toBeUndefined()
    const loaded = await page.evaluate(() => performance.getEntriesByType('resource').map((entry) => entry.name))
    expect(loaded.filter((name) => /bridges\/nats|@nats-io|nats-core|jetstream/.test(name))).toEqual([])
  } finally {
    await context.close()
  }
})
