// The NATS bridge in real Chromium against a real nats-server (DESIGN.md, semantic 7): started here on
// 127.0.0.1 with JetStream and WebSocket, on free ports, and stopped by its pid. Two browser contexts are two
// devices: BroadcastChannel does not cross them, so whatever one gets from the other came through NATS.
import type { NatsConnection } from '@nats-io/nats-core'
import type { BrowserContext, Page } from '@playwright/test'
import { WebSocket } from 'ws'
import { natsBridge } from '../src/bridges/nats.ts'
import { createBus } from '../src/index.ts'
import { createStream, rawClient, startNatsServer, streamContents, streamCount, type NatsTestServer } from '../test/nats.ts'
import { crashTab, expect, test as base } from './fixtures.ts'
import type { NatsSetup, Seen } from './pages/nats-kit.ts'

const PAGE = '/e2e/pages/nats.html'

interface NatsFixtures {
  nats: NatsTestServer
  /** A raw nats-core client (Node, no bridge) on the test's server; reconnect it with `reconnectRaw` after a restart. */
  raw: { client: NatsConnection }
  /** A tab of `context` (default: the test's) with the NATS page loaded, its errors collected. */
  openNats: (context?: BrowserContext) => Promise<Page>
  /** A second browser context: another device. */
  device: () => Promise<BrowserContext>
}

const test = base.extend<NatsFixtures>({
  nats: async ({}, use) => {
    const server = await startNatsServer()
    try {
      await use(server)
    } finally {
      await server.dispose()
    }
  },
  raw: async ({ nats }, use) => {
    const holder = { client: await rawClient(nats.wsUrl) }
    try {
      await use(holder)
    } finally {
      await holder.client.close().catch(() => {})
    }
  },
  openNats: async ({ context, pageErrors }, use) => {
    await use(async (target = context) => {
      const page = await target.newPage()
      page.on('pageerror', (error) => pageErrors.push(`${page.url()}: ${String(error)}`))
      await page.goto(PAGE)
      await expect(page.locator('#status')).toHaveText('ready')
      return page
    })
  },
  device: async ({ browser }, use) => {
    const contexts: BrowserContext[] = []
    await use(async () => {
      const context = await browser.newContext()
      contexts.push(context)
      return context
    })
    for (const context of contexts) await context.close()
  },
})

/** Starts the page's bus (and bridge); resolves with its bus id. */
function start(page: Page, setup: NatsSetup): Promise<string> {
  return page.evaluate((options) => {
    window.natsCtx = new window.nats.NatsCtx(options)
    return window.natsCtx.id
  }, setup)
}

const bridgeStats = (page: Page) => page.evaluate(() => window.natsCtx.bridgeStats())
const events = (page: Page, key: string): Promise<Seen[]> => page.evaluate((which) => window.natsCtx.events(which), key)
const holds = async (page: Page): Promise<boolean> => (await bridgeStats(page))?.holder === true

/** Ns of the events of `topic`, in the order they were received. */
const ns = (seen: readonly Seen[], topic: string): number[] => seen.filter((event) => event.topic === topic).map((event) => (event.data as { n: number }).n)
const range = (count: number): number[] => Array.from({ length: count }, (_, index) => index)

test('two devices exchange events only through NATS, in order and once; a dedicated worker holds one bridge, a Node process joins', async ({
  openNats,
  device,
  nats,
  name,
}) => {
  test.setTimeout(60_000)
  // ids: every message names its event, so what A got from B's tab can be traced to it.
  const bridge = { servers: nats.wsUrl, prefix: 'dev', export: ['chat.>'], import: ['chat.>'], name: 'chat', ids: true }
  // Device A: a tab holds its own bridge.
  const a = await openNats()
  await start(a, { name, bridge })
  await a.evaluate(() => window.natsCtx.record('chat.>'))
  // Device B: a tab without a bridge; its dedicated worker holds one, and the tab reaches NATS over the bus.
  const b = await openNats(await device())
  const bId = await start(b, { name })
  const workerId = await b.evaluate(
    async ({ busName, options }) => {
      window.natsRemote = await window.nats.startNatsWorker({ name: busName, bridge: options })
      return window.natsRemote.call<string>('id')
    },
    { busName: name, options: bridge },
  )
  await b.evaluate(() => window.natsCtx.record('chat.>'))
  // A Node process: the same bridge, with `ws` as its WebSocket.
  const nodeBus = createBus({ name, transports: [] })
  const nodeBridge = natsBridge(nodeBus, { ...bridge, webSocket: WebSocket, onDiagnostic: () => {} })
  const nodeSeen: Seen[] = []
  nodeBus.subscribe('chat.>', (event) => void nodeSeen.push({ topic: event.topic, data: event.data, id: event.id, remoteId: undefined, by: 'node' }))
  try {
    await expect.poll(() => bridgeStats(a).then((stats) => stats?.status)).toBe('connected')
    await expect.poll(() => b.evaluate(() => window.natsRemote.call<{ status: string }>('bridgeStats').then((stats) => stats.status))).toBe('connected')
    await expect.poll(() => nodeBridge.stats().status).toBe('connected')
    // The tab knows its worker (and so its interest) before it publishes.
    await expect.poll(() => b.evaluate(() => window.natsCtx.peers())).toContain(workerId)

    await a.evaluate(() => window.natsCtx.publish('chat.a', 200))
    await b.evaluate(() => window.natsCtx.publish('chat.b', 200))
    for (let n = 0; n < 200; n++) nodeBus.publish('chat.node', { n })

    await expect.poll(() => events(a, 'chat.>').then((seen) => seen.length), { timeout: 20_000 }).toBe(600)
    await expect.poll(() => events(b, 'chat.>').then((seen) => seen.length), { timeout: 20_000 }).toBe(600)
    await expect.poll(() => nodeSeen.length, { timeout: 20_000 }).toBe(600)
    const seenByA = await events(a, 'chat.>')
    const seenByB = await events(b, 'chat.>')
    for (const seen of [seenByA, seenByB, nodeSeen]) for (const topic of ['chat.a', 'chat.b', 'chat.node']) expect(ns(seen, topic)).toEqual(range(200))
    // B's tab published through its worker: what A got from B names the tab as the publisher.
    expect(seenByA.filter((event) => event.topic === 'chat.b').every((event) => event.remoteId?.startsWith(`${bId}:`))).toBe(true)
    expect(await b.evaluate(() => window.natsRemote.call<{ holder: boolean; exported: number }>('bridgeStats'))).toMatchObject({ holder: true, exported: 200 })
    expect(nodeBridge.stats()).toMatchObject({ exported: 200, imported: 400, duplicates: 0, rejected: 0 })
  } finally {
    await nodeBridge.close()
    await nodeBus.close()
  }
})

test('outbox in a tab: durable events published while the server is down, while it runs and across a kill -9 are in the stream exactly once', async ({
  openNats,
  nats,
  raw,
  name,
}) => {
  test.setTimeout(90_000)
  await createStream(raw.client, 'OUTBOX', ['shop.>'])
  await raw.client.close()
  await nats.kill()
  const tab = await openNats()
  await start(tab, {
    name,
    durable: true,
    bridge: {
      servers: nats.wsUrl,
      prefix: 'shop',
      export: ['orders.>'],
      name: 'outbox',
      jetstream: { stream: 'OUTBOX' },
      reconnect: { initialDelay: 50, maxDelay: 500 },
    },
  })
  const ids: string[] = []
  // While the server is down: they wait in the log.
  ids.push(...(await tab.evaluate(() => window.natsCtx.publishPaced('orders.created', 100, 100, 0))))
  const whileDown = await bridgeStats(tab)
  // Dialing again and again: 'connecting' or 'disconnected' between attempts, never 'connected'.
  expect(whileDown?.exported).toBe(0)
  expect(whileDown?.status).not.toBe('connected')
  await nats.start()
  await expect.poll(() => bridgeStats(tab).then((stats) => stats?.exported), { timeout: 20_000 }).toBe(100)
  // While it runs.
  ids.push(...(await tab.evaluate(() => window.natsCtx.publishPaced('orders.created', 100, 20, 10))))
  // Across a kill -9 and a restart, mid-stream.
  const paced = tab.evaluate(() => window.natsCtx.publishPaced('orders.paid', 300, 10, 10))
  await expect.poll(() => bridgeStats(tab).then((stats) => stats?.exported), { timeout: 20_000 }).toBeGreaterThan(260)
  await nats.kill()
  await expect.poll(() => bridgeStats(tab).then((stats) => stats?.status)).not.toBe('connected')
  await nats.start()
  ids.push(...(await paced))
  raw.client = await rawClient(nats.wsUrl)
  await expect.poll(() => streamCount(raw.client, 'OUTBOX'), { timeout: 30_000, intervals: [100] }).toBe(500)
  await expect.poll(() => bridgeStats(tab).then((stats) => stats && stats.status === 'connected' && stats.outbox === 0), { timeout: 10_000 }).toBe(true)
  const contents = await streamContents(raw.client, 'OUTBOX')
  expect(contents).toHaveLength(500)
  expect(new Set(contents.map((message) => message.msgId)).size).toBe(500)
  expect(contents.map((message) => message.msgId).sort()).toEqual([...ids].sort())
})

test('the holder tab crashed through CDP mid-flush loses nothing: another tab takes over and the stream has every event once', async ({
  openNats,
  nats,
  raw,
  name,
}) => {
  test.setTimeout(90_000)
  await createStream(raw.client, 'CRASH', ['crash.>'])
  // Few publishes in flight, so the flush is still going when the holder dies.
  const setup: NatsSetup = {
    name,
    durable: true,
    bridge: { servers: nats.wsUrl, prefix: 'crash', export: ['jobs.>'], name: 'crash', jetstream: { stream: 'CRASH', maxInFlight: 4 } },
  }
  const first = await openNats()
  const firstId = await start(first, setup)
  await expect.poll(() => holds(first)).toBe(true)
  const second = await openNats()
  await start(second, setup)
  await expect.poll(() => bridgeStats(second).then((stats) => stats?.holderId)).toBe(firstId)
  expect(await holds(second)).toBe(false)
  // The second tab publishes: the outbox is the origin's durable log, which the holder reads.
  await second.evaluate(() => {
    window.natsPublished = window.natsCtx.publishPaced('jobs.run', 2000, 100, 20)
  })
  await expect.poll(() => streamCount(raw.client, 'CRASH'), { timeout: 30_000, intervals: [50] }).toBeGreaterThan(300)
  await crashTab(first)
  const crashedAt = Date.now()
  await expect.poll(() => holds(second), { timeout: 10_000 }).toBe(true)
  const tookOver = Date.now() - crashedAt
  const published = await second.evaluate(() => window.natsPublished)
  expect(published).toHaveLength(2000)
  // The outbox drains from the log: the stream gets every event (the outbox count covers only what was read from the log).
  await expect.poll(() => streamCount(raw.client, 'CRASH'), { timeout: 60_000, intervals: [100] }).toBe(2000)
  await expect.poll(() => bridgeStats(second).then((stats) => stats?.outbox), { timeout: 10_000 }).toBe(0)
  const contents = await streamContents(raw.client, 'CRASH')
  test.info().annotations.push({
    type: 'holder crash',
    description: `the second tab held the connection ${tookOver} ms after the crash; stream: ${contents.length} messages`,
  })
  expect(contents).toHaveLength(2000)
  expect(new Set(contents.map((message) => message.msgId)).size).toBe(2000)
  expect(contents.map((message) => message.msgId).sort()).toEqual([...published].sort())
})

test('two bridged origins that export and import the same subjects: no echo, no loop (JetStream imports included)', async ({
  openNats,
  device,
  nats,
  raw,
  name,
}) => {
  test.setTimeout(60_000)
  await createStream(raw.client, 'CHAT', ['loop.>'])
  const bridge = (durable: string) => ({
    servers: nats.wsUrl,
    prefix: 'loop',
    export: ['chat.>'],
    import: ['chat.>'],
    name: 'loop',
    jetstream: { stream: 'CHAT', durable },
  })
  const a = await openNats()
  await start(a, { name, durable: true, bridge: bridge('device-a') })
  const b = await openNats(await device())
  await start(b, { name, durable: true, bridge: bridge('device-b') })
  for (const page of [a, b]) await page.evaluate(() => window.natsCtx.record('chat.>'))
  await expect.poll(() => bridgeStats(a).then((stats) => stats?.status)).toBe('connected')
  await expect.poll(() => bridgeStats(b).then((stats) => stats?.status)).toBe('connected')
  await a.evaluate(() => window.natsCtx.publish('chat.a', 100, 0, true))
  await b.evaluate(() => window.natsCtx.publish('chat.b', 100, 0, true))
  await expect.poll(() => events(a, 'chat.>').then((seen) => seen.length), { timeout: 20_000 }).toBe(200)
  await expect.poll(() => events(b, 'chat.>').then((seen) => seen.length), { timeout: 20_000 }).toBe(200)
  // Each origin's own events came back from the stream to its consumer, and were refused as its own.
  await expect.poll(() => bridgeStats(a).then((stats) => [stats?.duplicates, stats?.imported, stats?.outbox]), { timeout: 20_000 }).toEqual([100, 100, 0])
  await expect.poll(() => bridgeStats(b).then((stats) => [stats?.duplicates, stats?.imported, stats?.outbox]), { timeout: 20_000 }).toEqual([100, 100, 0])
  for (const page of [a, b]) {
    const seen = await events(page, 'chat.>')
    expect(ns(seen, 'chat.a')).toEqual(range(100))
    expect(ns(seen, 'chat.b')).toEqual(range(100))
  }
  // Imports are never exported again: the stream has the 200 events, not one more.
  const contents = await streamContents(raw.client, 'CHAT')
  expect(contents).toHaveLength(200)
  expect(new Set(contents.map((message) => message.msgId)).size).toBe(200)
  expect((await bridgeStats(a))?.exported).toBe(100)
  expect((await bridgeStats(b))?.exported).toBe(100)
})

test('holder failover: a closed holder tab hands the connection to another tab, and a shared worker takes it from a tab', async ({
  openNats,
  nats,
  raw,
  name,
}) => {
  test.setTimeout(60_000)
  const setup: NatsSetup = { name, bridge: { servers: nats.wsUrl, prefix: 'fo', export: ['chat.>'], name: 'failover', ids: true } }
  const onWire: string[] = []
  const subscription = raw.client.subscribe('fo.chat.>', {
    callback: (_, message) => void onWire.push(message.headers?.get('Crossbus-Id').split('@')[0] ?? ''),
  })
  await raw.client.flush()
  const first = await openNats()
  const firstId = await start(first, setup)
  await expect.poll(() => bridgeStats(first).then((stats) => stats?.status)).toBe('connected')
  const second = await openNats()
  await start(second, setup)
  // The standby tab sees the holder's status over the bus.
  await expect.poll(() => bridgeStats(second)).toMatchObject({ holder: false, holderId: firstId, status: 'connected' })
  await first.close()
  await expect.poll(() => bridgeStats(second)).toMatchObject({ holder: true, status: 'connected' })
  const sent = await second.evaluate(() => window.natsCtx.publish('chat.after-close', 10))
  await expect.poll(() => sent.every((id) => onWire.includes(id))).toBe(true)
  // A shared worker outlives tabs: it takes the connection from the tab that holds it.
  const workerId = await second.evaluate(async (options) => {
    window.natsRemote = await window.nats.startNatsSharedWorker(options)
    return window.natsRemote.call<string>('id')
  }, setup)
  await expect.poll(() => bridgeStats(second), { timeout: 10_000 }).toMatchObject({ holder: false, holderId: workerId, status: 'connected' })
  await expect.poll(() => second.evaluate(() => window.natsCtx.peers())).toContain(workerId)
  const later = await second.evaluate(() => window.natsCtx.publish('chat.via-worker', 10))
  await expect.poll(() => later.every((id) => onWire.includes(id)), { timeout: 10_000 }).toBe(true)
  subscription.unsubscribe()
})
