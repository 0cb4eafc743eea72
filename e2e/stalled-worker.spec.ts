// A dedicated worker whose thread is blocked stops granting credits: the
// page's link to it fills its bounded queue and drops the overflow, while
// the page's own subscribers and a tab on BroadcastChannel get every event
// (DESIGN.md, semantics 1 and 4).
import { expect, startBus, test } from './fixtures.ts'
import type { Seen } from './pages/kit.ts'

const EVENTS = 50_000
const BLOCK_MS = 3000

test("a blocked worker fills only its own link's bounded queue; a tab and local subscribers still receive all 50,000 events", async ({ open, name }) => {
  const a = await open()
  const b = await open()
  await startBus(b, name)
  await b.evaluate((capacity) => void window.ctx.record('load.>', { capacity }), EVENTS)
  const workerId = await a.evaluate(
    async ({ busName, capacity }) => {
      const { kit } = window
      const { worker, remote, id } = await kit.startWorker(busName)
      window.state.worker = remote
      window.ctx = new kit.Ctx({ name: busName, transports: [kit.broadcastChannel(), kit.messagePort(worker)] })
      window.ctx.record('load.>', { capacity })
      await remote.call({ op: 'record', pattern: 'load.>', capacity })
      return id
    },
    { busName: name, capacity: EVENTS },
  )
  // Both links want load.x: link 0 (BroadcastChannel, tab B) and link 1 (the worker).
  await a.evaluate(() => window.ctx.wanted('load.x', 0))
  await a.evaluate(() => window.ctx.wanted('load.x', 1))
  expect(await a.evaluate(() => window.ctx.peerIds())).toContain(workerId)

  const burst = await a.evaluate(
    async ({ count, ms }) => {
      const bus = window.ctx.bus
      const link = () => bus.stats().transports[1]!
      // The worker answers, then spins: from here on it takes no message and grants no credit.
      await window.state.worker.call({ op: 'block', ms })
      const before = link()
      const started = performance.now()
      let receiptDropped = 0
      for (let n = 0; n < count; n++) receiptDropped += bus.publish('load.x', { n }).dropped
      const publishMs = performance.now() - started
      // Same task: no credit can have arrived since the burst began.
      const after = link()
      return { before, after, publishMs, receiptDropped }
    },
    { count: EVENTS, ms: BLOCK_MS },
  )
  const sent = burst.after.sent - burst.before.sent
  const dropped = burst.after.dropped - burst.before.dropped
  expect(burst.before.queued).toBe(0)
  expect(burst.after.queued).toBeLessThanOrEqual(burst.after.capacity)
  expect(burst.after.queued).toBe(burst.after.capacity) // full, and no fuller
  expect(dropped).toBeGreaterThan(0)
  expect(sent + burst.after.queued + dropped).toBe(EVENTS) // each event sent, queued or counted as dropped
  expect(burst.receiptDropped).toBe(dropped)
  test.info().annotations.push({
    type: 'stalled link',
    description: `${EVENTS} published in ${burst.publishMs.toFixed(0)} ms: ${sent} sent on credit, ${burst.after.queued} queued (capacity ${burst.after.capacity}), ${dropped} dropped`,
  })

  // Everyone else got everything, in order, while the worker was still blocked.
  const complete = (seen: Seen[]): { count: number; inOrder: boolean } => ({
    count: seen.length,
    inOrder: seen.every((event, index) => (event.data as { n: number }).n === index),
  })
  await expect.poll(() => b.evaluate(() => window.ctx.count('load.>')), { timeout: 10_000 }).toBe(EVENTS)
  expect(
    await b.evaluate(() => {
      const seen = window.ctx.events('load.>')
      return { count: seen.length, inOrder: seen.every((event, index) => (event.data as { n: number }).n === index) }
    }),
  ).toEqual({ count: EVENTS, inOrder: true })
  await expect.poll(() => a.evaluate(() => window.ctx.count('load.>')), { timeout: 10_000 }).toBe(EVENTS)
  const stats = await a.evaluate(() => window.ctx.bus.stats())
  expect(stats.transports[0]).toMatchObject({ name: 'broadcast-channel', dropped: 0, queued: 0 })
  expect(stats.dropped).toBe(dropped) // the worker link's drops are the only ones
  const drops = await a.evaluate(() => window.ctx.diagnosticsOf('drop'))
  expect(drops.length).toBeGreaterThan(0)
  expect(drops.every((diagnostic) => diagnostic.transport === 'message-port')).toBe(true)
  expect(drops.reduce((sum, diagnostic) => sum + (diagnostic.count ?? 1), 0)).toBe(dropped)

  // Unblocked, the worker catches up on what was sent and queued: the oldest events, in order.
  const delivered = sent + burst.after.queued
  await expect.poll(() => a.evaluate(() => window.state.worker.call<number>({ op: 'count', key: 'load.>' })), { timeout: BLOCK_MS + 10_000 }).toBe(delivered)
  const inWorker = await a.evaluate(() => window.state.worker.call<Seen[]>({ op: 'events', key: 'load.>' }))
  expect(complete(inWorker)).toEqual({ count: delivered, inOrder: true })
  await expect.poll(() => a.evaluate(() => window.ctx.bus.stats().transports[1]!.queued)).toBe(0)
})
