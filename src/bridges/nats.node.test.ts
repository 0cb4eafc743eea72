// The NATS bridge in Node against a real nats-server (127.0.0.1, JetStream, WebSocket), started here and
// stopped by its pid. Two buses in one process are two origins (each its own bus name, store and bridge name:
// without Web Locks a lock spans the process).
import { headers as natsHeaders, type NatsConnection } from '@nats-io/nats-core'
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest'
import { WebSocket } from 'ws'
import { createStream, rawClient, startNatsServer, streamContents, type NatsTestServer } from '../../test/nats.js'
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
    const sub = raw.subscribe('app.chat.>', { callback: (_, message) => onRaw.push(message.subject) })
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
    expect(first.headers['x-crossbus-nats-id']).toMatch(new RegExp(`^${a.bus.id}:\\d+$`))
    await vi.waitFor(() => expect(onRaw).toHaveLength(500), { timeout: 10_000, interval: 20 })
    expect(onRaw[0]).toBe('app.chat.room1')
    expect(a.bridge.stats()).toMatchObject({ holder: true, exported: 500, dropped: 0 })
    expect(b.bridge.stats()).toMatchObject({ holder: true, imported: 500, rejected: 0, duplicates: 0 })
  })

  it('never echoes an origin its own events and never loops between two bridged origins', async () => {
    const a = origin({ prefix: 'loop', export: ['chat.>'], import: ['chat.>'] })
    const b = origin({ prefix: 'loop', export: ['chat.>'], import: ['chat.>'] })
    const seenByA = record(a.bus, 'chat.>')
    const seenByB = record(b.bus, 'chat.>')
    const onWire: string[] = []
    const sub = raw.subscribe('loop.chat.>', { callback: (_, message) => onWire.push(message.headers?.get('Crossbus-Id') ?? '') })
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
})
