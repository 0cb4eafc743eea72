// A tab that crashes says no goodbye: the others must find out by themselves
// (heartbeat timeout, or at once through its Web Lock) and stop routing to it
// (DESIGN.md, semantic 4).
import { crashTab, expect, peersOf, startBus, test } from './fixtures.ts'
import { PEER_TIMEOUT_MS } from '../src/seams.ts'

test("a crashed tab leaves the other tabs' peers() within the peer timeout, with a peer-leave diagnostic, and gets no more events", async ({ open, name }) => {
  const a = await open()
  const b = await open()
  const c = await open()
  const aId = await startBus(a, name)
  const bId = await startBus(b, name)
  const cId = await startBus(c, name)
  await b.evaluate(() => void window.ctx.record('for.b'))
  await expect.poll(() => peersOf(a), { message: 'A sees B and C before the crash' }).toEqual([bId, cId].sort())
  await a.evaluate(() => window.ctx.wanted('for.b'))

  await crashTab(b)
  const since = Date.now()

  // Gone from A's and C's peers without a goodbye.
  await expect.poll(() => peersOf(a), { timeout: PEER_TIMEOUT_MS + 5000, message: "B leaves A's peers" }).toEqual([cId])
  const goneAfter = Date.now() - since
  await expect.poll(() => peersOf(c), { timeout: PEER_TIMEOUT_MS + 5000, message: "B leaves C's peers" }).toEqual([aId])
  expect(goneAfter).toBeLessThanOrEqual(PEER_TIMEOUT_MS + 2000)
  const seen = JSON.stringify(await a.evaluate(() => window.ctx.diagnostics))
  const leaves = await a.evaluate(() => window.ctx.diagnosticsOf('peer-leave'))
  expect(leaves, `one peer-leave in A's diagnostics: ${seen}`).toHaveLength(1)
  expect(leaves[0]!.message).toContain(bId)
  expect(leaves[0]!.message).not.toContain(' left ') // it never said goodbye

  // Nobody wants 'for.b' any more: A posts nothing for it.
  const posted = await a.evaluate(async () => {
    const sent = (): number => window.ctx.bus.stats().transports[0]!.sent
    const before = sent()
    window.ctx.publish('for.b', 100)
    await window.ctx.bus.flush()
    return sent() - before
  })
  expect(posted, `A posts nothing for a topic only B wanted (A's diagnostics: ${seen})`).toBe(0)
})

test('a tab watches the Web Lock of a tab opened after it, so a newer tab busy for longer than the peer timeout stays its peer', async ({ open, name }) => {
  const older = await open()
  const olderId = await startBus(older, name)
  const newer = await open()
  const newerId = await startBus(newer, name)
  await expect.poll(() => peersOf(older)).toEqual([newerId])
  await expect.poll(() => peersOf(newer)).toEqual([olderId])
  // The older tab waits on the newer one's lock (its hello may have overtaken the lock request: it looks again).
  const watching = (page: typeof older, id: string) =>
    page.evaluate(async (lock) => ((await navigator.locks.query()).pending ?? []).some((request) => request.name === lock), `crossbus:${name}:${id}`)
  await expect.poll(() => watching(older, newerId), { message: "the older tab watches the newer tab's lock" }).toBe(true)
  await expect.poll(() => watching(newer, olderId), { message: "the newer tab watches the older tab's lock" }).toBe(true)

  // Busy past the peer timeout (a bounded loop): silent, but alive, and its lock says so.
  await newer.evaluate((ms) => {
    const end = Date.now() + ms
    while (Date.now() < end) {
      // busy
    }
  }, PEER_TIMEOUT_MS + 2000)
  expect(await older.evaluate(() => window.ctx.diagnosticsOf('peer-leave'))).toEqual([])
  expect(await peersOf(older)).toEqual([newerId])
})
