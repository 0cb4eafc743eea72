// A tab and its dedicated worker over messagePort(worker) / messagePort(self),
// and a relay: tab B (BroadcastChannel) ↔ tab A ↔ A's worker (MessagePort)
// (DESIGN.md, semantics 4 and 10).
import type { Page } from '@playwright/test'
import { expect, peersOf, startBus, test } from './fixtures.ts'
import type { Seen } from './pages/kit.ts'

/** Starts a dedicated worker with a bus named `name`, and the page's bus linked to it (plus BroadcastChannel with `relay`). */
async function withWorker(page: Page, name: string, relay: boolean): Promise<{ pageId: string; workerId: string }> {
  return page.evaluate(
    async ({ busName, withChannel }) => {
      const { kit } = window
      const { worker, remote, id } = await kit.startWorker(busName)
      window.state.worker = remote
      window.state.workerId = id
      const link = kit.messagePort(worker)
      window.ctx = new kit.Ctx({ name: busName, transports: withChannel ? [kit.broadcastChannel(), link] : [link] })
      return { pageId: window.ctx.id, workerId: id }
    },
    { busName: name, withChannel: relay },
  )
}

const numbers = (events: Seen[]): number[] => events.map((event) => (event.data as { n: number }).n)
const range = (count: number): number[] => Array.from({ length: count }, (_, n) => n)

test('tab ↔ dedicated worker: events cross both ways in order, and the worker answers a request', async ({ open, name }) => {
  const page = await open()
  const { pageId, workerId } = await withWorker(page, name, false)
  await page.evaluate(() => window.state.worker.call({ op: 'record', pattern: 'to.worker.*', capacity: 5000 }))
  await page.evaluate(() => void window.ctx.record('from.worker.*', { capacity: 5000 }))
  await expect.poll(() => peersOf(page)).toEqual([workerId])
  expect(await page.evaluate(() => window.ctx.bus.peers().map((peer) => peer.transport))).toEqual(['message-port'])

  // Page → worker: 5,000 events published in one task (more than the first credit grant covers).
  await page.evaluate(() => window.ctx.wanted('to.worker.x'))
  const sent = await page.evaluate(() => window.ctx.publish('to.worker.x', 5000))
  await expect.poll(() => page.evaluate(() => window.state.worker.call<number>({ op: 'count', key: 'to.worker.*' })), { timeout: 10_000 }).toBe(5000)
  const inWorker = await page.evaluate(() => window.state.worker.call<Seen[]>({ op: 'events', key: 'to.worker.*' }))
  expect(inWorker.map((event) => event.id)).toEqual(sent)
  expect(new Set(inWorker.map((event) => event.source))).toEqual(new Set([pageId]))

  // Worker → page.
  await page.evaluate(() => window.state.worker.call({ op: 'wanted', topic: 'from.worker.x' }))
  const fromWorker = await page.evaluate(() => window.state.worker.call<string[]>({ op: 'publish', topic: 'from.worker.x', count: 3000 }))
  await expect.poll(() => page.evaluate(() => window.ctx.count('from.worker.*')), { timeout: 10_000 }).toBe(3000)
  const inPage = await page.evaluate(() => window.ctx.events('from.worker.*'))
  expect(inPage.map((event) => event.id)).toEqual(fromWorker)
  expect(numbers(inPage)).toEqual(range(3000))

  // Request answered in the worker.
  await page.evaluate(() => window.state.worker.call({ op: 'answer', pattern: 'work.*' }))
  expect(await page.evaluate(() => window.ctx.request('work.sum', [1, 2, 3]))).toEqual({ by: workerId, data: [1, 2, 3] })
  expect(await page.evaluate(() => window.ctx.tryRequest('nobody.answers', 1))).toEqual({ error: 'NO_RESPONDERS' })

  // Nothing was lost or refused on the way.
  const stats = await page.evaluate(() => window.ctx.bus.stats())
  expect(stats.transports[0]).toMatchObject({ name: 'message-port', dropped: 0, rejected: 0, queued: 0 })
  expect(stats.rejected).toBe(0)
})

test("relay: tab B (BroadcastChannel) and tab A's dedicated worker reach each other through A, exactly once, FIFO per source", async ({ open, name }) => {
  const a = await open()
  const b = await open()
  const { pageId: aId, workerId } = await withWorker(a, name, true)
  const bId = await startBus(b, name)
  // A subscribes to nothing: only the worker can make B's events wanted on B's link, only B the worker's.
  await a.evaluate(() => window.state.worker.call({ op: 'record', pattern: 'relay.>', capacity: 5000 }))
  await b.evaluate(() => void window.ctx.record('relay.>', { capacity: 5000 }))

  // Each end learns of the other through A.
  await expect.poll(() => peersOf(b)).toEqual([aId, workerId].sort())
  await expect.poll(() => a.evaluate(() => window.state.worker.call<string[]>({ op: 'peers' }))).toEqual([aId, bId].sort())
  await b.evaluate(() => window.ctx.wanted('relay.b'))
  await a.evaluate(() => window.state.worker.call({ op: 'wanted', topic: 'relay.w' }))

  // Both publish at once: 2,000 events each, then an end marker.
  const [fromB, fromWorker] = await Promise.all([
    b.evaluate(() => [...window.ctx.publish('relay.b', 2000), ...window.ctx.publish('relay.b.end', 1, 2000)]),
    a.evaluate(async () => [
      ...(await window.state.worker.call<string[]>({ op: 'publish', topic: 'relay.w', count: 2000 })),
      ...(await window.state.worker.call<string[]>({ op: 'publish', topic: 'relay.w.end', count: 1, start: 2000 })),
    ]),
  ])

  // The worker got B's events once each, in B's order; B got the worker's, in the worker's order.
  await expect
    .poll(
      async () => (await a.evaluate(() => window.state.worker.call<Seen[]>({ op: 'events', key: 'relay.>' }))).filter((event) => event.source === bId).length,
      {
        timeout: 10_000,
      },
    )
    .toBe(2001)
  const worker = await a.evaluate(() => window.state.worker.call<Seen[]>({ op: 'events', key: 'relay.>' }))
  expect(worker.filter((event) => event.source === bId).map((event) => event.id)).toEqual(fromB)
  expect(worker.filter((event) => event.source === workerId).map((event) => event.id)).toEqual(fromWorker) // its own, locally

  await expect
    .poll(() => b.evaluate(() => window.ctx.events('relay.>').filter((event) => event.source !== window.ctx.id).length), { timeout: 10_000 })
    .toBe(2001)
  const inB = await b.evaluate(() => window.ctx.events('relay.>'))
  expect(inB.filter((event) => event.source === workerId).map((event) => event.id)).toEqual(fromWorker)
  expect(inB.filter((event) => event.source === bId).map((event) => event.id)).toEqual(fromB) // its own, locally
  expect(inB).toHaveLength(4002)

  // A relayed, and nothing came back to its sender: no duplicates were even offered twice.
  const relay = await a.evaluate(() => window.ctx.bus.stats())
  expect(relay.transports.map((link) => link.name)).toEqual(['broadcast-channel', 'message-port'])
  expect(relay.transports.every((link) => link.dropped === 0 && link.rejected === 0)).toBe(true)
})
