// The NATS bridge in Node against a real nats-server (127.0.0.1, JetStream, WebSocket), started here and
// stopped by its pid. Two buses in one process are two origins (each its own bus name, store and bridge name:
// without Web Locks a lock spans the process).
import { headers as natsHeaders, type NatsConnection } from '@nats-io/nats-core'
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest'
import { WebSocket } from 'ws'
import { createStream, rawClient, startNatsServer, streamContents, streamCount, type NatsTestServer } from '../../test/nats.js'
import { createBus } from '../bus.js'
import { isCrossbusError } from '../errors.js'
import { memoryStore } from '../store/memory.js'
import type { Bus, BusEvent, BusOptions } from '../types.js'
import { type NatsBridge, type NatsBridgeOptions, type NatsDiagnostic, natsBridge } from './nats.js'

let server: NatsTestServer
let raw: NatsConnection
const cleanups: (() => Promise<void> | void)[] = []
let names = 0

beforeAll(async () => {
  server = await startNatsServer()
  raw = await rawClient(server.wsUrl)
})

afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup()
  if (!server.running) await server.start()
  if (raw.isClosed()) raw = await rawClient(server.wsUrl)
})

afterAll(async () => {
  await raw?.close().catch(() => {})
  await server?.dispose()
})

interface Origin {
  bus: Bus
  bridge: NatsBridge
  diagnostics: NatsDiagnostic[]
}

/** A bus and its bridge: one origin. */
function origin(options: Partial<NatsBridgeOptions> & { store?: boolean } = {}, busOptions: BusOptions = {}): Origin {
  const id = ++names
  const { store = false, ...bridgeOptions } = options
  const bus = createBus({ name: `nats-test-${id}`, transports: [], ...(store ? { store: memoryStore() } : {}), ...busOptions })
  const diagnostics: NatsDiagnostic[] = []
  const bridge = natsBridge(bus, {
    servers: server.wsUrl,
    webSocket: WebSocket,
    name: `bridge${id}`,
    reconnect: { initialDelay: 50, maxDelay: 200 },
    onDiagnostic: (diagnostic) => diagnostics.push(diagnostic),
    ...bridgeOptions,
  })
  cleanups.push(async () => {
    await bridge.close()
    await bus.close()
  })
  return { bus, bridge, diagnostics }
}

const connected = (bridge: NatsBridge) => vi.waitFor(() => expect(bridge.stats().status).toBe('connected'), { timeout: 10_000, interval: 20 })

function record(bus: Bus, pattern: string): BusEvent[] {
  const seen: BusEvent[] = []
  bus.subscribe(pattern, (event) => void seen.push(event), { capacity: 100_000 })
  return seen
}

describe('natsBridge (Node, real nats-server)', { timeout: 60_000 }, () => {
  it('two origins exchange events through NATS only, in order and once, topic mapped under the prefix', async () => {
    const a = origin({ prefix: 'app', export: ['chat.>'] })
    const b = origin({ prefix: 'app', import: ['chat.>'] })
    const seen = record(b.bus, 'chat.>')
    const onRaw: string[] = []
    const sub = raw.subscribe('app.chat.>', { callback: (_, message) => void onRaw.push(message.subject) })
    cleanups.push(() => sub.unsubscribe())
    await Promise.all([connected(a.bridge), connected(b.bridge)])
    await raw.flush()
    for (let index = 0; index < 500; index++) a.bus.publish('chat.room1', { index }, { headers: { 'x-app': 'yes' } })
    await vi.waitFor(() => expect(seen).toHaveLength(500), { timeout: 10_000, interval: 20 })
    expect(seen.map((event) => (event.data as { index: number }).index)).toEqual(Array.from({ length: 500 }, (_, index) => index))
    const first = seen[0] as BusEvent
    expect(first.topic).toBe('chat.room1')
    expect(first.source).toBe(b.bus.id)
    expect(first.headers['x-app']).toBe('yes')
    expect(first.headers['x-crossbus-nats-subject']).toBe('app.chat.room1')
    // An event with headers of its own carries its id too (without, and without ids: true, it goes as bare as the raw client's).
    expect(first.headers['x-crossbus-nats-id']).toMatch(new RegExp(`^${a.bus.id}:\\d+$`))
    await vi.waitFor(() => expect(onRaw).toHaveLength(500), { timeout: 10_000, interval: 20 })
    expect(onRaw[0]).toBe('app.chat.room1')
    a.bus.publish('chat.bare', 1)
    await vi.waitFor(() => expect(seen).toHaveLength(501), { timeout: 5000, interval: 20 })
    expect(seen[500]?.headers).toEqual({ 'x-crossbus-nats-subject': 'app.chat.bare' })
    expect(a.bridge.stats()).toMatchObject({ holder: true, exported: 501, dropped: 0 })
    expect(b.bridge.stats()).toMatchObject({ holder: true, imported: 501, rejected: 0, duplicates: 0 })
  })

  it('does not export an event published with local: true in the holder: it stays in its context', async () => {
    const a = origin({ prefix: 'local', export: ['chat.>'] })
    const onRaw: unknown[] = []
    const sub = raw.subscribe('local.chat.>', { callback: (_, message) => void onRaw.push(message.json()) })
    cleanups.push(() => sub.unsubscribe())
    await connected(a.bridge)
    await raw.flush()
    a.bus.publish('chat.room', 'kept here', { local: true })
    a.bus.publish('chat.room', 'shared')
    await vi.waitFor(() => expect(onRaw).toEqual(['shared']), { timeout: 10_000, interval: 20 })
    expect(a.bridge.stats()).toMatchObject({ exported: 1 })
  })

  it('two buses of one device, with the same bridge name, each hold their own connection and are two origins', async () => {
    // One process is one device here: before, both bridges (default name 'nats') waited on one lock and shared one origin id.
    const a = origin({ name: 'nats', prefix: 'buses', export: ['chat.>'] })
    const b = origin({ name: 'nats', prefix: 'buses', import: ['chat.>'] })
    expect(a.bus.name).not.toBe(b.bus.name)
    const seen = record(b.bus, 'chat.>')
    await Promise.all([connected(a.bridge), connected(b.bridge)])
    expect([a.bridge.stats().holder, b.bridge.stats().holder]).toEqual([true, true])
    a.bus.publish('chat.room', 'from a')
    await vi.waitFor(() => expect(seen.map((event) => event.data)).toEqual(['from a']), { timeout: 10_000, interval: 20 })
    expect(b.bridge.stats()).toMatchObject({ imported: 1, duplicates: 0 })
  })

  it('never echoes an origin its own events and never loops between two bridged origins', async () => {
    // With ids, so the wire shows which event each message is.
    const a = origin({ prefix: 'loop', export: ['chat.>'], import: ['chat.>'], ids: true })
    const b = origin({ prefix: 'loop', export: ['chat.>'], import: ['chat.>'], ids: true })
    const seenByA = record(a.bus, 'chat.>')
    const seenByB = record(b.bus, 'chat.>')
    const onWire: string[] = []
    const sub = raw.subscribe('loop.chat.>', { callback: (_, message) => void onWire.push(message.headers?.get('Crossbus-Id').split('@')[0] ?? '') })
    cleanups.push(() => sub.unsubscribe())
    await Promise.all([connected(a.bridge), connected(b.bridge)])
    await raw.flush()
    for (let index = 0; index < 100; index++) {
      a.bus.publish('chat.a', index)
      b.bus.publish('chat.b', index)
    }
    await vi.waitFor(() => expect([seenByA.length, seenByB.length]).toEqual([200, 200]), { timeout: 10_000, interval: 20 })
    // A fence: once each side has exported it, its exporter has seen every import before it (its queue is FIFO).
    a.bus.publish('chat.fence', 'a')
    b.bus.publish('chat.fence', 'b')
    await vi.waitFor(() => expect(onWire.length).toBeGreaterThanOrEqual(202), { timeout: 10_000, interval: 20 })
    await vi.waitFor(() => expect([a.bridge.stats().imported, b.bridge.stats().imported]).toEqual([101, 101]), { timeout: 10_000, interval: 20 })
    await raw.flush()
    expect(onWire).toHaveLength(202)
    expect(new Set(onWire).size).toBe(202)
    expect(a.bridge.stats()).toMatchObject({ exported: 101, imported: 101 })
    expect(b.bridge.stats()).toMatchObject({ exported: 101, imported: 101 })
    // Each saw its own events once (locally) and the other's once (through NATS).
    const imported = (events: BusEvent[]) => events.filter((event) => event.headers['x-crossbus-nats-subject'] !== undefined && event.topic !== 'chat.fence')
    expect(imported(seenByA).map((event) => event.topic)).toEqual(Array(100).fill('chat.b'))
    expect(imported(seenByB).map((event) => event.topic)).toEqual(Array(100).fill('chat.a'))
  })

  it('queues non-durable events while disconnected (bounded, drops counted) and reconnects by itself', async () => {
    // A stream keeps what reaches the server, so what the bridge sent after the restart can be read back in order.
    await createStream(raw, 'QUEUED', ['q.>'])
    const a = origin({ prefix: 'q', export: ['feed.>'], capacity: 40 })
    await connected(a.bridge)
    await server.kill()
    await vi.waitFor(() => expect(a.bridge.stats().status).not.toBe('connected'), { timeout: 10_000, interval: 20 })
    for (let index = 0; index < 50; index++) a.bus.publish('feed.x', index)
    await vi.waitFor(() => expect(a.bridge.stats()).toMatchObject({ queued: 40, dropped: 10, exported: 0 }), { timeout: 5000, interval: 20 })
    expect(a.diagnostics.filter((diagnostic) => diagnostic.type === 'drop').length).toBeGreaterThan(0)
    expect(a.diagnostics.some((diagnostic) => diagnostic.type === 'status' && diagnostic.status === 'disconnected')).toBe(true)
    await server.start()
    await connected(a.bridge)
    await vi.waitFor(() => expect(a.bridge.stats()).toMatchObject({ queued: 0, exported: 40, reconnects: 1 }), { timeout: 10_000, interval: 20 })
    raw = await rawClient(server.wsUrl)
    await vi.waitFor(async () => expect(await streamContents(raw, 'QUEUED')).toHaveLength(40), { timeout: 10_000, interval: 50 })
    // drop-newest: the first 40 waited and went, in order.
    expect((await streamContents(raw, 'QUEUED')).map((message) => JSON.parse(message.data))).toEqual(Array.from({ length: 40 }, (_, index) => index))
  })

  it('outbox: durable events published while the server is down, while it runs and across a kill -9 are in the stream exactly once', async () => {
    await createStream(raw, 'OUTBOX', ['out.>'])
    await server.kill()
    const a = origin({ store: true, prefix: 'out', export: ['orders.>'], jetstream: { stream: 'OUTBOX', maxInFlight: 32, ackTimeout: 1000 } })
    const ids: string[] = []
    const publish = (from: number, count: number) => {
      for (let index = from; index < from + count; index++) ids.push(a.bus.publish('orders.created', { index }, { durable: true }).id)
    }
    publish(0, 100) // the server is down: they wait in the log
    await vi.waitFor(() => expect(a.bridge.stats().outbox).toBe(100), { timeout: 5000, interval: 20 })
    expect(a.bridge.stats().exported).toBe(0)
    await server.start()
    await vi.waitFor(() => expect(a.bridge.stats()).toMatchObject({ exported: 100, outbox: 0 }), { timeout: 15_000, interval: 20 })
    publish(100, 100) // while it runs
    // Across a kill -9 mid-stream, and a restart.
    for (let round = 0; round < 10; round++) {
      publish(200 + round * 20, 20)
      if (round === 3) await server.kill()
      if (round === 6) await server.start()
      await new Promise((resolve) => setTimeout(resolve, 5)) // the publisher's own pace, not a synchronisation
    }
    raw = await rawClient(server.wsUrl)
    await vi.waitFor(async () => expect(await streamCount(raw, 'OUTBOX')).toBe(400), { timeout: 20_000, interval: 100 })
    await vi.waitFor(() => expect(a.bridge.stats()).toMatchObject({ status: 'connected', outbox: 0 }), { timeout: 10_000, interval: 50 })
    const contents = await streamContents(raw, 'OUTBOX')
    expect(contents).toHaveLength(400)
    expect(new Set(contents.map((message) => message.msgId)).size).toBe(400)
    expect(contents.map((message) => message.msgId).sort()).toEqual([...ids].sort())
    expect(contents.every((message) => message.subject === 'out.orders.created')).toBe(true)
  })

  it('outbox in stats() counts every durable event the stream has not acked, past what its consumer holds in memory', async () => {
    await createStream(raw, 'BACKLOG', ['backlog.>'])
    await server.kill()
    const a = origin({ store: true, prefix: 'backlog', export: ['orders.>'], jetstream: { stream: 'BACKLOG', maxInFlight: 32 } })
    // The consumer's queue holds 1024 (4 × maxInFlight, at least 1024): the rest waits in the log.
    for (let index = 0; index < 3000; index++) a.bus.publish('orders.created', { index }, { durable: true })
    await vi.waitFor(() => expect(a.bridge.stats().outbox).toBe(3000), { timeout: 5000, interval: 20 })
    await server.start()
    await vi.waitFor(() => expect(a.bridge.stats()).toMatchObject({ exported: 3000, outbox: 0 }), { timeout: 20_000, interval: 20 })
    raw = await rawClient(server.wsUrl)
    expect(await streamCount(raw, 'BACKLOG')).toBe(3000)
  })

  it('inbound JetStream: acks after the local durable hand-off, and refuses an event id it imported before', async () => {
    await createStream(raw, 'INBOX', ['in.>'])
    const { jetstream, jetstreamManager } = await import('@nats-io/jetstream')
    const js = jetstream(raw)
    const send = async (id: string, msgID: string, data: unknown) => {
      const headers = natsHeaders()
      headers.set('Crossbus-Id', `${id}@elsewhere`)
      await js.publish('in.feed.x', JSON.stringify(data), { msgID, headers })
    }
    for (let index = 0; index < 30; index++) await send(`remote:${index}`, `remote:${index}`, index)
    // The same event again, as after the de-duplication window (the stream took it: another Nats-Msg-Id here).
    await send('remote:5', 'remote:5-again', 5)
    const b = origin({ store: true, prefix: 'in', import: ['feed.>'], jetstream: { stream: 'INBOX', durable: 'b-inbox' } })
    const durable: BusEvent[] = []
    b.bus.subscribe('feed.>', (event) => void durable.push(event), { durable: 'reader' })
    await vi.waitFor(() => expect(durable).toHaveLength(30), { timeout: 10_000, interval: 20 })
    expect(durable.map((event) => event.data)).toEqual(Array.from({ length: 30 }, (_, index) => index))
    expect(durable[0]?.headers['x-crossbus-nats-id']).toBe('remote:0')
    const manager = await jetstreamManager(raw)
    await vi.waitFor(async () => expect(await manager.consumers.info('INBOX', 'b-inbox')).toMatchObject({ num_ack_pending: 0, num_pending: 0 }), {
      timeout: 10_000,
      interval: 50,
    })
    expect(b.bridge.stats()).toMatchObject({ imported: 30, duplicates: 1, rejected: 0 })
  })

  it('refuses malformed messages from the wire: counted, reported, never thrown', async () => {
    const b = origin({ prefix: 'bad', import: ['feed.>'] })
    const seen = record(b.bus, 'feed.>')
    await connected(b.bridge)
    await raw.flush()
    raw.publish('bad.feed.json', '{not json')
    const many = natsHeaders()
    for (let index = 0; index < 70; index++) many.set(`h${index}`, 'x')
    raw.publish('bad.feed.headers', '1', { headers: many })
    const badId = natsHeaders()
    badId.set('Crossbus-Id', 'x'.repeat(500))
    raw.publish('bad.feed.id', '1', { headers: badId })
    raw.publish('bad.feed.good', '"fine"')
    await vi.waitFor(() => expect(seen).toHaveLength(1), { timeout: 5000, interval: 20 })
    expect(seen[0]?.data).toBe('fine')
    await vi.waitFor(() => expect(b.bridge.stats().rejected).toBe(3), { timeout: 5000, interval: 20 })
    expect(b.diagnostics.filter((diagnostic) => diagnostic.type === 'bad-message')).toHaveLength(3)
  })

  it('PAYLOAD_TOO_LARGE from the server max_payload: thrown by bridge.publish, counted when it reaches the holder', async () => {
    const small = await startNatsServer({ maxPayload: 4096 })
    cleanups.push(() => small.dispose())
    const a = origin({ servers: small.wsUrl, store: true, export: ['big.>'], jetstream: { stream: 'NONE' } })
    await connected(a.bridge)
    expect(a.bridge.stats().maxPayload).toBe(4096)
    let thrown: unknown
    try {
      a.bridge.publish('big.one', 'x'.repeat(5000))
    } catch (error) {
      thrown = error
    }
    expect(isCrossbusError(thrown, 'PAYLOAD_TOO_LARGE')).toBe(true)
    expect(() => a.bridge.publish('other.topic', 'x'.repeat(5000))).not.toThrow() // not exported: not NATS's to refuse
    a.bus.publish('big.core', 'x'.repeat(5000))
    a.bus.publish('big.durable', 'x'.repeat(5000), { durable: true })
    await vi.waitFor(() => expect(a.bridge.stats()).toMatchObject({ tooLarge: 2, dropped: 2, outbox: 0 }), { timeout: 5000, interval: 20 })
    const drops = a.diagnostics.filter((diagnostic) => diagnostic.type === 'drop')
    expect(drops.every((diagnostic) => isCrossbusError(diagnostic.error, 'PAYLOAD_TOO_LARGE'))).toBe(true)
  })

  it('fails at once with clear errors: no WebSocket, jetstream without a store, a ping interval proxies would cut', () => {
    const bus = createBus({ transports: [] })
    cleanups.push(() => bus.close())
    expect(typeof (globalThis as { WebSocket?: unknown }).WebSocket).toBe('undefined') // Node 20
    expect(() => natsBridge(bus, { servers: server.wsUrl })).toThrow(/needs a WebSocket.*webSocket/)
    let noStore: unknown
    try {
      natsBridge(bus, { servers: server.wsUrl, webSocket: WebSocket, jetstream: { stream: 'S' } })
    } catch (error) {
      noStore = error
    }
    expect(isCrossbusError(noStore, 'NO_STORE')).toBe(true)
    expect(() => natsBridge(bus, { servers: server.wsUrl, webSocket: WebSocket, pingInterval: 100_000 })).toThrow(TypeError)
    expect(() => natsBridge(bus, { servers: 'nats://127.0.0.1:4222', webSocket: WebSocket })).toThrow(/WebSocket URLs/)
    expect(() => natsBridge(bus, { servers: server.wsUrl, webSocket: WebSocket, export: ['a.>.b'] })).toThrow(
      expect.objectContaining({ code: 'INVALID_TOPIC' }),
    )
  })

  it('closes with its bus: status closed, its connection gone from the server', async () => {
    const bus = createBus({ name: 'nats-test-closing', transports: [] })
    const bridge = natsBridge(bus, { servers: server.wsUrl, webSocket: WebSocket, name: 'closing', export: ['x.>'], onDiagnostic: () => {} })
    await connected(bridge)
    const before = bridge.stats()
    expect(before).toMatchObject({ holder: true, status: 'connected' })
    await bus.close()
    await vi.waitFor(() => expect(bridge.stats()).toMatchObject({ status: 'closed', holder: false }), { timeout: 5000, interval: 20 })
    await bridge.close() // idempotent
    // A second bridge of the same name can hold the lock again at once: the first let it go.
    const next = origin({ name: 'closing' })
    await connected(next.bridge)
    expect(next.bridge.stats().holder).toBe(true)
  })

  it('dials at once when the page says it is back (online, visibilitychange, pageshow), not after its backoff', async () => {
    // Node has no window: stand one in, with the events a page gets.
    const page = new EventTarget()
    const scope = globalThis as { addEventListener?: unknown; document?: unknown }
    scope.addEventListener = page.addEventListener.bind(page)
    scope.document = { visibilityState: 'visible' }
    cleanups.push(() => {
      delete scope.addEventListener
      delete scope.document
    })
    await server.kill()
    // A backoff of 20 s at least (jitter takes half of it at most): only a wake-up dials sooner.
    const a = origin({ reconnect: { initialDelay: 40_000, maxDelay: 40_000 } })
    await vi.waitFor(() => expect(a.bridge.stats().status).toBe('disconnected'), { timeout: 5000, interval: 20 })
    await server.start()
    for (const type of ['online', 'visibilitychange', 'pageshow']) {
      page.dispatchEvent(new Event(type))
      await connected(a.bridge)
      if (type === 'pageshow') break
      // Down again, for the next kind of wake-up.
      await server.kill()
      await vi.waitFor(() => expect(a.bridge.stats().status).toBe('disconnected'), { timeout: 5000, interval: 20 })
      await server.start()
    }
    expect(a.bridge.stats().reconnects).toBe(2)
  })
})
