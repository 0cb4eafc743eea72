// Hostile input in real Chromium (issue 11): an allowed cross-origin iframe
// that tries to act as the origin's own contexts, a dedicated worker that
// posts garbage on its link, and a raw channel forging goodbyes. Each frame is
// refused, counted and reported; no page gets an error (the fixture fails a
// test on any uncaught error); the contexts it aimed at are unaffected.
import type { Frame } from '@playwright/test'
import { addFrame, expect, OTHER_ORIGIN, PAGES_ORIGIN, peersOf, startBus, test } from './fixtures.ts'
import type { Seen } from './pages/kit.ts'

/** Posts raw messages from the iframe to its parent, as the iframe's own link would (same window, allowed origin). */
function forge(frame: Frame, messages: unknown[]): Promise<void> {
  return frame.evaluate(
    ({ list, origin }) => {
      const holes = (length: number, values: Record<number, unknown> = {}): unknown[] => {
        const array = new Array<unknown>(length)
        for (const [index, value] of Object.entries(values)) array[Number(index)] = value
        return array
      }
      // Markers the test cannot send through evaluate's JSON: holes and a broken toString.
      const revive = (value: unknown): unknown => {
        if (value === '<broken>') return { toString: 0, valueOf: 0 }
        if (Array.isArray(value)) return value.map(revive)
        if (typeof value === 'object' && value !== null) {
          const object = value as Record<string, unknown>
          if (Array.isArray(object['<holes>'])) return holes(object['<holes>'].length, object.values as Record<number, unknown>)
          return Object.fromEntries(Object.entries(object).map(([key, item]) => [key, revive(item)]))
        }
        return value
      }
      for (const message of list) window.parent.postMessage(revive(message), origin)
    },
    { list: messages, origin: PAGES_ORIGIN },
  )
}

test('an allowed cross-origin iframe cannot act as the origin’s contexts: forged sources, records and replies are refused; parent and tabs unaffected', async ({
  open,
  name,
}) => {
  const parent = await open()
  const frame = await addFrame(parent, 'allowed', OTHER_ORIGIN)
  const parentId = await parent.evaluate(
    ({ busName, origin }) => {
      const iframe = document.querySelector<HTMLIFrameElement>('iframe[name="allowed"]')!
      window.ctx = new window.kit.Ctx({
        name: busName,
        transports: [window.kit.broadcastChannel(), window.kit.messagePort(iframe.contentWindow!, { origin })],
      })
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
  // B subscribes and asks; C publishes and answers (slowly, so forged replies have time to race it).
  const tabB = await open()
  const tabC = await open()
  const bId = await startBus(tabB, name)
  const cId = await startBus(tabC, name)
  await tabB.evaluate(() => void window.ctx.record('news.*', { capacity: 5000 }))
  await tabC.evaluate(() => {
    window.ctx.bus.reply('svc.ping', () => 'pong')
    window.ctx.bus.reply('svc.get', () => new Promise((resolve) => setTimeout(() => resolve('real'), 400)))
  })
  await expect.poll(() => peersOf(parent)).toEqual([bId, cId, frameId].sort())
  await expect.poll(() => peersOf(tabB)).toEqual([parentId, cId, frameId].sort())
  expect(await tabB.evaluate(() => window.ctx.request('svc.ping', null))).toBe('pong')
  await tabC.evaluate(() => window.ctx.wanted('news.x'))

  // Garbage first: before issue 11 this was an uncaught error in the parent.
  await forge(frame, [{ crossbus: '<broken>' }, { crossbus: 1, bus: name, from: frameId, kind: 'hello', routes: { '<holes>': [0, 0], values: {} } }])
  // Records in C's name, events in C's name with a sequence number meant to silence C.
  await forge(frame, [
    {
      crossbus: 1,
      bus: name,
      from: frameId,
      kind: 'hello',
      routes: [
        { id: frameId, version: 1e6, patterns: ['news.*'], replies: [] },
        { id: cId, version: Number.MAX_SAFE_INTEGER, patterns: ['>'], replies: ['>'] },
      ],
    },
    {
      crossbus: 1,
      bus: name,
      from: frameId,
      kind: 'events',
      sources: [cId],
      topics: ['news.x'],
      src: [0],
      seq: [Number.MAX_SAFE_INTEGER],
      topic: [0],
      time: [0],
      data: [`FORGED as ${cId}`],
    },
  ])
  // B asks three times; meanwhile the iframe sprays what it guesses B's inboxes are, as itself and as C.
  await tabB.evaluate(() => {
    ;(window as unknown as { answers: Promise<unknown[]> }).answers = Promise.all([1, 2, 3].map(() => window.ctx.request('svc.get', null)))
  })
  const spray = Array.from({ length: 30 }, (_, index) => index + 1)
  await forge(frame, [
    {
      crossbus: 1,
      bus: name,
      from: frameId,
      kind: 'events',
      sources: [frameId, cId],
      topics: spray.map((n) => `$reply.${bId}.${n}`),
      src: spray.flatMap(() => [0, 1]),
      seq: spray.flatMap((n) => [1e6 + n, 1e6 + n]),
      topic: spray.flatMap((_, index) => [index, index]),
      time: spray.flatMap(() => [0, 0]),
      data: spray.flatMap(() => ['FORGED', 'FORGED as C']),
    },
  ])
  expect(await tabB.evaluate(() => (window as unknown as { answers: Promise<unknown[]> }).answers)).toEqual(['real', 'real', 'real'])

  // C is not silenced: its next ten events reach B, and nothing forged ever did.
  await tabC.evaluate(() => window.ctx.publish('news.x', 10))
  await expect.poll(() => tabB.evaluate(() => window.ctx.events('news.*').length)).toBe(10)
  const seen = await tabB.evaluate(() => window.ctx.events('news.*'))
  expect(seen.map((event: Seen) => [event.source, (event.data as { n: number }).n])).toEqual(Array.from({ length: 10 }, (_, n) => [cId, n]))

  // The parent refused and reported all of it; the tabs refused nothing (nothing forged reached them).
  const parentStats = await parent.evaluate(() => ({ stats: window.ctx.bus.stats(), bad: window.ctx.diagnosticsOf('bad-frame') }))
  expect(parentStats.stats.rejected).toBe(2 + 1 + 1 + 60)
  expect(parentStats.bad.reduce((sum, diagnostic) => sum + (diagnostic.count ?? 1), 0)).toBe(parentStats.stats.rejected)
  expect(parentStats.stats.transports[1]?.rejected).toBe(parentStats.stats.rejected)
  for (const tab of [tabB, tabC]) expect(await tab.evaluate(() => window.ctx.bus.stats().rejected)).toBe(0)
  // And the iframe's own traffic still flows.
  await frame.evaluate(() => void window.ctx.record('news.*'))
  await tabC.evaluate(() => window.ctx.wanted('news.x'))
  await tabC.evaluate(() => window.ctx.publish('news.x', 1, 100))
  await expect.poll(() => frame.evaluate(() => window.ctx.events('news.*').map((event) => (event.data as { n: number }).n))).toEqual([100])
})

test('a dedicated worker that posts garbage on its link: every frame refused and reported, no page error, the link keeps working', async ({ open, name }) => {
  const page = await open()
  const { posted, workerId } = await page.evaluate(async (busName) => {
    const { kit } = window
    const worker = new Worker(new URL('/e2e/pages/garbage-worker.ts', location.href), { type: 'module', name: busName })
    const control = new MessageChannel()
    const trigger = new MessageChannel()
    worker.postMessage({ name: busName, control: control.port2, garbage: trigger.port2 }, [control.port2, trigger.port2])
    window.state.worker = new kit.Remote(control.port1)
    window.state.workerId = await window.state.worker.call<string>({ op: 'id' })
    window.ctx = new kit.Ctx({ name: busName, transports: [kit.messagePort(worker)] })
    await kit.until(() => window.ctx.peerIds().length === 1, 5000, 5, 'the worker')
    const count = await new Promise<number>((resolve) => {
      trigger.port1.onmessage = (event: MessageEvent<number>) => resolve(event.data)
      trigger.port1.postMessage({ pageId: window.ctx.id })
    })
    return { posted: count, workerId: window.state.workerId }
  }, name)
  await expect.poll(() => page.evaluate(() => window.ctx.bus.stats().rejected)).toBe(posted)
  const bad = await page.evaluate(() => window.ctx.diagnosticsOf('bad-frame'))
  expect(bad.reduce((sum, diagnostic) => sum + (diagnostic.count ?? 1), 0)).toBe(posted)
  expect(bad.some((diagnostic) => diagnostic.message.includes('1000000 events'))).toBe(true)
  expect(await peersOf(page)).toEqual([workerId])

  await page.evaluate(() => void window.ctx.record('from.worker.*'))
  await page.evaluate(() => window.state.worker.call({ op: 'wanted', topic: 'from.worker.x' }))
  await page.evaluate(() => window.state.worker.call({ op: 'publish', topic: 'from.worker.x', count: 5 }))
  await expect.poll(() => page.evaluate(() => window.ctx.events('from.worker.*').map((event) => (event.data as { n: number }).n))).toEqual([0, 1, 2, 3, 4])
  await page.evaluate(() => window.state.worker.call({ op: 'answer', pattern: 'work.*' }))
  expect(await page.evaluate(() => window.ctx.request('work.sum', 1))).toEqual({ by: workerId, data: 1 })
  expect(await page.evaluate(() => window.ctx.bus.stats().rejected)).toBe(posted)
})

test('forged goodbyes on the channel, a thousand a second, do not silence a live tab', async ({ open, name }) => {
  const [publisher, subscriber, attacker] = [await open(), await open(), await open()]
  await startBus(publisher, name)
  const subscriberId = await startBus(subscriber, name)
  await subscriber.evaluate(() => void window.ctx.record('live.*', { capacity: 5000 }))
  await publisher.evaluate(() => window.ctx.wanted('live.x'))
  // The publisher watches the subscriber's Web Lock: from then on only its release says the tab is gone.
  const lock = `crossbus:${name}:${subscriberId}`
  const pending = (): Promise<number> =>
    publisher.evaluate(async (lockName) => ((await navigator.locks.query()).pending ?? []).filter((entry) => entry.name === lockName).length, lock)
  await expect.poll(pending).toBe(1)
  await attacker.evaluate(
    ({ busName, from }) => {
      const channel = new BroadcastChannel(`crossbus:${busName}`)
      window.state.notes.timer = setInterval(() => {
        channel.postMessage({ crossbus: 1, bus: busName, from, kind: 'bye' })
        channel.postMessage({ crossbus: 1, bus: busName, from, kind: 'hello', routes: [] })
      }, 1) as unknown as number
    },
    { busName: name, from: subscriberId },
  )
  const queued = await publisher.evaluate(async () => {
    const counts: number[] = []
    for (let task = 0; task < 100; task++) {
      for (let n = task * 10; n < task * 10 + 10; n++) counts.push(window.ctx.bus.publish('live.x', { n }).queued)
      await new Promise((resolve) => setTimeout(resolve, 2))
    }
    return counts
  })
  expect(queued.filter((count) => count !== 1)).toEqual([])
  await expect.poll(() => subscriber.evaluate(() => window.ctx.count('live.*'))).toBe(1000)
  expect(await pending()).toBe(1)
  await attacker.evaluate(() => clearInterval(window.state.notes.timer))
})
