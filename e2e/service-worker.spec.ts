// A page and its service worker over messagePort(navigator.serviceWorker) /
// messagePort(self): postMessage reaches the worker, and wakes it after it
// was stopped (DESIGN.md, semantics 4, 9 and 10).
import type { CDPSession, Page } from '@playwright/test'
import { crashTab, expect, test } from './fixtures.ts'

interface Info {
  by: string
  boot: string
  /** sw.info requests answered by this boot of the worker. */
  asked: number
  data: unknown
  received: number
}

/** Registers the service worker, then creates the page's bus linked to it only. */
async function withServiceWorker(page: Page, name: string): Promise<string> {
  return page.evaluate(async (busName) => {
    const { kit } = window
    await kit.registerServiceWorker(busName)
    window.ctx = new kit.Ctx({ name: busName, transports: [kit.messagePort(navigator.serviceWorker)] })
    return window.ctx.id
  }, name)
}

/** Running status of the page's service worker versions, as DevTools reports them. */
async function watchServiceWorker(page: Page): Promise<{ cdp: CDPSession; status: () => string[] }> {
  const cdp = await page.context().newCDPSession(page)
  const versions = new Map<string, string>()
  cdp.on('ServiceWorker.workerVersionUpdated', ({ versions: updated }) => {
    for (const version of updated) versions.set(version.versionId, version.runningStatus)
  })
  await cdp.send('ServiceWorker.enable')
  return { cdp, status: () => [...versions.values()] }
}

test('a request from the page is answered by its service worker; events cross both ways', async ({ open, name }) => {
  const page = await open()
  const pageId = await withServiceWorker(page, name)
  const info = (await page.evaluate(() => window.ctx.request('sw.info', 'ping'))) as Info
  expect(info).toMatchObject({ data: 'ping', received: 0 })
  await expect.poll(() => page.evaluate(() => window.ctx.peerIds())).toEqual([info.by])

  // Page → service worker: a burst larger than the first credit grant of a point link.
  await page.evaluate(() => window.ctx.wanted('page.burst'))
  const sent = await page.evaluate(() => window.ctx.publish('page.burst', 10_000))
  await expect.poll(async () => ((await page.evaluate(() => window.ctx.request('sw.info', null))) as Info).received, { timeout: 10_000 }).toBe(10_000)
  expect(await page.evaluate(() => window.ctx.request('sw.events', null))).toEqual(sent)

  // Service worker → page.
  await page.evaluate(() => void window.ctx.record('sw.tick', { capacity: 5000 }))
  await page.evaluate(() => window.ctx.request('sw.wanted', 'sw.tick'))
  const ticks = (await page.evaluate(() => window.ctx.request('sw.emit', { count: 3000 }))) as string[]
  await expect.poll(() => page.evaluate(() => window.ctx.count('sw.tick')), { timeout: 10_000 }).toBe(3000)
  expect(await page.evaluate(() => window.ctx.events('sw.tick').map((event) => event.id))).toEqual(ticks)
  expect(await page.evaluate(() => window.ctx.bus.stats().transports[0]!)).toMatchObject({ dropped: 0, rejected: 0, queued: 0 })
  expect(pageId).toBeTruthy()
})

test('a stopped service worker is woken by the next postMessage and still answers the request', async ({ open, name }) => {
  const page = await open()
  await withServiceWorker(page, name)
  const before = (await page.evaluate(() => window.ctx.request('sw.info', 'first'))) as Info
  const { cdp, status } = await watchServiceWorker(page)
  await expect.poll(status).toContain('running')

  await cdp.send('ServiceWorker.stopAllWorkers')
  await expect.poll(status).toEqual(['stopped'])
  // The request's own postMessage starts the worker again (or the page's next heartbeat, if it comes first).
  const after = await page.evaluate(() => window.ctx.tryRequest('sw.info', 'after stop', 5000))
  const again = await page.evaluate(() => window.ctx.tryRequest('sw.info', 'again', 5000))
  expect(after, `the request after the stop is answered (a second request then got ${JSON.stringify(again)})`).toMatchObject({ data: 'after stop' })
  expect((after as Info).boot).not.toBe(before.boot) // a new start of the worker script, not the old one
  expect(status()).toContain('running')
})

test("a page that dies without a goodbye leaves its service worker's peers at once: the worker watches its Web Lock", async ({ open, name }) => {
  const stays = await open()
  const dies = await open()
  const staysId = await withServiceWorker(stays, name)
  const diesId = await withServiceWorker(dies, name)
  const peersOfWorker = (): Promise<string[]> => stays.evaluate(async () => ((await window.ctx.request('sw.peers', null)) as string[]).sort())
  await expect.poll(peersOfWorker).toEqual([staysId, diesId].sort())

  await crashTab(dies)
  // Well before the 5 s heartbeat timeout (without the lock watch it takes about 6 s here; with it, 20–700 ms).
  await expect.poll(peersOfWorker, { timeout: 3500 }).toEqual([staysId])
})
