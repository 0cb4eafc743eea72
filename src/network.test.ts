import fc from 'fast-check'
import { afterEach, describe, expect, test, vi } from 'vitest'
import { createBus } from './bus.js'
import { INITIAL_CREDIT, PEER_TIMEOUT_MS, type Endpoint, type Transport } from './seams.js'
import { broadcastChannel } from './transports/broadcast-channel.js'
import { messagePort, type MessagePortTarget } from './transports/message-port.js'
import type { Bus, Diagnostic } from './types.js'
import { decodeFrame, encodeEvents, WIRE_VERSION } from './wire.js'

const buses: Bus[] = []
afterEach(async () => {
  vi.useRealTimers()
  await Promise.all(buses.splice(0).map((bus) => bus.close()))
})

let names = 0
function uniqueName(): string {
  return `net-${Date.now()}-${++names}`
}

function bus(name: string, transports: Transport[], diagnostics?: Diagnostic[]): Bus {
  const created = createBus({ name, transports, onDiagnostic: (diagnostic) => diagnostics?.push(diagnostic) })
  buses.push(created)
  return created
}

/** A pair of transports on a fresh MessageChannel. */
function portPair(): [Transport, Transport] {
  const { port1, port2 } = new MessageChannel()
  return [messagePort(port1), messagePort(port2)]
}

/** Wraps a transport so a test can count posts and cut the wire without a goodbye (a crash). */
function severable(transport: Transport): Transport & { posts: unknown[]; sever(): void; mend(): void } {
  const posts: unknown[] = []
  let severed = false
  return {
    ...transport,
    name: transport.name,
    posts,
    sever() {
      severed = true
    },
    /** The wire works again (a frozen tab that wakes up). */
    mend() {
      severed = false
    },
    open(context): Endpoint {
      const endpoint = transport.open(context) as Endpoint
      return {
        kind: endpoint.kind,
        post(message) {
          if (severed) return
          posts.push(message)
          endpoint.post(message)
        },
        listen(receive, reject) {
          endpoint.listen((message) => {
            if (!severed) receive(message)
          }, reject)
        },
        close: () => endpoint.close(),
      }
    },
  }
}

const ids = (target: Bus): string[] =>
  target
    .peers()
    .map((peer) => peer.id)
    .sort()

describe('relay and de-duplication', () => {
  test('a context relays between its links; in a cycle of links every event still arrives once, in order', async () => {
    const name = uniqueName()
    const channel = `${name}-bc`
    const [bToC, cToB] = portPair()
    const [aToC, cToA] = portPair()
    const a = bus(name, [broadcastChannel({ channel }), aToC])
    const b = bus(name, [broadcastChannel({ channel }), bToC])
    const c = bus(name, [cToB, cToA])
    const atC: number[] = []
    const atA: string[] = []
    c.subscribe('relay.*', (event) => {
      if (event.source === a.id) atC.push(event.data as number)
    })
    a.subscribe('back', (event) => {
      atA.push(event.data as string)
    })
    await vi.waitFor(() => expect(ids(a)).toEqual([b.id, c.id].sort()), { interval: 5 })
    await vi.waitFor(() => expect(a.publish('relay.warmup', -1).queued).toBeGreaterThan(0), { interval: 5 })
    for (let index = 0; index < 300; index++) a.publish('relay.n', index)
    await vi.waitFor(() => expect(atC.filter((n) => n >= 0)).toHaveLength(300), { interval: 5 })
    expect(atC.filter((n) => n >= 0)).toEqual([...Array(300).keys()])
    // B reaches C directly and A by BroadcastChannel; C reaches A directly and through B.
    await vi.waitFor(() => expect(c.publish('back', 'probe').queued).toBeGreaterThan(0), { interval: 5 })
    c.publish('back', 'once')
    await vi.waitFor(() => expect(atA).toContain('once'), { interval: 5 })
    await b.flush()
    await c.flush()
    await vi.waitFor(() => expect(b.stats().received).toBeGreaterThan(0), { interval: 5 })
    expect(atA.filter((value) => value === 'once')).toEqual(['once'])
  })

  test('a publisher linked to a peer by two paths never gets its own events back through the other one', async () => {
    const name = uniqueName()
    const [aFirst, bFirst] = portPair()
    const [aSecond, bSecond] = portPair()
    const a = bus(name, [aFirst, aSecond])
    const b = bus(name, [bFirst, bSecond])
    const atA: number[] = []
    const atB: number[] = []
    a.subscribe('loop.n', (event) => void atA.push(event.data as number))
    b.subscribe('loop.n', (event) => void atB.push(event.data as number))
    // Both of A's links know B wants loop.n, and both of B's that A does: B relays what it receives on one link to the other.
    await vi.waitFor(() => expect(a.publish('loop.n', -1).queued).toBe(3), { interval: 5 })
    await vi.waitFor(() => expect(b.publish('loop.n', -1).queued).toBe(3), { interval: 5 })
    for (let index = 0; index < 100; index++) a.publish('loop.n', index)
    await vi.waitFor(() => expect(atB.filter((n) => n >= 0)).toHaveLength(100), { interval: 5 })
    // B's relays of A's events went out before this marker, on both links (each link is FIFO).
    b.publish('loop.n', -2)
    await vi.waitFor(() => expect(atA).toContain(-2), { interval: 5 })
    expect(atA.filter((n) => n >= 0)).toEqual([...Array(100).keys()])
    expect(atB.filter((n) => n >= 0)).toEqual([...Array(100).keys()])
  })

  test('a context behind a relay is a peer, reached through the relay', async () => {
    const name = uniqueName()
    const [aToB, bToA] = portPair()
    const [bToC, cToB] = portPair()
    const a = bus(name, [aToB])
    const b = bus(name, [bToA, bToC])
    const c = bus(name, [cToB])
    await vi.waitFor(() => expect(ids(a)).toEqual([b.id, c.id].sort()), { interval: 5 })
    const got: unknown[] = []
    a.subscribe('far', (event) => {
      got.push(event.data)
    })
    c.reply('far.ask', () => 'from c')
    await vi.waitFor(() => expect(c.publish('far', 'hello').queued).toBe(1), { interval: 5 })
    await vi.waitFor(() => expect(got).toContain('hello'), { interval: 5 })
    await vi.waitFor(async () => expect(await a.request('far.ask', null, { timeout: 500 })).toBe('from c'), { interval: 5 })
  })
})

describe('membership', () => {
  test('a peer that vanishes without a goodbye is timed out; one that beats stays', async () => {
    vi.useFakeTimers({ toFake: ['setInterval', 'clearInterval', 'Date'] })
    const name = uniqueName()
    const [left, right] = portPair()
    const [left2, right2] = portPair()
    const crashing = severable(right)
    const diagnostics: Diagnostic[] = []
    const a = bus(name, [left, left2], diagnostics)
    const b = bus(name, [crashing])
    const c = bus(name, [right2])
    await vi.waitFor(() => expect(ids(a)).toEqual([b.id, c.id].sort()), { interval: 5 })
    crashing.sever()
    // Frames B posted before the cut may still arrive; beat past the timeout from the last of them.
    await vi.waitFor(() => expect(ids(a)).toContain(b.id), { interval: 5 })
    for (let beat = 0; beat < PEER_TIMEOUT_MS / 1000 + 4 && ids(a).includes(b.id); beat++) {
      vi.advanceTimersByTime(1000)
      await new Promise((resolve) => setTimeout(resolve, 10))
    }
    await vi.waitFor(() => expect(ids(a)).toEqual([c.id]), { interval: 5 })
    expect(diagnostics.some((diagnostic) => diagnostic.type === 'peer-leave' && diagnostic.message.includes(b.id))).toBe(true)
  })

  test('a context that dies behind a cycle of relays is forgotten everywhere, not kept alive by the cycle', async () => {
    vi.useFakeTimers({ toFake: ['setInterval', 'clearInterval', 'Date'] })
    const name = uniqueName()
    const [aToB, bToA] = portPair()
    const [aToC, cToA] = portPair()
    const [cToD, dToC] = portPair()
    const [dToA, aToD] = portPair()
    const crashing = severable(bToA)
    const a = bus(name, [aToB, aToC, aToD])
    const b = bus(name, [crashing])
    const c = bus(name, [cToA, cToD])
    const d = bus(name, [dToC, dToA])
    for (const context of [a, c, d]) await vi.waitFor(() => expect(ids(context)).toContain(b.id), { interval: 5 })
    crashing.sever()
    // Several beats past the timeout: B's record has stopped growing, so its circulating copies are refused.
    for (let beat = 0; beat < PEER_TIMEOUT_MS / 1000 + 4; beat++) {
      vi.advanceTimersByTime(1000)
      await new Promise((resolve) => setTimeout(resolve, 10))
    }
    for (const context of [a, c, d]) await vi.waitFor(() => expect(ids(context)).not.toContain(b.id), { interval: 5 })
    for (let beat = 0; beat < 4; beat++) {
      vi.advanceTimersByTime(1000)
      await new Promise((resolve) => setTimeout(resolve, 10))
    }
    for (const context of [a, c, d]) expect(ids(context)).not.toContain(b.id)
  })
})

describe('flow control and batching', () => {
  /** A hand-driven peer on the other side of a MessageChannel: it says hello and grants credit only when told. */
  function manualPeer(name: string, patterns: string[], capacity = 100) {
    const { port1, port2 } = new MessageChannel()
    const frames: Record<string, unknown>[] = []
    port2.onmessage = (event) => frames.push(event.data as Record<string, unknown>)
    const send = (body: Record<string, unknown>): void => port2.postMessage({ crossbus: WIRE_VERSION, bus: name, from: 'manual', ...body })
    send({ kind: 'hello', routes: [{ id: 'manual', version: 1, patterns, replies: [] }] })
    return { transport: messagePort(port1, { capacity }), frames, send, close: () => port2.close() }
  }

  const eventsIn = (frames: Record<string, unknown>[]): number =>
    frames.filter((frame) => frame.kind === 'events').reduce((sum, frame) => sum + (frame.data as unknown[]).length, 0)

  test('a receiver that grants no credit fills only its own bounded link queue; local subscribers get everything', async () => {
    const name = uniqueName()
    const peer = manualPeer(name, ['x'])
    const a = bus(name, [peer.transport])
    const local: number[] = []
    a.subscribe(
      'x',
      (event) => {
        local.push(event.data as number)
      },
      { capacity: 10_000 },
    )
    await vi.waitFor(() => expect(a.peers()).toHaveLength(1), { interval: 5 })
    for (let index = 0; index < 10_000; index++) a.publish('x', index)
    // flush() waits for credit: still pending while the receiver grants none.
    let flushed = false
    void a.flush().then(() => {
      flushed = true
    })
    await vi.waitFor(
      () => expect(a.stats().transports[0]).toMatchObject({ sent: INITIAL_CREDIT, queued: 100, capacity: 100, dropped: 10_000 - INITIAL_CREDIT - 100 }),
      { interval: 5 },
    )
    await vi.waitFor(() => expect(local).toHaveLength(10_000), { interval: 5 })
    await vi.waitFor(() => expect(eventsIn(peer.frames)).toBe(INITIAL_CREDIT), { interval: 5 })
    // Credit arrives: the queued events go, oldest first.
    expect(flushed).toBe(false)
    peer.send({ kind: 'credit', credit: 1000 })
    await vi.waitFor(() => expect(eventsIn(peer.frames)).toBe(INITIAL_CREDIT + 100), { interval: 5 })
    expect(a.stats().transports[0]?.queued).toBe(0)
    await vi.waitFor(() => expect(flushed).toBe(true), { interval: 5 })
    peer.close()
  })

  test('awaiting flush() between bursts keeps a small link queue from overflowing: nothing is dropped', async () => {
    const name = uniqueName()
    const { port1, port2 } = new MessageChannel()
    const sender = bus(name, [messagePort(port1, { capacity: 1000 })])
    const receiver = bus(name, [messagePort(port2)])
    const got: number[] = []
    receiver.subscribe(
      'paced',
      (event) => {
        got.push(event.data as number)
      },
      { capacity: 50_000 },
    )
    await vi.waitFor(() => expect(sender.publish('paced', -1).queued).toBe(1), { interval: 5 })
    for (let burst = 0; burst < 20; burst++) {
      for (let index = 0; index < 1000; index++) sender.publish('paced', burst * 1000 + index)
      await sender.flush()
    }
    await vi.waitFor(() => expect(got.filter((n) => n >= 0)).toHaveLength(20_000), { interval: 5 })
    expect(sender.stats().dropped).toBe(0)
  })

  test('flush() stops waiting when the link has no peer left to send to', async () => {
    const name = uniqueName()
    const peer = manualPeer(name, ['x'])
    const a = bus(name, [peer.transport])
    await vi.waitFor(() => expect(a.peers()).toHaveLength(1), { interval: 5 })
    for (let index = 0; index < INITIAL_CREDIT + 50; index++) a.publish('x', index)
    const flushed = a.flush()
    peer.send({ kind: 'bye' })
    await flushed
    expect(a.peers()).toEqual([])
    peer.close()
  })

  test('a burst crosses in messages of `batch` events, not one per event', async () => {
    const name = uniqueName()
    const peer = manualPeer(name, ['burst'], 8192)
    peer.send({ kind: 'credit', credit: 100_000 })
    const a = bus(name, [messagePort(new MessageChannel().port1), peer.transport])
    await vi.waitFor(() => expect(a.stats().transports[1]?.peers).toBe(1), { interval: 5 })
    await vi.waitFor(() => expect(a.publish('burst', -1).queued).toBe(1), { interval: 5 })
    const before = peer.frames.filter((frame) => frame.kind === 'events').length
    for (let index = 0; index < 2000; index++) a.publish('burst', index)
    await vi.waitFor(() => expect(eventsIn(peer.frames)).toBeGreaterThanOrEqual(2001), { interval: 5 })
    const batches = peer.frames.filter((frame) => frame.kind === 'events').length - before
    expect(batches).toBeLessThanOrEqual(Math.ceil(2000 / 512) + 1)
    peer.close()
  })
})

describe('wire decoding', () => {
  test('decodeFrame never throws, whatever arrives', () => {
    fc.assert(
      fc.property(fc.anything({ withMap: true, withSet: true, withTypedArray: true, withDate: true, withBigInt: true }), (message) => {
        const result = decodeFrame(message)
        return typeof result === 'string' || typeof result === 'object'
      }),
      { numRuns: 2000 },
    )
  })

  test('decodeFrame refuses frames that look like ours but are malformed', () => {
    const envelope = fc.record({ crossbus: fc.constant(WIRE_VERSION), bus: fc.string(), from: fc.string() })
    const malformed = fc.oneof(
      fc.record({ kind: fc.constant('events'), events: fc.array(fc.record({ id: fc.integer(), topic: fc.string() }), { minLength: 1 }) }),
      fc.record({
        kind: fc.constant('events'),
        sources: fc.constant(['s']),
        topics: fc.constant(['t']),
        data: fc.array(fc.anything(), { minLength: 1, maxLength: 4 }),
        // Columns of the wrong type or length, or indexes past their tables.
        src: fc.oneof(fc.constant(new Uint32Array([7])), fc.constant(['0']), fc.constant([7])),
        seq: fc.constant(new Float64Array([1])),
        topic: fc.constant(new Uint32Array([0])),
        time: fc.constant(new Float64Array([0])),
      }),
      fc.record({
        kind: fc.constant('events'),
        sources: fc.constant(['s']),
        topics: fc.constant(['t']),
        data: fc.constant([1]),
        src: fc.constant([0]),
        seq: fc.constant([1]),
        topic: fc.constant([0]),
        time: fc.constant([0]),
        // An index list naming events the batch does not have, or not a list.
        durable: fc.oneof(fc.constant([1]), fc.constant(['0']), fc.constant(0)),
      }),
      fc.record({ kind: fc.constant('hello'), routes: fc.array(fc.record({ id: fc.string(), version: fc.constant(-1) }), { minLength: 1 }) }),
      fc.record({ kind: fc.constant('credit'), credit: fc.oneof(fc.double({ max: -1 }), fc.string()) }),
      fc.record({ kind: fc.string().filter((kind) => !['hello', 'bye', 'events', 'credit', 'retained'].includes(kind)) }),
    )
    fc.assert(
      fc.property(envelope, malformed, (base, body) => typeof decodeFrame({ ...base, ...body }) === 'string'),
      { numRuns: 2000 },
    )
  })

  test('thousands of random frames into a live link are counted and dropped; the link keeps working', async () => {
    const name = uniqueName()
    const { port1, port2 } = new MessageChannel()
    const diagnostics: Diagnostic[] = []
    const a = bus(name, [messagePort(port1)], diagnostics)
    const got: unknown[] = []
    a.subscribe('ok', (event) => {
      got.push(event.data)
    })
    const samples = fc.sample(
      fc.oneof(
        fc.anything(),
        fc.record({
          crossbus: fc.constant(WIRE_VERSION),
          bus: fc.constant(name),
          from: fc.string(),
          kind: fc.constantFrom('hello', 'events', 'credit', 'retained', 'nope'),
          data: fc.anything(),
          sources: fc.anything(),
          src: fc.anything(),
          routes: fc.anything(),
          credit: fc.anything(),
        }),
      ),
      3000,
    )
    for (const sample of samples) port2.postMessage(sample)
    // A valid frame after the storm is still delivered.
    port2.postMessage({
      crossbus: WIRE_VERSION,
      bus: name,
      from: 'tester',
      ...encodeEvents([{ topic: 'ok', data: 'after the storm', source: 'tester', seq: 1, time: 0, headers: {} }], () => false),
    })
    await vi.waitFor(() => expect(got).toContain('after the storm'), { interval: 5, timeout: 5000 })
    expect(a.stats().rejected).toBeGreaterThan(2000)
    expect(diagnostics.filter((diagnostic) => diagnostic.type === 'bad-frame').length).toBe(a.stats().rejected)
    port2.close()
  })
})

describe('links that appear over time', () => {
  test('a shared worker gets a link per connecting context, and drops it when that context leaves', async () => {
    const name = uniqueName()
    // A stand-in for SharedWorkerGlobalScope: 'connect' events carrying a port.
    const scope = Object.assign(new EventTarget(), { onconnect: null })
    const hub = bus(name, [messagePort(scope as unknown as MessagePortTarget)])
    const connect = (): Bus => {
      const { port1, port2 } = new MessageChannel()
      scope.dispatchEvent(Object.assign(new Event('connect'), { ports: [port2] }))
      return bus(name, [messagePort(port1)])
    }
    const first = connect()
    const second = connect()
    await vi.waitFor(() => expect(hub.stats().transports).toHaveLength(2), { interval: 5 })
    const got: unknown[] = []
    second.subscribe('via.hub', (event) => {
      got.push(event.data)
    })
    await vi.waitFor(() => expect(first.publish('via.hub', 'hello').queued).toBe(1), { interval: 5 })
    await vi.waitFor(() => expect(got).toContain('hello'), { interval: 5 })
    await first.close()
    await vi.waitFor(() => expect(hub.stats().transports).toHaveLength(1), { interval: 5 })
    expect(hub.peers().map((peer) => peer.id)).toEqual([second.id])
  })
})

describe('silent peers that come back', () => {
  test('a shared worker keeps the port of a tab silent past the timeout, and the two find each other again when it wakes', async () => {
    vi.useFakeTimers({ toFake: ['setInterval', 'clearInterval', 'Date'] })
    const name = uniqueName()
    const scope = Object.assign(new EventTarget(), { onconnect: null })
    const hub = bus(name, [messagePort(scope as unknown as MessagePortTarget)])
    const { port1, port2 } = new MessageChannel()
    const frozen = severable(messagePort(port1))
    scope.dispatchEvent(Object.assign(new Event('connect'), { ports: [port2] }))
    const tab = bus(name, [frozen])
    await vi.waitFor(() => expect(ids(hub)).toEqual([tab.id]), { interval: 5 })
    const beat = async (): Promise<void> => {
      vi.advanceTimersByTime(1000)
      await new Promise((resolve) => setTimeout(resolve, 10))
    }
    // Frozen: nothing goes either way. The tab times the worker out; the worker does too, unless it
    // watches the tab's Web Lock (browsers), which says the tab lives.
    frozen.sever()
    const watchesLock = typeof navigator === 'object' && 'locks' in navigator
    const silent = (): boolean => ids(tab).length === 0 && (watchesLock || ids(hub).length === 0)
    for (let beats = 0; beats < PEER_TIMEOUT_MS / 1000 + 4 && !silent(); beats++) await beat()
    expect([ids(hub), ids(tab)]).toEqual([watchesLock ? [tab.id] : [], []])
    // Awake again: within a few beats they are peers, and events flow.
    frozen.mend()
    for (let beats = 0; beats < 5 && (ids(hub).length === 0 || ids(tab).length === 0); beats++) await beat()
    expect([ids(hub), ids(tab)]).toEqual([[tab.id], [hub.id]])
    const got: unknown[] = []
    hub.subscribe('back.again', (event) => void got.push(event.data))
    await vi.waitFor(() => expect(tab.publish('back.again', 'hello').queued).toBe(1), { interval: 5 })
    await vi.waitFor(() => expect(got).toContain('hello'), { interval: 5 })
  })
})

describe('strangers', () => {
  test('a request from a context that has not said hello (a restarted worker’s peer) is answered the way it came', async () => {
    const name = uniqueName()
    const { port1, port2 } = new MessageChannel()
    const frames: Record<string, unknown>[] = []
    port2.onmessage = (event) => frames.push(event.data as Record<string, unknown>)
    const worker = bus(name, [messagePort(port1)])
    worker.reply('wake.up', (event) => `hello ${String(event.data)}`)
    port2.postMessage({
      crossbus: WIRE_VERSION,
      bus: name,
      from: 'page',
      ...encodeEvents([{ topic: 'wake.up', data: 'page', source: 'page', seq: 1, time: 0, headers: { 'x-crossbus-reply-to': '$reply.page.1' } }], () => false),
    })
    await vi.waitFor(
      () => {
        const replies = frames
          .filter((frame) => frame.kind === 'events')
          .flatMap((frame) =>
            (frame.data as unknown[]).map((data, index) => ({ topic: (frame.topics as string[])[(frame.topic as Uint32Array)[index] as number], data })),
          )
        expect(replies).toEqual([expect.objectContaining({ topic: '$reply.page.1', data: 'hello page' })])
      },
      { interval: 5 },
    )
    // …and the stranger was asked to introduce itself.
    expect(frames.some((frame) => frame.kind === 'hello' && frame.ask === true)).toBe(true)
    port2.close()
  })
})

describe('credit across restarts', () => {
  test('a new context on a point link (a restarted worker) restores the credit its predecessor never granted back', async () => {
    const name = uniqueName()
    const { port1, port2 } = new MessageChannel()
    const frames: Record<string, unknown>[] = []
    port2.onmessage = (event) => frames.push(event.data as Record<string, unknown>)
    const hello = (id: string): void =>
      port2.postMessage({ crossbus: WIRE_VERSION, bus: name, from: id, kind: 'hello', routes: [{ id, version: 1, patterns: ['x'], replies: [] }] })
    const page = bus(name, [messagePort(port1, { capacity: 100_000 })])
    hello('first-worker')
    await vi.waitFor(() => expect(page.peers()).toHaveLength(1), { interval: 5 })
    for (let index = 0; index < INITIAL_CREDIT + 10; index++) page.publish('x', index)
    await vi.waitFor(() => expect(page.stats().transports[0]).toMatchObject({ sent: INITIAL_CREDIT, queued: 10 }), { interval: 5 })
    // The worker is stopped and a new one starts: it never saw the events in flight.
    hello('second-worker')
    await vi.waitFor(() => expect(page.stats().transports[0]).toMatchObject({ sent: INITIAL_CREDIT + 10, queued: 0 }), { interval: 5 })
    port2.close()
  })
})

describe('hardening', () => {
  test('link options are checked: a batch of 0 would never send', () => {
    const { port1 } = new MessageChannel()
    expect(() => createBus({ transports: [messagePort(port1, { batch: 0 })] })).toThrow(TypeError)
    expect(() => createBus({ transports: [messagePort(port1, { capacity: 1.5 })] })).toThrow(TypeError)
    port1.close()
  })

  test('an answer to a retained-state request with a malformed topic is refused and counted, and breaks nothing', async () => {
    const name = uniqueName()
    const { port1, port2 } = new MessageChannel()
    const frames: Record<string, unknown>[] = []
    port2.onmessage = (event) => frames.push(event.data as Record<string, unknown>)
    const send = (body: Record<string, unknown>): void => port2.postMessage({ crossbus: WIRE_VERSION, bus: name, from: 'peer', ...body })
    send({ kind: 'hello', routes: [{ id: 'peer', version: 1, patterns: [], replies: [] }] })
    const a = bus(name, [messagePort(port1)])
    await vi.waitFor(() => expect(a.peers()).toHaveLength(1), { interval: 5 })
    a.subscribe('ok', () => {}, { last: true })
    await vi.waitFor(() => expect(frames.some((frame) => frame.kind === 'retained')).toBe(true), { interval: 5 })
    const ask = frames.find((frame) => frame.kind === 'retained')?.ask as number
    send({ ...encodeEvents([{ topic: 'a..b', data: 1, source: 'peer', seq: 1, time: 0, headers: {} }], () => true), answers: ask })
    await vi.waitFor(() => expect(a.stats().rejected).toBe(1), { interval: 5 })
    expect(() => a.subscribe('ok.*', () => {}, { last: true })).not.toThrow()
    port2.close()
  })

  test('events a closing link could not send are counted as dropped', async () => {
    const name = uniqueName()
    const { port1, port2 } = new MessageChannel()
    port2.onmessage = () => {}
    port2.postMessage({ crossbus: WIRE_VERSION, bus: name, from: 'peer', kind: 'hello', routes: [{ id: 'peer', version: 1, patterns: ['x'], replies: [] }] })
    const a = createBus({ name, transports: [messagePort(port1)], onDiagnostic: () => {} })
    await vi.waitFor(() => expect(a.peers()).toHaveLength(1), { interval: 5 })
    for (let index = 0; index < INITIAL_CREDIT + 10; index++) a.publish('x', index)
    await a.close()
    expect(a.stats().dropped).toBe(10)
    port2.close()
  })
})

describe('throttled peers', () => {
  test('a peer whose timers are throttled but who answers when asked stays a peer, near and two hops away', async () => {
    vi.useFakeTimers({ toFake: ['setInterval', 'clearInterval', 'Date'] })
    const name = uniqueName()
    // H: a hidden tab. It never beats on its own, but its message handler answers a question at once.
    const { port1, port2 } = new MessageChannel()
    let version = 1
    const helloFromH = (): void =>
      port2.postMessage({
        crossbus: WIRE_VERSION,
        bus: name,
        from: 'hidden',
        kind: 'hello',
        routes: [{ id: 'hidden', version: version++, patterns: ['h'], replies: [] }],
      })
    port2.onmessage = (event) => {
      const frame = event.data as { kind: string; ask?: boolean }
      if (frame.kind === 'hello' && frame.ask === true) helloFromH()
    }
    helloFromH()
    const [aToC, cToA] = portPair()
    const a = bus(name, [messagePort(port1), aToC])
    const c = bus(name, [cToA])
    await vi.waitFor(() => expect(ids(c)).toContain('hidden'), { interval: 5 })
    for (let beat = 0; beat < 3 * (PEER_TIMEOUT_MS / 1000); beat++) {
      vi.advanceTimersByTime(1000)
      await new Promise((resolve) => setTimeout(resolve, 10))
    }
    expect(ids(a)).toContain('hidden')
    expect(ids(c)).toContain('hidden')
    port2.close()
  })
})
