// A cross-origin iframe linked to its parent by messagePort(window, { origin }):
// events and requests cross both ways, and frames from an origin that is not
// allowed are refused, counted and reported while the allowed link keeps
// working (DESIGN.md, semantics 4, 5 and 10).
import type { Frame, Page } from '@playwright/test'
import { addFrame, expect, FOREIGN_ORIGIN, OTHER_ORIGIN, PAGES_ORIGIN, peersOf, test } from './fixtures.ts'
import type { Seen } from './pages/kit.ts'

/** Parent and allowed iframe, each with a bus linked only to the other. */
async function linked(page: Page, name: string): Promise<{ frame: Frame; parentId: string; frameId: string }> {
  const frame = await addFrame(page, 'allowed', OTHER_ORIGIN)
  const parentId = await page.evaluate(
    ({ busName, origin }) => {
      const iframe = document.querySelector<HTMLIFrameElement>('iframe[name="allowed"]')!
      window.ctx = new window.kit.Ctx({ name: busName, transports: [window.kit.messagePort(iframe.contentWindow!, { origin })] })
      return window.ctx.id
    },
    { busName: name, origin: OTHER_ORIGIN },
  )
  const frameId = await frame.evaluate(
    ({ busName, origin }) => {
      window.ctx = new window.kit.Ctx({ name: busName, transports: [window.kit.messagePort(window.parent, { origin })] })
      return window.ctx.id
    },
    { busName: name, origin: PAGES_ORIGIN },
  )
  await expect.poll(() => peersOf(page)).toEqual([frameId])
  await expect.poll(() => frame.evaluate(() => window.ctx.peerIds())).toEqual([parentId])
  return { frame, parentId, frameId }
}

test("a cross-origin iframe and its parent exchange events both ways and answer each other's requests", async ({ open, name }) => {
  const page = await open()
  const { frame, parentId, frameId } = await linked(page, name)

  await frame.evaluate(() => void window.ctx.record('down.*', { capacity: 5000 }))
  await page.evaluate(() => void window.ctx.record('up.*', { capacity: 5000 }))
  await page.evaluate(() => window.ctx.wanted('down.x'))
  await frame.evaluate(() => window.ctx.wanted('up.x'))
  const [down, up] = await Promise.all([page.evaluate(() => window.ctx.publish('down.x', 2000)), frame.evaluate(() => window.ctx.publish('up.x', 2000))])
  await expect.poll(() => frame.evaluate(() => window.ctx.count('down.*')), { timeout: 10_000 }).toBe(2000)
  await expect.poll(() => page.evaluate(() => window.ctx.count('up.*')), { timeout: 10_000 }).toBe(2000)
  expect((await frame.evaluate(() => window.ctx.events('down.*'))).map((event: Seen) => event.id)).toEqual(down)
  expect((await page.evaluate(() => window.ctx.events('up.*'))).map((event: Seen) => event.id)).toEqual(up)

  await frame.evaluate(() => window.ctx.answer('frame.*'))
  await page.evaluate(() => window.ctx.answer('parent.*'))
  expect(await page.evaluate(() => window.ctx.request('frame.ping', 1))).toEqual({ by: frameId, data: 1 })
  expect(await frame.evaluate(() => window.ctx.request('parent.ping', 2))).toEqual({ by: parentId, data: 2 })
  for (const context of [page, frame]) expect(await context.evaluate(() => window.ctx.bus.stats().rejected)).toBe(0)
})

test('crossbus frames posted by an iframe of an origin that is not allowed are refused and reported; the allowed link keeps working', async ({
  open,
  name,
}) => {
  const page = await open()
  const { frame } = await linked(page, name)
  await page.evaluate(() => void window.ctx.record('up.*'))
  await frame.evaluate(() => window.ctx.wanted('up.x'))

  // A third iframe, from another origin, posts frames that look like this bus's own.
  const intruder = await addFrame(page, 'intruder', FOREIGN_ORIGIN)
  const posted = await intruder.evaluate((busName) => {
    const frames = [
      { crossbus: 1, bus: busName, from: 'intruder', kind: 'hello', routes: [{ id: 'intruder', version: 1, patterns: ['>'], replies: ['>'] }], ask: true },
      {
        crossbus: 1,
        bus: busName,
        from: 'intruder',
        kind: 'events',
        events: [{ id: 'intruder:1', topic: 'up.forged', data: { forged: true }, source: 'intruder', seq: 1, time: Date.now(), headers: {} }],
      },
      { crossbus: 1, bus: busName, from: 'intruder', kind: 'credit', credit: 1_000_000 },
    ]
    for (const message of frames) window.parent.postMessage(message, '*')
    return frames.length
  }, name)

  await expect.poll(() => page.evaluate(() => window.ctx.bus.stats().rejected)).toBeGreaterThanOrEqual(posted)
  const refused = await page.evaluate(() => window.ctx.diagnosticsOf('bad-frame'))
  expect(refused.length).toBeGreaterThanOrEqual(posted)
  expect(refused[0]!.message).toContain(FOREIGN_ORIGIN)

  // The allowed iframe still gets through, and nothing forged was delivered or joined.
  await frame.evaluate(() => void window.ctx.bus.publish('up.after', 'still works'))
  await expect.poll(() => page.evaluate(() => window.ctx.events('up.*').map((event) => event.data))).toEqual(['still works'])
  expect(await peersOf(page)).not.toContain('intruder')
  expect(await page.evaluate(() => window.ctx.bus.stats().transports[0]!.rejected)).toBeGreaterThanOrEqual(posted)
})
