// Tabs of one browser on the default BroadcastChannel link (DESIGN.md,
// semantics 4, 8 and 10): ordered fan-out exactly once, interest routing,
// request/reply, retained state for late joiners, peers and goodbyes, batching.
import type { Page } from '@playwright/test'
import { expect, peersOf, startBus, test } from './fixtures.ts'
import { PEER_TIMEOUT_MS } from '../src/seams.ts'

/** Opens `count` tabs, each with a bus named `name`; returns the tabs and their bus ids. */
async function tabs(open: () => Promise<Page>, name: string, count: number): Promise<{ pages: Page[]; ids: string[] }> {
  const pages: Page[] = []
  const ids: string[] = []
  for (let index = 0; index < count; index++) {
    const page = await open()
    pages.push(page)
    ids.push(await startBus(page, name))
  }
  return { pages, ids }
}

test('events published in tab A reach the subscribers in tabs B and C in order, exactly once, over one post per batch', async ({ open, name }) => {
  const {
    pages: [b, c],
    ids: [bId, cId],
  } = await tabs(open, name, 2)
  for (const page of [b!, c!]) await page.evaluate(() => void window.ctx.record('orders.*', { capacity: 1000 }))
  // A joins last: B's and C's answers to its hello carry their subscriptions, so once A
  // knows them as peers it knows what they want.
  const {
    pages: [a],
    ids: [aId],
  } = await tabs(open, name, 1)
  await expect.poll(() => peersOf(a!)).toEqual([bId, cId].sort())

  const published = await a!.evaluate(() => [...window.ctx.publish('orders.created', 200), ...window.ctx.publish('orders.end', 1, 200)])
  for (const page of [b!, c!]) {
    await expect.poll(() => page.evaluate(() => window.ctx.count('orders.*'))).toBe(201)
    const got = await page.evaluate(() => window.ctx.events('orders.*'))
    // The end marker came last (FIFO per source), so anything duplicated would be here already.
    expect(got.map((event) => event.id)).toEqual(published)
    expect(got.map((event) => (event.data as { n: number }).n)).toEqual(Array.from({ length: 201 }, (_, n) => n))
    expect(new Set(got.map((event) => event.source))).toEqual(new Set([aId]))
    expect(got.every((event, index) => index === 0 || event.seq > got[index - 1]!.seq)).toBe(true)
    expect(await page.evaluate(() => window.ctx.bus.stats().received)).toBe(201)
  }
  // One BroadcastChannel link reaches both tabs: each event was posted once, not once per tab.
  expect(await a!.evaluate(() => window.ctx.bus.stats().transports[0]!.sent)).toBe(201)
})

test('nothing is posted while no tab is interested; once a tab subscribes, events go', async ({ open, name }) => {
  const { pages, ids } = await tabs(open, name, 2)
  const [b, c] = pages as [Page, Page]
  await b.evaluate(() => void window.ctx.record('other.topic'))
  const {
    pages: [a],
  } = await tabs(open, name, 1)
  await expect.poll(() => peersOf(a!)).toEqual([...ids].sort())

  const idle = await a!.evaluate(async () => {
    for (let n = 0; n < 50; n++) window.ctx.bus.publish('nobody.listens', { n })
    await window.ctx.bus.flush()
    const link = window.ctx.bus.stats().transports[0]!
    return { sent: link.sent, queued: link.queued, dropped: link.dropped }
  })
  expect(idle).toEqual({ sent: 0, queued: 0, dropped: 0 })
  for (const page of pages) expect(await page.evaluate(() => window.ctx.bus.stats().transports[0]!.received)).toBe(0)

  // C becomes interested: A's next events are posted and reach it.
  await c.evaluate(() => void window.ctx.record('nobody.listens'))
  await a!.evaluate(() => window.ctx.wanted('nobody.listens'))
  await a!.evaluate(() => window.ctx.publish('nobody.listens', 10))
  await expect
    .poll(() => c.evaluate(() => window.ctx.events('nobody.listens').map((event) => (event.data as { n: number }).n)))
    .toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9])
  expect(await a!.evaluate(() => window.ctx.bus.stats().transports[0]!.sent)).toBeGreaterThanOrEqual(10)
  expect(await b.evaluate(() => window.ctx.count('other.topic'))).toBe(0)
})

test('a request from tab A is answered by the reply handler in tab B; NO_RESPONDERS at once when no tab replies', async ({ open, name }) => {
  const { pages, ids } = await tabs(open, name, 3)
  const [a, b] = pages as [Page, Page, Page]
  await b.evaluate(() => {
    window.ctx.bus.reply('math.double', (event) => ({ by: window.ctx.id, value: (event.data as number) * 2 }))
  })
  // ctx.request retries while B's reply pattern is still on its way.
  expect(await a.evaluate(() => window.ctx.request('math.double', 21))).toEqual({ by: ids[1], value: 42 })
  expect(await a.evaluate(() => window.ctx.bus.request('math.double', 50, { timeout: 2000 }))).toEqual({ by: ids[1], value: 100 })

  const none = await a.evaluate(async () => {
    const started = performance.now()
    const outcome = await window.ctx.tryRequest('math.triple', 1, 5000)
    return { outcome, ms: performance.now() - started }
  })
  expect(none.outcome).toEqual({ error: 'NO_RESPONDERS' })
  expect(none.ms).toBeLessThan(500) // at once, not after the 5 s timeout
})

test('a tab opened later with last: true starts from the state tab A retained, then follows live events', async ({ open, name }) => {
  // A retains; B is another peer that has nothing retained.
  const {
    pages: [a],
  } = await tabs(open, name, 2)
  await a!.evaluate(() => {
    window.ctx.bus.publish('room.state', { players: 1 }, { retain: true })
    window.ctx.bus.publish('room.state', { players: 3 }, { retain: true })
    window.ctx.bus.publish('room.topic', { title: 'chess' }, { retain: true })
    window.ctx.bus.publish('room.chat', { text: 'not retained' })
  })
  // The late tab: its bus starts now and asks its peers for what `room.*` retained.
  const late = await open()
  await startBus(late, name)
  await late.evaluate(() => void window.ctx.record('room.*', { last: true }))
  await expect
    .poll(() => late.evaluate(() => window.ctx.events('room.*').map((event) => ({ topic: event.topic, data: event.data }))))
    .toEqual(
      expect.arrayContaining([
        { topic: 'room.state', data: { players: 3 } },
        { topic: 'room.topic', data: { title: 'chess' } },
      ]),
    )
  // Live events follow, and the retained state came once, not once per peer or per ask.
  await a!.evaluate(() => window.ctx.wanted('room.state'))
  await a!.evaluate(() => void window.ctx.bus.publish('room.state', { players: 4 }, { retain: true }))
  await expect.poll(() => late.evaluate(() => window.ctx.count('room.*'))).toBe(3)
  const got = await late.evaluate(() => window.ctx.events('room.*').map((event) => ({ topic: event.topic, data: event.data })))
  expect(got.filter((event) => event.topic === 'room.state')).toEqual([
    { topic: 'room.state', data: { players: 3 } },
    { topic: 'room.state', data: { players: 4 } },
  ])
})

test('peers(): each of three tabs sees the other two', async ({ open, name }) => {
  const { pages, ids } = await tabs(open, name, 3)
  for (const [index, page] of pages.entries()) {
    await expect.poll(() => peersOf(page)).toEqual(ids.filter((_, other) => other !== index).sort())
    const transports = await page.evaluate(() => window.ctx.bus.peers().map((peer) => peer.transport))
    expect(transports).toEqual(['broadcast-channel', 'broadcast-channel'])
    expect(await page.evaluate(() => window.ctx.diagnosticsOf('peer-join').length)).toBe(2)
  }
})

test("a tab closed with page.close() says goodbye: it leaves the others' peers() at once, not after the peer timeout", async ({ open, name }) => {
  const { pages, ids } = await tabs(open, name, 3)
  const [a, b, c] = pages as [Page, Page, Page]
  for (const [index, page] of pages.entries()) await expect.poll(() => peersOf(page)).toEqual(ids.filter((_, other) => other !== index).sort())

  const closedAt = Date.now()
  await c.close() // pagehide fires in the tab (no beforeunload)
  const remaining: [Page, string][] = [
    [a, ids[1]!],
    [b, ids[0]!],
  ]
  for (const [page, other] of remaining) {
    await expect.poll(() => peersOf(page), { timeout: PEER_TIMEOUT_MS + 3000, message: 'the closed tab leaves peers()' }).toEqual([other])
  }
  const goneAfter = Date.now() - closedAt
  const leaves = await a.evaluate(() => window.ctx.diagnosticsOf('peer-leave'))
  expect(leaves).toHaveLength(1)
  // A goodbye ('left'), or its Web Lock let go, whichever the other tab hears first: both at once, not a
  // heartbeat timeout ('timed out') long after the tab was gone.
  expect(leaves[0]!.message).toMatch(/ left | is gone \(its lock was released\)/)
  expect(goneAfter).toBeLessThan(PEER_TIMEOUT_MS)
})

test('a burst of 5,000 events crosses to another tab in a few large postMessages', async ({ open, name }) => {
  const {
    pages: [b],
  } = await tabs(open, name, 1)
  await b!.evaluate(() => void window.ctx.record('burst.x', { capacity: 5000 }))
  const a = await open()
  // Count what A's bus posts: wrap postMessage before the bus opens its channel.
  await a.evaluate((busName) => {
    const notes = window.state.notes
    notes.posts = 0
    notes.eventPosts = 0
    const post = BroadcastChannel.prototype.postMessage
    BroadcastChannel.prototype.postMessage = function (this: BroadcastChannel, message: unknown) {
      notes.posts!++
      if ((message as { kind?: unknown } | null)?.kind === 'events') notes.eventPosts!++
      return post.call(this, message)
    }
    window.ctx = new window.kit.Ctx({ name: busName })
  }, name)
  await a.evaluate(() => window.ctx.wanted('burst.x'))

  const burst = await a.evaluate(() => {
    const before = { eventPosts: window.state.notes.eventPosts!, sent: window.ctx.bus.stats().transports[0]!.sent }
    const ids = window.ctx.publish('burst.x', 5000)
    return { ids, before }
  })
  await expect.poll(() => b!.evaluate(() => window.ctx.count('burst.x')), { timeout: 10_000 }).toBe(5000)
  const got = await b!.evaluate(() => window.ctx.events('burst.x').map((event) => event.id))
  expect(got).toEqual(burst.ids)

  const after = await a.evaluate(() => ({ eventPosts: window.state.notes.eventPosts!, sent: window.ctx.bus.stats().transports[0]!.sent }))
  expect(after.sent - burst.before.sent).toBe(5000)
  const posts = after.eventPosts - burst.before.eventPosts
  expect(posts).toBeGreaterThanOrEqual(Math.ceil(5000 / 512))
  expect(posts).toBeLessThanOrEqual(Math.ceil(5000 / 512) + 3)
})
