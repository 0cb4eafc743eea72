// A tab that crashes says no goodbye: the others must find out by themselves
// (heartbeat timeout, or at once through its Web Lock) and stop routing to it
// (DESIGN.md, semantic 4).
import { expect, peersOf, startBus, test } from './fixtures.ts'
import { PEER_TIMEOUT_MS } from '../src/link.ts'

test('a crashed tab leaves the other tabs\' peers() within the peer timeout, with a peer-leave diagnostic, and gets no more events', async ({ context, open, name }) => {
  const a = await open()
  const b = await open()
  const c = await open()
  const aId = await startBus(a, name)
  const bId = await startBus(b, name)
  const cId = await startBus(c, name)
  await b.evaluate(() => void window.ctx.record('for.b'))
  await expect.poll(() => peersOf(a), { message: 'A sees B and C before the crash' }).toEqual([bId, cId].sort())
  await a.evaluate(() => window.ctx.wanted('for.b'))

  const crashed = b.waitForEvent('crash')
  const cdp = await context.newCDPSession(b)
  // Not awaited: the command gets no answer from a renderer that is gone, only the crash event.
  void cdp.send('Page.crash').catch(() => {})
  await crashed
  const since = Date.now()

  // Gone from A's and C's peers without a goodbye.
  await expect.poll(() => peersOf(a), { timeout: PEER_TIMEOUT_MS + 5000, message: 'B leaves A\'s peers' }).toEqual([cId])
  const goneAfter = Date.now() - since
  await expect.poll(() => peersOf(c), { timeout: PEER_TIMEOUT_MS + 5000, message: 'B leaves C\'s peers' }).toEqual([aId])
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
