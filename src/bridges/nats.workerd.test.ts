// The NATS bridge in workerd (Cloudflare Workers), the runtime itself: an outbound WebSocket to a real
// nats-server that the project's global set-up started (test/nats-global-setup.ts), where a Node process's
// bus, bridged too, answers each edge.ping with an edge.pong.
import { expect, inject, test, vi } from 'vitest'
import { createBus } from '../bus.js'
import { memoryStore } from '../store/memory.js'
import type { BusEvent } from '../types.js'
import { natsBridge } from './nats.js'

test('a worker joins the subjects of a Node process: durable pings through JetStream, pongs back, in order and once', async () => {
  const bus = createBus({ name: 'edge', store: memoryStore(), onDiagnostic: () => {} })
  expect(bus.stats().transports).toEqual([])
  const bridge = natsBridge(bus, {
    servers: inject('natsWsUrl'),
    prefix: 'wd',
    export: ['edge.ping'],
    import: ['edge.pong'],
    jetstream: { stream: 'EDGE' },
    name: 'edge',
    onDiagnostic: () => {},
  })
  const pongs: BusEvent[] = []
  bus.subscribe('edge.pong', (event) => void pongs.push(event))
  try {
    await vi.waitFor(() => expect(bridge.stats().status).toBe('connected'), { timeout: 10_000, interval: 20 })
    for (let n = 0; n < 50; n++) bus.publish('edge.ping', { n }, { durable: true })
    await vi.waitFor(() => expect(pongs).toHaveLength(50), { timeout: 10_000, interval: 20 })
    expect(pongs.map((event) => (event.data as { n: number }).n)).toEqual(Array.from({ length: 50 }, (_, n) => n))
    expect(pongs.every((event) => event.headers['x-crossbus-nats-subject'] === 'wd.edge.pong')).toBe(true)
    // Durable exports count once the stream's PubAck came back.
    await vi.waitFor(() => expect(bridge.stats()).toMatchObject({ exported: 50, outbox: 0, imported: 50, rejected: 0 }), { timeout: 10_000, interval: 20 })
  } finally {
    await bridge.close()
    await bus.close()
  }
})
