/**
 * One conformance suite that every link passes: the same assertions run over
 * each way two contexts can be joined (watermill's TestPubSub). A factory makes
 * a fresh, connected pair of transports for each test.
 */
import { describe, expect, test, vi } from 'vitest'
import { createBus } from '../src/bus.js'
import type { Transport } from '../src/seams.js'
import { messagePort } from '../src/transports/message-port.js'
import type { Bus, BusOptions, Diagnostic } from '../src/types.js'

export interface LinkPair {
  /** Transports for two contexts joined by the link under test. */
  left: Transport
  right: Transport
  /** Posts a raw message onto the wire, as foreign code sharing it could. */
  inject(message: unknown): void
}

/** A bus that records its diagnostics. */
export function watchedBus(transport: Transport, options: BusOptions = {}): Bus & { diagnostics: Diagnostic[] } {
  const diagnostics: Diagnostic[] = []
  const bus = createBus({ transports: [transport], onDiagnostic: (diagnostic) => diagnostics.push(diagnostic), ...options })
  return Object.assign(bus, { diagnostics })
}

/** Resolves once `bus` knows `count` peers. */
export async function joined(bus: Bus, count = 1): Promise<void> {
  await vi.waitFor(() => expect(bus.peers().length).toBeGreaterThanOrEqual(count), { timeout: 5000, interval: 5 })
}

/** Resolves once a publish of `topic` from `bus` would be sent (some peer wants it). */
export async function wanted(bus: Bus, topic: string): Promise<void> {
  await vi.waitFor(() => expect(bus.stats().transports.some((link) => link.peers > 0)).toBe(true), { timeout: 5000, interval: 5 })
  const probe = `${topic}`
  await vi.waitFor(
    () => {
      // A local publish reports where it went: queued > 0 once a link takes it.
      const receipt = bus.publish(probe, { probe: true }, { local: false, headers: { 'x-probe': '1' } })
      expect(receipt.queued).toBeGreaterThan(0)
    },
    { timeout: 5000, interval: 5 },
  )
}

export function describeLink(name: string, makePair: () => LinkPair): void {
  describe(`link conformance: ${name}`, () => {
    test('events cross in publish order with their envelope, and are counted on both sides', async () => {
      const pair = makePair()
      const left = watchedBus(pair.left)
      const right = watchedBus(pair.right)
      const received: { data: unknown; source: string; seq: number; id: string; headers: Record<string, string> }[] = []
      right.subscribe('orders.*', (event) => {
        if (event.headers['x-probe'] === undefined)
          received.push({ data: event.data, source: event.source, seq: event.seq, id: event.id, headers: { ...event.headers } })
      })
      await wanted(left, 'orders.warmup')
      const receipts = Array.from({ length: 100 }, (_, index) => left.publish('orders.created', { index }, { headers: { trace: `t${index}` } }))
      await vi.waitFor(() => expect(received).toHaveLength(100), { interval: 5 })
      expect(received.map((event) => event.data)).toEqual(Array.from({ length: 100 }, (_, index) => ({ index })))
      expect(received.map((event) => event.id)).toEqual(receipts.map((receipt) => receipt.id))
      expect(received.every((event) => event.source === left.id)).toBe(true)
      expect(received[7]?.headers).toEqual({ trace: 't7' })
      expect(right.stats().received).toBeGreaterThanOrEqual(100)
      expect(left.stats().transports[0]?.sent).toBeGreaterThanOrEqual(100)
      await Promise.all([left.close(), right.close()])
    })

    test('nothing is posted while nobody behind the link is interested', async () => {
      const pair = makePair()
      const left = watchedBus(pair.left)
      const right = watchedBus(pair.right)
      await joined(left)
      for (let index = 0; index < 50; index++) left.publish('nobody.listens', index)
      await left.flush()
      expect(left.stats().transports[0]?.sent).toBe(0)
      const got: unknown[] = []
      right.subscribe('nobody.listens', (event) => {
        got.push(event.data)
      })
      await wanted(left, 'nobody.listens')
      expect(left.stats().transports[0]?.sent).toBeGreaterThan(0)
      await Promise.all([left.close(), right.close()])
    })

    test('a malformed or foreign frame is counted, reported as bad-frame and dropped; the link keeps working', async () => {
      const pair = makePair()
      const left = watchedBus(pair.left)
      const right = watchedBus(pair.right)
      const got: unknown[] = []
      left.subscribe('ping', (event) => {
        got.push(event.data)
      })
      await wanted(right, 'ping')
      const garbage: unknown[] = [
        null,
        42,
        'hello',
        { type: 'someone-else' },
        { crossbus: 99, bus: 'crossbus', from: 'x', kind: 'hello', routes: [] },
        { crossbus: 1, bus: 'crossbus', from: 'x', kind: 'events', events: [{ id: 1 }] },
        { crossbus: 1, bus: 'crossbus', from: 'x', kind: 'warp' },
      ]
      for (const message of garbage) pair.inject(message)
      await vi.waitFor(() => expect(left.stats().rejected).toBe(garbage.length), { interval: 5 })
      expect(left.diagnostics.filter((diagnostic) => diagnostic.type === 'bad-frame')).toHaveLength(garbage.length)
      right.publish('ping', 'still works')
      await vi.waitFor(() => expect(got).toContain('still works'), { interval: 5 })
      await Promise.all([left.close(), right.close()])
    })

    test('request() is answered by a reply handler in the other context; NO_RESPONDERS when none matches', async () => {
      const pair = makePair()
      const left = watchedBus(pair.left)
      const right = watchedBus(pair.right)
      right.reply('math.double', (event) => (event.data as number) * 2)
      await vi.waitFor(async () => expect(await left.request('math.double', 21, { timeout: 1000 })).toBe(42), { interval: 5 })
      await expect(left.request('math.triple', 1)).rejects.toMatchObject({ code: 'NO_RESPONDERS' })
      await Promise.all([left.close(), right.close()])
    })

    test('a late subscriber with last: true starts from the state a peer retained', async () => {
      const pair = makePair()
      const left = watchedBus(pair.left)
      left.publish('room.state', { players: 3 }, { retain: true })
      const right = watchedBus(pair.right)
      const states: unknown[] = []
      right.subscribe(
        'room.*',
        (event) => {
          states.push(event.data)
        },
        { last: true },
      )
      await vi.waitFor(() => expect(states).toEqual([{ players: 3 }]), { interval: 5 })
      await Promise.all([left.close(), right.close()])
    })

    test('a peer that closes is gone from peers() with a peer-leave diagnostic', async () => {
      const pair = makePair()
      const left = watchedBus(pair.left)
      const right = watchedBus(pair.right)
      await joined(left)
      expect(left.peers().map((peer) => peer.id)).toEqual([right.id])
      expect(left.diagnostics.some((diagnostic) => diagnostic.type === 'peer-join')).toBe(true)
      await right.close()
      await vi.waitFor(() => expect(left.peers()).toEqual([]), { interval: 5 })
      expect(left.diagnostics.some((diagnostic) => diagnostic.type === 'peer-leave')).toBe(true)
      await left.close()
    })

    test('data that cannot be cloned is refused at publish with NOT_CLONEABLE when it would cross; with validate off it never takes its batch down', async () => {
      const pair = makePair()
      const left = watchedBus(pair.left)
      const loose = watchedBus(pair.right, { validate: false })
      const got: unknown[] = []
      left.subscribe('mixed', (event) => {
        got.push(event.data)
      })
      loose.subscribe('mixed', () => {})
      await wanted(loose, 'mixed')
      await wanted(left, 'mixed')
      // By default only data that will cross is checked: this would, so publish refuses it.
      expect(() => left.publish('mixed', { run: () => 1 })).toThrow(expect.objectContaining({ code: 'NOT_CLONEABLE' }))
      // Nobody elsewhere wants this topic: the function stays in this context, unchecked.
      expect(() => left.publish('only.here', { run: () => 1 })).not.toThrow()
      loose.publish('mixed', 1)
      loose.publish('mixed', { run: () => 1 })
      loose.publish('mixed', 3)
      await vi.waitFor(() => expect(got.filter((data) => typeof data === 'number')).toEqual([1, 3]), { interval: 5 })
      expect(loose.diagnostics.filter((diagnostic) => diagnostic.type === 'not-cloneable')).toHaveLength(1)
      await Promise.all([left.close(), loose.close()])
    })

    test('local: true keeps an event, or a subscription, to this context', async () => {
      const pair = makePair()
      const left = watchedBus(pair.left)
      const right = watchedBus(pair.right)
      const remote: unknown[] = []
      const localOnly: unknown[] = []
      right.subscribe('news', (event) => {
        remote.push(event.data)
      })
      right.subscribe(
        'news',
        (event) => {
          localOnly.push(event.data)
        },
        { local: true },
      )
      await wanted(left, 'news')
      left.publish('news', 'private', { local: true })
      left.publish('news', 'public')
      right.publish('news', 'own')
      // Two sources: FIFO holds per source, not between them.
      await vi.waitFor(() => expect(remote.filter((data) => typeof data === 'string').sort()).toEqual(['own', 'public']), { interval: 5 })
      expect(localOnly).toEqual(['own'])
      await Promise.all([left.close(), right.close()])
    })
  })
}

/**
 * A MessageChannel pair for the suite. The left bus listens on port1 and on a
 * third port, so a test can inject foreign frames into the left side's inbox.
 */
export function messageChannelPair(): LinkPair {
  const { port1, port2 } = new MessageChannel()
  const injector = new MessageChannel()
  type Listener = (event: { data: unknown }) => void
  const left = messagePort({
    postMessage: (message: unknown) => port1.postMessage(message),
    addEventListener: (type: 'message' | 'messageerror', listener: Listener) => {
      port1.addEventListener(type, listener)
      injector.port2.addEventListener(type, listener)
    },
    removeEventListener: (type: 'message' | 'messageerror', listener: Listener) => {
      port1.removeEventListener(type, listener)
      injector.port2.removeEventListener(type, listener)
    },
    start: () => {
      port1.start()
      injector.port2.start()
    },
  })
  return { left, right: messagePort(port2), inject: (message) => injector.port1.postMessage(message) }
}
