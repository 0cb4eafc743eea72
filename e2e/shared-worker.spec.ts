// A SharedWorker hub: each tab links to it with messagePort(sharedWorker.port)
// and nothing else; the worker's bus links every connecting port with
// messagePort(self), one link per tab, and relays between them (DESIGN.md, semantic 4).
import type { Page } from '@playwright/test'
import { expect, peersOf, test } from './fixtures.ts'
import type { Seen } from './pages/kit.ts'

interface HubInfo {
  by: string
  links: number
  peers: string[]
}

/** The page's bus, linked to the hub only. */
function joinHub(page: Page, name: string): Promise<string> {
  return page.evaluate((busName) => {
    const { kit } = window
    window.ctx = new kit.Ctx({ name: busName, transports: [kit.messagePort(kit.connectHub(busName))] })
    return window.ctx.id
  }, name)
}

const hubInfo = (page: Page): Promise<HubInfo> => page.evaluate(() => window.ctx.request('hub.info', null) as Promise<HubInfo>)

test('events from tab A reach tab B through the SharedWorker hub, in order and once; requests cross it too', async ({ open, name }) => {
  const a = await open()
  const b = await open()
  const aId = await joinHub(a, name)
  const bId = await joinHub(b, name)
  const hub = await hubInfo(a)
  // One link per connected tab in the hub; each tab knows the other behind it.
  await expect.poll(async () => (await hubInfo(b)).links).toBe(2)
  expect((await hubInfo(b)).peers).toEqual([aId, bId].sort())
  await expect.poll(() => peersOf(a)).toEqual([bId, hub.by].sort())
  await expect.poll(() => peersOf(b)).toEqual([aId, hub.by].sort())
  expect(await b.evaluate(() => window.ctx.bus.peers().map((peer) => peer.transport))).toEqual(['message-port', 'message-port'])

  await b.evaluate(() => void window.ctx.record('chat.*', { capacity: 5000 }))
  await a.evaluate(() => window.ctx.wanted('chat.message'))
  const sent = await a.evaluate(() => [...window.ctx.publish('chat.message', 3000), ...window.ctx.publish('chat.end', 1, 3000)])
  await expect.poll(() => b.evaluate(() => window.ctx.count('chat.*')), { timeout: 10_000 }).toBe(3001)
  const got = await b.evaluate(() => window.ctx.events('chat.*'))
  expect(got.map((event: Seen) => event.id)).toEqual(sent)
  expect(new Set(got.map((event: Seen) => event.source))).toEqual(new Set([aId]))

  // B answers A's request, through the hub.
  await b.evaluate(() => window.ctx.answer('echo.*'))
  expect(await a.evaluate(() => window.ctx.request('echo.me', 'hi'))).toEqual({ by: bId, data: 'hi' })
  for (const page of [a, b]) {
    expect(await page.evaluate(() => window.ctx.bus.stats().transports.map(({ dropped, rejected }) => ({ dropped, rejected })))).toEqual([
      { dropped: 0, rejected: 0 },
    ])
  }
})

test('a tab that closes leaves the hub: its link there is dropped and the other tab stops seeing it', async ({ open, name }) => {
  const a = await open()
  const b = await open()
  await joinHub(a, name)
  const bId = await joinHub(b, name)
  await expect.poll(async () => (await hubInfo(a)).links).toBe(2)
  await expect.poll(() => peersOf(a)).toContain(bId)

  await b.close() // pagehide: B's bus says goodbye on its port
  await expect.poll(async () => (await hubInfo(a)).links).toBe(1)
  await expect.poll(() => peersOf(a)).not.toContain(bId)
})
