// Hostile input (issue 11): frames that tried to crash, forge or flood a
// context, each refused, counted and reported; and the bounds of every table
// a peer can grow. Frames travel through a MessageChannel (structured clone, as
// on any wire: sparse arrays keep their holes) unless a test needs objects no
// clone can carry (getters, proxies), which go through a direct link.
import { afterEach, describe, expect, test, vi } from 'vitest'
import { badFrames, eventsBody, eventsIn, rawPeer, reaches, tapped } from '../test/hostile.js'
import { createBus } from './bus.js'
import { PEER_TIMEOUT_MS, type Transport } from './seams.js'
import { broadcastChannel } from './transports/broadcast-channel.js'
import { messagePort } from './transports/message-port.js'
import type { Bus, BusEvent, Diagnostic } from './types.js'
import { decodeFrame, WIRE_VERSION } from './wire.js'

const buses: Bus[] = []
const closers: (() => void)[] = []
/** Releases a handler that waits on a gate, so a failed test cannot leave close() waiting. */
const gates: (() => void)[] = []
afterEach(async () => {
  vi.useRealTimers()
  for (const release of gates.splice(0)) release()
  await Promise.all(buses.splice(0).map((bus) => bus.close()))
  for (const close of closers.splice(0)) close()
})

let names = 0
const uniqueName = (): string => `hostile-${Date.now()}-${++names}-${Math.random().toString(36).slice(2, 6)}`

function bus(name: string, transports: Transport[], diagnostics?: Diagnostic[]): Bus {
  const created = createBus({ name, transports, onDiagnostic: (diagnostic) => diagnostics?.push(diagnostic) })
  buses.push(created)
  return created
}

function peer(...args: Parameters<typeof rawPeer>): ReturnType<typeof rawPeer> {
  const made = rawPeer(...args)
  closers.push(made.close)
  return made
}

function portPair(): [Transport, Transport] {
  const { port1, port2 } = new MessageChannel()
  closers.push(() => port1.close())
  return [messagePort(port1), messagePort(port2)]
}

/** A sparse array of `length` with values only at the given indexes. */
function sparse<T>(length: number, values: Record<number, T> = {}): T[] {
  const array = new Array<T>(length)
  for (const [index, value] of Object.entries(values)) array[Number(index)] = value
  return array
}

const ids = (target: Bus): string[] =>
  target
    .peers()
    .map((entry) => entry.id)
    .sort()

async function beat(count = 1): Promise<void> {
  for (let index = 0; index < count; index++) {
    vi.advanceTimersByTime(1000)
    await new Promise((resolve) => setTimeout(resolve, 10))
  }
}

describe('one frame cannot crash a context', () => {
  test('decodeFrame refuses fields whose toString or valueOf is broken, without calling them', () => {
    const broken = { toString: 0, valueOf: 0 }
    expect(decodeFrame({ crossbus: broken })).toBeTypeOf('string')
    expect(decodeFrame({ crossbus: WIRE_VERSION, bus: 'b', from: 'f', kind: broken })).toBeTypeOf('string')
    expect(decodeFrame({ crossbus: Object.create(null) })).toBeTypeOf('string')
    expect(decodeFrame({ crossbus: WIRE_VERSION, bus: 'b', from: 'f', kind: Object.create(null) })).toBeTypeOf('string')
  })

  test('a hello whose routes have a hole is refused and counted; the link keeps working', async () => {
    const name = uniqueName()
    const raw = peer(name, 'holes')
    const diagnostics: Diagnostic[] = []
    const a = bus(name, [raw.transport], diagnostics)
    raw.send({ kind: 'hello', routes: sparse(2, { 1: { id: 'holes', version: 1, patterns: ['x'], replies: [] } }) })
    raw.send({ kind: 'hello', routes: [{ id: 'holes', version: 2, patterns: sparse(2, { 0: 'x' }), replies: [] }] })
    await vi.waitFor(() => expect(a.stats().rejected).toBe(2), { interval: 5 })
    expect(badFrames(diagnostics)).toBe(2)
    raw.hello('holes', { patterns: ['x'] })
    await vi.waitFor(() => expect(ids(a)).toEqual(['holes']), { interval: 5 })
  })

  test('a frame with a broken toString in its kind or version is refused and counted', async () => {
    const name = uniqueName()
    const raw = peer(name, 'broken')
    const diagnostics: Diagnostic[] = []
    const a = bus(name, [raw.transport], diagnostics)
    raw.post({ crossbus: { toString: 0 } })
    raw.send({ kind: { toString: 0 } })
    raw.send({ kind: 'events', ...eventsBody([{ source: 'broken', seq: 1, topic: 'x', data: 1 }]), seq: [{ valueOf: 0 }] })
    await vi.waitFor(() => expect(a.stats().rejected).toBe(3), { interval: 5 })
    expect(badFrames(diagnostics)).toBe(3)
  })
})

describe('holes cannot forge a delivery', () => {
  test('a hole in the topic table forges nothing and poisons no retained state', async () => {
    const name = uniqueName()
    const raw = peer(name, 'holes')
    const a = bus(name, [raw.transport])
    const got: BusEvent[] = []
    a.subscribe('secret.*', (event) => void got.push(event))
    a.publish('secret.a', 'own')
    // A subscription change leaves the router without a "last topic".
    a.subscribe('other', () => {})
    raw.send({ ...eventsBody([{ source: 'holes', seq: 1, topic: 'x', data: 'FORGED' }]), topics: sparse(1), retained: [0] })
    await vi.waitFor(() => expect(a.stats().rejected).toBe(1), { interval: 5 })
    await vi.waitFor(() => expect(got.map((event) => event.data)).toEqual(['own']), { interval: 5 })
    expect(() => a.subscribe('secret.*', () => {}, { last: true })).not.toThrow()
    expect(() => a.subscribe('>', () => {}, { last: true })).not.toThrow()
  })

  test('a hole in the source table delivers nothing', async () => {
    const name = uniqueName()
    const raw = peer(name, 'holes')
    const a = bus(name, [raw.transport])
    const got: BusEvent[] = []
    a.subscribe('news.*', (event) => void got.push(event))
    raw.send({ ...eventsBody([{ source: 'holes', seq: 1, topic: 'news.x', data: 'no source' }]), sources: sparse(1) })
    raw.send(eventsBody([{ source: 'holes', seq: 2, topic: 'news.x', data: 'fine' }]))
    await vi.waitFor(() => expect(got.map((event) => event.data)).toEqual(['fine']), { interval: 5 })
    expect(a.stats().rejected).toBe(1)
    expect(got.every((event) => typeof event.source === 'string')).toBe(true)
  })
})

describe('reserved topics', () => {
  /** A requester with a slow responder on one link and a raw stranger on another. */
  async function slowResponder(): Promise<{ asker: Bus; responder: Bus; raw: ReturnType<typeof rawPeer>; release: () => void }> {
    const name = uniqueName()
    const [left, right] = portPair()
    const raw = peer(name, 'raw')
    const asker = bus(name, [left, raw.transport])
    const responder = bus(name, [right])
    let release!: () => void
    const gate = new Promise<void>((resolve) => {
      release = resolve
    })
    gates.push(release)
    responder.reply('svc.get', async () => {
      await gate
      return 'real'
    })
    await vi.waitFor(() => expect(ids(asker)).toEqual([responder.id]), { interval: 5 })
    await vi.waitFor(() => expect(asker.stats().transports[0]?.peers).toBe(1), { interval: 5 })
    return { asker, responder, raw, release }
  }

  test('a blind spray on $reply.<id>.<n> does not answer a pending request', async () => {
    const { asker, raw, release } = await slowResponder()
    const answer = asker.request('svc.get', null, { timeout: 2000 })
    const spray = Array.from({ length: 5 }, (_, index) => ({ source: 'raw', seq: index + 1, topic: `$reply.${asker.id}.${index + 1}`, data: 'FORGED' }))
    raw.send(eventsBody(spray))
    await vi.waitFor(() => expect(asker.stats().rejected).toBe(5), { interval: 5 })
    release()
    await expect(answer).resolves.toBe('real')
  })

  test('a raw channel that sees a request cannot answer it, not even as the responder', async () => {
    const { asker, responder, raw, release } = await slowResponder()
    // The stranger subscribes to the request's topic, so the request reaches it too.
    raw.hello('raw', { patterns: ['svc.>'] })
    await vi.waitFor(() => expect(asker.stats().transports[1]?.peers).toBe(1), { interval: 5 })
    const answer = asker.request('svc.get', null, { timeout: 2000 })
    await vi.waitFor(() => expect(eventsIn(raw.frames).filter((event) => event.topic === 'svc.get')).toHaveLength(1), { interval: 5 })
    const request = eventsIn(raw.frames).find((event) => event.topic === 'svc.get')
    const inbox = request?.headers?.['x-crossbus-reply-to'] as string
    raw.send(eventsBody([{ source: 'raw', seq: 1, topic: inbox, data: 'FORGED by raw' }]))
    raw.send(eventsBody([{ source: responder.id, seq: 999, topic: inbox, data: 'FORGED as responder' }]))
    await vi.waitFor(() => expect(asker.stats().rejected).toBe(2), { interval: 5 })
    release()
    await expect(answer).resolves.toBe('real')
  })

  test('a relay passes a reply on only the way its request came, and only from where it went', async () => {
    const name = uniqueName()
    const [aToR, rToA] = portPair()
    const [rToC, cToR] = portPair()
    const raw = peer(name, 'raw')
    const asker = bus(name, [aToR])
    const relay = bus(name, [rToA, rToC, raw.transport])
    const responder = bus(name, [cToR])
    let release!: () => void
    const gate = new Promise<void>((resolve) => {
      release = resolve
    })
    gates.push(release)
    responder.reply('svc.get', async () => {
      await gate
      return 'real'
    })
    await vi.waitFor(() => expect(ids(asker)).toEqual([relay.id, responder.id].sort()), { interval: 5 })
    await vi.waitFor(() => expect(ids(relay)).toEqual([asker.id, responder.id].sort()), { interval: 5 })
    const answer = asker.request('svc.get', null, { timeout: 2000 })
    raw.send(eventsBody([1, 2, 3].map((n) => ({ source: 'raw', seq: n, topic: `$reply.${asker.id}.${n}`, data: 'FORGED' }))))
    await vi.waitFor(() => expect(relay.stats().rejected).toBe(3), { interval: 5 })
    release()
    await expect(answer).resolves.toBe('real')
    expect(asker.stats().rejected).toBe(0)
  })

  test('other reserved topics from a peer are refused', async () => {
    const name = uniqueName()
    const raw = peer(name, 'raw')
    const a = bus(name, [raw.transport])
    const got: BusEvent[] = []
    a.subscribe('$reserved.>', (event) => void got.push(event))
    raw.hello('raw')
    await vi.waitFor(() => expect(ids(a)).toEqual(['raw']), { interval: 5 })
    raw.send(eventsBody([{ source: 'raw', seq: 1, topic: '$reserved.x', data: 'no' }]))
    await vi.waitFor(() => expect(a.stats().rejected).toBe(1), { interval: 5 })
    expect(got).toEqual([])
  })

  test('$log.appended from a stranger or a cross-origin peer is refused', async () => {
    const name = uniqueName()
    const stranger = peer(name, 'stranger')
    const foreign = peer(name, 'foreign', { crossOrigin: true })
    const a = bus(name, [stranger.transport, foreign.transport])
    foreign.hello('foreign')
    await vi.waitFor(() => expect(ids(a)).toEqual(['foreign']), { interval: 5 })
    stranger.send(eventsBody([{ source: 'stranger', seq: 1, topic: '$log.appended', data: 7 }]))
    foreign.send(eventsBody([{ source: 'foreign', seq: 1, topic: '$log.appended', data: 7 }]))
    await vi.waitFor(() => expect(a.stats().rejected).toBe(2), { interval: 5 })
  })
})

describe('a cross-origin peer acts only as itself', () => {
  /** P: a page with BroadcastChannel to tabs T (publisher, responder) and U (subscriber), and a cross-origin link to a raw iframe. */
  async function page(): Promise<{ parent: Bus; tab: Bus; other: Bus; frame: ReturnType<typeof rawPeer>; got: BusEvent[] }> {
    const name = uniqueName()
    const channel = `${name}-bc`
    const frame = peer(name, 'iframe', { crossOrigin: true })
    const parent = bus(name, [broadcastChannel({ channel }), frame.transport])
    const tab = bus(name, [broadcastChannel({ channel })])
    const other = bus(name, [broadcastChannel({ channel })])
    const got: BusEvent[] = []
    other.subscribe('news.*', (event) => void got.push(event))
    frame.hello('iframe', { patterns: ['news.*'] })
    await vi.waitFor(() => expect(ids(parent)).toEqual([tab.id, other.id, 'iframe'].sort()), { interval: 5 })
    await vi.waitFor(() => expect(ids(other)).toEqual([tab.id, parent.id, 'iframe'].sort()), { interval: 5 })
    return { parent, tab, other, frame, got }
  }

  test('events it sends as a same-origin tab are refused, and that tab is not silenced', async () => {
    const { parent, tab, frame, got } = await page()
    frame.send(eventsBody([{ source: tab.id, seq: Number.MAX_SAFE_INTEGER, topic: 'news.x', data: 'FORGED' }]))
    await vi.waitFor(() => expect(parent.stats().rejected).toBe(1), { interval: 5 })
    await vi.waitFor(() => expect(tab.publish('news.x', -1).queued).toBeGreaterThan(0), { interval: 5 })
    for (let n = 0; n < 10; n++) tab.publish('news.x', n)
    await vi.waitFor(() => expect(got.filter((event) => event.data !== -1).map((event) => event.data)).toEqual([...Array(10).keys()]), { interval: 5 })
    expect(got.some((event) => event.data === 'FORGED')).toBe(false)
  })

  test('records it announces for other contexts are refused', async () => {
    const { parent, tab, frame } = await page()
    frame.hello('iframe', { patterns: ['news.*'] }, [{ id: tab.id, version: 1e9, patterns: ['>'], replies: ['>'] }])
    await vi.waitFor(() => expect(parent.stats().rejected).toBe(1), { interval: 5 })
    expect(parent.peers().find((entry) => entry.id === tab.id)?.transport).toBe('broadcast-channel')
    // Its own records of contexts behind it (its workers) are taken.
    frame.hello('iframe', { patterns: ['news.*'] }, [{ id: 'iframe-worker', version: 1, patterns: [], replies: [] }])
    await vi.waitFor(() => expect(ids(parent)).toContain('iframe-worker'), { interval: 5 })
  })

  test('replies it sprays for a same-origin request are refused', async () => {
    const { parent, tab, other, frame } = await page()
    let release!: () => void
    const gate = new Promise<void>((resolve) => {
      release = resolve
    })
    gates.push(release)
    tab.reply('svc.ping', () => 'pong')
    tab.reply('svc.get', async () => {
      await gate
      return 'real'
    })
    await vi.waitFor(() => expect(other.request('svc.ping', null, { timeout: 500 })).resolves.toBe('pong'), { interval: 5 })
    const answers = [1, 2, 3].map(() => other.request('svc.get', null, { timeout: 3000 }).catch((error: unknown) => error))
    // The iframe sprays what it guesses the inboxes are, as itself and as the responder.
    const spray = Array.from({ length: 10 }, (_, index) => index + 1).flatMap((n) => [
      { source: 'iframe', seq: 100 + n, topic: `$reply.${other.id}.${n}`, data: 'FORGED' },
      { source: tab.id, seq: 100 + n, topic: `$reply.${other.id}.${n}`, data: 'FORGED as tab' },
    ])
    frame.send(eventsBody(spray))
    await vi.waitFor(() => expect(parent.stats().rejected).toBe(20), { interval: 5 })
    release()
    expect(await Promise.all(answers)).toEqual(['real', 'real', 'real'])
  })
})

describe('sequence numbers cannot silence a source', () => {
  test('one frame with seq = MAX_SAFE_INTEGER for a real source does not drop its later events', async () => {
    const name = uniqueName()
    const [left, right] = portPair()
    const raw = peer(name, 'raw')
    const a = bus(name, [left, raw.transport])
    const source = bus(name, [right])
    const got: unknown[] = []
    a.subscribe('feed.x', (event) => void got.push(event.data))
    await vi.waitFor(() => expect(source.publish('feed.x', -1).queued).toBe(1), { interval: 5 })
    await vi.waitFor(() => expect(got).toContain(-1), { interval: 5 })
    raw.send(eventsBody([{ source: source.id, seq: Number.MAX_SAFE_INTEGER, topic: 'feed.x', data: 'bogus' }]))
    await vi.waitFor(() => expect(a.stats().received).toBeGreaterThanOrEqual(2), { interval: 5 })
    for (let n = 0; n < 100; n++) source.publish('feed.x', n)
    await vi.waitFor(() => expect(got.filter((value) => typeof value === 'number' && value >= 0)).toHaveLength(100), { interval: 5 })
  })

  test('after the source table is flooded, an old frame replayed delivers nothing again', async () => {
    const name = uniqueName()
    const [left, right] = portPair()
    const raw = peer(name, 'raw')
    const tap = tapped(right)
    const a = bus(name, [left, raw.transport])
    const source = bus(name, [tap])
    const got: unknown[] = []
    a.subscribe('feed.x', (event) => void got.push(event.data))
    await vi.waitFor(() => expect(source.publish('feed.x', -1).queued).toBe(1), { interval: 5 })
    for (let n = 0; n < 10; n++) source.publish('feed.x', n)
    await vi.waitFor(() => expect(got.filter((value) => (value as number) >= 0)).toHaveLength(10), { interval: 5 })
    const old = tap.posts.filter((frame) => frame.kind === 'events').at(-1) as Record<string, unknown>
    const fakes = Array.from({ length: 2048 }, (_, index) => ({ source: `fake${index}`, seq: 1, topic: 'noise', data: index }))
    for (let start = 0; start < fakes.length; start += 512) raw.send(eventsBody(fakes.slice(start, start + 512)))
    raw.post({ ...old, from: 'raw' })
    raw.send(eventsBody([{ source: 'raw', seq: 1, topic: 'feed.x', data: 'marker' }]))
    await vi.waitFor(() => expect(got).toContain('marker'), { interval: 5 })
    expect(got.filter((value) => (value as number) >= 0 && value !== 'marker')).toHaveLength(10)
  })
})

describe('route records', () => {
  test('a record with version MAX_SAFE_INTEGER for a context behind a relay does not partition it', async () => {
    vi.useFakeTimers({ toFake: ['setInterval', 'clearInterval', 'Date'] })
    const name = uniqueName()
    const [aToR, rToA] = portPair()
    const [rToC, cToR] = portPair()
    const raw = peer(name, 'raw')
    const a = bus(name, [aToR, raw.transport])
    bus(name, [rToA, rToC])
    const c = bus(name, [cToR])
    await vi.waitFor(() => expect(ids(a)).toContain(c.id), { interval: 5 })
    raw.hello('raw', {}, [{ id: c.id, version: Number.MAX_SAFE_INTEGER, patterns: [], replies: [] }])
    await beat(20)
    expect(ids(a)).toContain(c.id)
    const got: unknown[] = []
    a.subscribe('far.x', (event) => void got.push(event.data))
    await vi.waitFor(() => expect(c.publish('far.x', 'still here').queued).toBe(1), { interval: 5 })
    await vi.waitFor(() => expect(got).toContain('still here'), { interval: 5 })
  })
})

describe('forged goodbyes', () => {
  test('an empty hello in the name of a live subscriber is refused: events to it keep flowing', async () => {
    const name = uniqueName()
    const channel = `${name}-bc`
    const publisher = bus(name, [broadcastChannel({ channel })])
    const subscriber = bus(name, [broadcastChannel({ channel })])
    subscriber.subscribe('live.x', () => {})
    await vi.waitFor(() => expect(reaches(publisher, 'live.x')).toBe(true), { interval: 5 })
    const attacker = new BroadcastChannel(channel)
    closers.push(() => attacker.close())
    attacker.postMessage({ crossbus: WIRE_VERSION, bus: name, from: subscriber.id, kind: 'hello', routes: [] })
    await vi.waitFor(() => expect(publisher.stats().rejected).toBe(1), { interval: 5 })
    expect(reaches(publisher, 'live.x')).toBe(true)
  })
})

describe('floods', () => {
  test('a frame with more events than the protocol allows is refused whole, at once', async () => {
    const name = uniqueName()
    const raw = peer(name, 'raw')
    const a = bus(name, [raw.transport])
    const got: unknown[] = []
    a.subscribe('big', (event) => void got.push(event.data), { capacity: 100_000 })
    const count = 1_000_000
    raw.send({
      kind: 'events',
      sources: ['raw'],
      topics: ['big'],
      src: new Uint32Array(count),
      seq: Float64Array.from({ length: count }, (_, index) => index + 1),
      topic: new Uint32Array(count),
      time: new Float64Array(count),
      data: new Array(count).fill(0),
    })
    await vi.waitFor(() => expect(a.stats().rejected).toBe(1), { interval: 5, timeout: 5000 })
    expect(got).toEqual([])
  })

  test('a thousand frames from strangers do not make the context ask a thousand times', async () => {
    const name = uniqueName()
    const raw = peer(name, 'raw')
    bus(name, [raw.transport])
    await vi.waitFor(() => expect(raw.of('hello')).toHaveLength(1), { interval: 5 })
    for (let index = 0; index < 1000; index++) raw.send(eventsBody([{ source: `s${index}`, seq: 1, topic: 'noise', data: index }]), `s${index}`)
    raw.send({ kind: 'credit', credit: 1 }, 'last')
    await new Promise((resolve) => setTimeout(resolve, 100))
    expect(raw.of('hello').length).toBeLessThanOrEqual(5)
  })

  test('a peer advertising 100,000 patterns does not slow publish: its record counts as wanting everything', async () => {
    const name = uniqueName()
    const raw = peer(name, 'raw')
    const a = bus(name, [raw.transport])
    raw.hello('raw', { patterns: Array.from({ length: 100_000 }, (_, index) => `p${index}.*`) })
    await vi.waitFor(() => expect(ids(a)).toEqual(['raw']), { interval: 5 })
    expect(reaches(a, 'anything.at.all')).toBe(true)
  })
})

describe('peers', () => {
  test('timeouts still apply to a flood of fake peers', async () => {
    vi.useFakeTimers({ toFake: ['setInterval', 'clearInterval', 'Date'] })
    const name = uniqueName()
    const raw = peer(name, 'raw')
    const a = bus(name, [raw.transport])
    for (let index = 0; index < 50; index++) raw.hello(`fake${index}`)
    await vi.waitFor(() => expect(ids(a).length).toBeGreaterThan(0), { interval: 5 })
    await beat(PEER_TIMEOUT_MS / 1000 + 3)
    expect(ids(a)).toEqual([])
  })
})
