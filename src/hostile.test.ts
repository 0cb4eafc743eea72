// Hostile input (issue 11): frames that tried to crash, forge or flood a
// context, each refused, counted and reported; and the bounds of every table
// a peer can grow. Frames travel through a MessageChannel (structured clone, as
// on any wire: sparse arrays keep their holes) unless a test needs objects no
// clone can carry (getters, proxies), which go through a direct link.
import fc from 'fast-check'
import { afterEach, describe, expect, test, vi } from 'vitest'
import { badFrames, calls, directLink, eventsBody, eventsIn, hostileValues, paths, rawPeer, reaches, replaced, tapped, validFrames } from '../test/hostile.js'
import { createBus } from './bus.js'
import { MAX_LINK_PATTERNS, MAX_LINK_RECORDS, MAX_NEIGHBORS } from './link.js'
import { MAX_PEERS } from './network.js'
import { MAX_RETAINED } from './retained.js'
import { INITIAL_CREDIT, PEER_TIMEOUT_MS, type Transport } from './seams.js'
import { broadcastChannel } from './transports/broadcast-channel.js'
import { messagePort } from './transports/message-port.js'
import type { Bus, BusEvent, Diagnostic } from './types.js'
import { decodeFrame, MAX_FRAME_EVENTS, WIRE_VERSION } from './wire.js'

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

  test('queue group hand-overs ($group.assign.<id>) that are malformed are refused and counted; a well-formed one is in its sender’s name only', async () => {
    const name = uniqueName()
    const raw = peer(name, 'raw')
    const diagnostics: Diagnostic[] = []
    const member = bus(name, [raw.transport], diagnostics)
    const seen: BusEvent[] = []
    member.subscribe('jobs.run', (event) => void seen.push(event), { queue: 'pool' })
    raw.hello('raw')
    await vi.waitFor(() => expect(member.peers()).toHaveLength(1), { interval: 5 })
    const to = `$group.assign.${member.id}`
    const bad: unknown[] = [
      'not a list',
      sparse(6),
      ['q pool jobs.run', 'jobs.run', 1, 0, null],
      ['r pool', 'jobs.run', 1, 0, null, 'a replier group'],
      ['q pool jobs.run', '$reply.x.1', 1, 0, null, 'a reserved topic'],
      ['q pool jobs.run', 'jobs..run', 1, 0, null, 'a malformed topic'],
      ['q pool jobs.run', 'jobs.run', -1, 0, null, 'a bad seq'],
      ['q pool jobs.run', 'jobs.run', 1, Number.NaN, null, 'a bad time'],
      ['q pool jobs.run', 'jobs.run', 1, 0, { 'x-bad': 1 }, 'a header not a string'],
      [{ toString: 0 }, 'jobs.run', 1, 0, null, 'a key no string'],
    ]
    raw.send(eventsBody(bad.map((data, index) => ({ source: 'raw', seq: index + 1, topic: to, data }))))
    await vi.waitFor(() => expect(member.stats().rejected).toBe(bad.length), { interval: 5 })
    // Well-formed: handed to the member, as an event of the sender's (whatever else the frame claims).
    raw.send(eventsBody([{ source: 'raw', seq: 100, topic: to, data: ['q pool jobs.run', 'jobs.run', 7, 0, { 'x-a': 'b' }, 'work'] }]))
    await vi.waitFor(() => expect(seen).toHaveLength(1), { interval: 5 })
    expect(seen[0]).toMatchObject({ id: 'raw:7', source: 'raw', topic: 'jobs.run', data: 'work', headers: { 'x-a': 'b' } })
    expect(diagnostics.some((diagnostic) => diagnostic.type === 'bad-frame' && /queue group hand-over/.test(diagnostic.message))).toBe(true)
    expect(member.stats().rejected).toBe(bad.length)
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

describe('duplicates', () => {
  test('an event that arrives twice, over two paths, is delivered once and the other copy counted', async () => {
    const name = uniqueName()
    const [aFirst, bFirst] = portPair()
    const [aSecond, bSecond] = portPair()
    const a = bus(name, [aFirst, aSecond])
    const b = bus(name, [bFirst, bSecond])
    const got: unknown[] = []
    b.subscribe('twice', (event) => void got.push(event.data))
    const duplicates = (): number => b.stats().transports.reduce((sum, link) => sum + link.duplicates, 0)
    const received = (): number => b.stats().transports.reduce((sum, link) => sum + link.received, 0)
    await vi.waitFor(() => expect(a.publish('twice', -1).queued).toBe(2), { interval: 5 })
    const before = duplicates()
    for (let n = 0; n < 100; n++) a.publish('twice', n)
    await vi.waitFor(() => expect(duplicates() - before).toBeGreaterThanOrEqual(100), { interval: 5 })
    expect(got.filter((value) => (value as number) >= 0)).toEqual([...Array(100).keys()])
    // Every event that arrived was either delivered or counted as a duplicate.
    await vi.waitFor(() => expect(received()).toBe(got.length + duplicates()), { interval: 5 })
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

describe('copies of a record over several paths', () => {
  test('in the demo’s cycles of links, records that change settle: relays agree on one copy and do not flood each other with hellos', async () => {
    const name = uniqueName()
    const channel = `${name}-bc`
    // Two tabs on a BroadcastChannel; a hub and a service-worker-like context linked to both; a worker per tab.
    const links: Transport[][] = [[], [], [], [], [], []]
    const join = (left: number, right: number): void => {
      const [one, other] = portPair()
      const [tapOne, tapOther] = [tapped(one), tapped(other)]
      taps.push(tapOne, tapOther)
      links[left]?.push(tapOne)
      links[right]?.push(tapOther)
    }
    const taps: ReturnType<typeof tapped>[] = []
    const [tab1, tab2, hub, sw, worker1, worker2] = [0, 1, 2, 3, 4, 5]
    for (const tab of [tab1, tab2]) {
      const shared = tapped(broadcastChannel({ channel }))
      taps.push(shared)
      links[tab]?.push(shared)
    }
    join(tab1, hub)
    join(tab2, hub)
    join(tab1, sw)
    join(tab2, sw)
    join(tab1, worker1)
    join(tab2, worker2)
    const contexts = links.map((transports) => bus(name, transports))
    await vi.waitFor(() => expect(ids(contexts[tab1] as Bus)).toHaveLength(5), { interval: 5 })
    // Every context subscribes once it runs (a worker's record changes after its first hello).
    for (const [index, context] of contexts.entries()) context.subscribe(`late.${index}`, () => {})
    for (let index = 0; index < contexts.length; index++) {
      await vi.waitFor(() => expect(reaches(contexts[(index + 1) % contexts.length] as Bus, `late.${index}`)).toBe(true), { interval: 5 })
    }
    const hellos = (): number => taps.reduce((sum, tap) => sum + tap.posts.filter((frame) => frame.kind === 'hello').length, 0)
    const before = hellos()
    await new Promise((resolve) => setTimeout(resolve, 500))
    // Heartbeats come once a second on each of the 14 link ends: a few dozen hellos at most, not a storm.
    expect(hellos() - before).toBeLessThan(60)
  })

  test('a version far beyond the highest believed for a context is not believed; a hello whose own record has one is refused whole', async () => {
    const name = uniqueName()
    const raw = peer(name, 'raw')
    const a = bus(name, [raw.transport])
    raw.hello('raw', { patterns: ['x'], version: 5 })
    await vi.waitFor(() => expect(reaches(a, 'x')).toBe(true), { interval: 5 })
    raw.hello('raw', { patterns: [], version: Number.MAX_SAFE_INTEGER })
    await vi.waitFor(() => expect(a.stats().rejected).toBe(1), { interval: 5 })
    expect(reaches(a, 'x')).toBe(true)
    raw.hello('raw', { patterns: [], version: 6 })
    await vi.waitFor(() => expect(reaches(a, 'x')).toBe(false), { interval: 5 })
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

describe('properties of a live link', () => {
  /**
   * A context P with a same-origin peer T (a real bus) and a raw peer posting
   * generated frames: valid ones with one part made hostile, with T's id as
   * sender or source, reserved topics and extreme numbers among the choices.
   */
  async function rig(
    crossOrigin: boolean,
  ): Promise<{ name: string; p: Bus; t: Bus; raw: ReturnType<typeof rawPeer>; diagnostics: Diagnostic[]; seen: BusEvent[] }> {
    const name = uniqueName()
    const [left, right] = portPair()
    const raw = peer(name, 'raw', { crossOrigin })
    const diagnostics: Diagnostic[] = []
    const p = bus(name, [left, raw.transport], diagnostics)
    const t = bus(name, [right])
    const seen: BusEvent[] = []
    p.subscribe('>', (event) => void seen.push(event), { capacity: 100_000 })
    p.subscribe('$reply.>', (event) => void seen.push(event), { capacity: 100_000 })
    await vi.waitFor(() => expect(ids(p)).toEqual([t.id]), { interval: 5 })
    return { name, p, t, raw, diagnostics, seen }
  }

  const frames = (name: string, tId: string): fc.Arbitrary<Record<string, unknown>[]> => {
    const ids = ['raw', 'raw2', tId]
    const topics = ['a', 'a.b', '$reply.x.1', '$log.appended', `$reply.${tId}.1`, '$other.x']
    const mutated = validFrames({ bus: name, ids, topics }).chain((frame) =>
      fc.oneof(
        fc.constant(frame),
        fc.tuple(fc.constantFrom(...paths(frame)), hostileValues({ exotic: false })).map(([path, make]) => replaced(frame, path, make())),
      ),
    )
    return fc.array(mutated, { minLength: 1, maxLength: 30 })
  }

  /** After the storm, a marker from the raw peer itself must still arrive, and every count must add up. */
  async function settle(rigged: Awaited<ReturnType<typeof rig>>, marker: number): Promise<void> {
    const { p, raw, diagnostics, seen } = rigged
    raw.hello('raw', { patterns: [] })
    raw.send(eventsBody([{ source: 'raw', seq: 1e12 + marker, topic: 'marker', data: marker }]))
    await vi.waitFor(() => expect(seen.some((event) => event.data === marker && event.topic === 'marker')).toBe(true), { interval: 5 })
    expect(badFrames(diagnostics)).toBe(p.stats().rejected)
    for (const event of seen) {
      expect(typeof event.topic).toBe('string')
      expect(typeof event.source).toBe('string')
      expect(event.topic.startsWith('$')).toBe(false)
    }
  }

  test('same-origin: whatever arrives is delivered well-formed or refused and counted; the link keeps working', async () => {
    const rigged = await rig(false)
    let marker = 0
    await fc.assert(
      fc.asyncProperty(frames(rigged.name, rigged.t.id), async (list) => {
        for (const frame of list) {
          try {
            structuredClone(frame)
          } catch {
            continue
          }
          rigged.raw.post(frame)
        }
        await settle(rigged, ++marker)
      }),
      { numRuns: 25 },
    )
  })

  test('cross-origin: besides, nothing arrives in the name of a same-origin context', async () => {
    const rigged = await rig(true)
    let marker = 0
    await fc.assert(
      fc.asyncProperty(frames(rigged.name, rigged.t.id), async (list) => {
        for (const frame of list) {
          try {
            structuredClone(frame)
          } catch {
            continue
          }
          rigged.raw.post(frame)
        }
        await settle(rigged, ++marker)
        expect(rigged.seen.filter((event) => event.source === rigged.t.id)).toEqual([])
        expect(
          ids(rigged.p)
            .filter((id) => id !== rigged.t.id && id !== 'raw' && id !== 'raw2')
            .every((id) => !id.startsWith(rigged.t.id)),
        ).toBe(true)
      }),
      { numRuns: 25 },
    )
  })

  test('in-process endpoint: getters, proxies and broken conversions reach the link as they are, run nothing of the frame and throw nothing', async () => {
    const name = uniqueName()
    const direct = directLink()
    const diagnostics: Diagnostic[] = []
    const p = bus(name, [direct.transport], diagnostics)
    const seen: BusEvent[] = []
    p.subscribe('>', (event) => void seen.push(event), { capacity: 100_000 })
    const frame = validFrames({ bus: name, ids: ['x', 'y'], topics: ['a', 'a.b'] })
    await fc.assert(
      fc.asyncProperty(
        frame.chain((valid) => fc.tuple(fc.constant(valid), fc.constantFrom(...paths(valid)), hostileValues())),
        async ([valid, path, make]) => {
          calls.length = 0
          const before = p.stats().rejected
          // Nothing thrown reaches the endpoint (in Node, that would end the process).
          expect(() => direct.deliver(replaced(valid, path, make()))).not.toThrow()
          // The payloads are the app's: each item of `data` is handed over as it is, read once to build its
          // event (an accessor there runs then; no structured clone leaves one). Nothing else is run.
          if (path[0] !== 'data') expect(calls).toEqual([])
          await Promise.resolve()
          expect(badFrames(diagnostics)).toBe(p.stats().rejected)
          expect(p.stats().rejected).toBeGreaterThanOrEqual(before)
        },
      ),
      { numRuns: 1000 },
    )
  })
})

describe('bounds of what a peer can make a context hold', () => {
  /** `count` records of made-up contexts, prefixed. */
  const records = (prefix: string, count: number, patterns: string[] = []): Record<string, unknown>[] =>
    Array.from({ length: count }, (_, index) => ({ id: `${prefix}${index}`, version: 1, patterns, replies: [] }))

  test(`a link holds at most ${MAX_NEIGHBORS} peers; a hello from one more is refused and counted`, async () => {
    const name = uniqueName()
    const raw = peer(name, 'raw')
    const diagnostics: Diagnostic[] = []
    const a = bus(name, [raw.transport], diagnostics)
    for (let index = 0; index < MAX_NEIGHBORS + 20; index++) raw.hello(`n${index}`)
    await vi.waitFor(() => expect(a.stats().rejected).toBe(20), { interval: 5 })
    expect(a.stats().transports[0]?.peers).toBe(MAX_NEIGHBORS)
    expect(diagnostics.filter((diagnostic) => diagnostic.type === 'bad-frame').at(-1)?.message).toContain(`${MAX_NEIGHBORS} peers already`)
  })

  test(`a link holds at most ${MAX_LINK_RECORDS} records over all its peers; the rest of a hello is refused`, async () => {
    const name = uniqueName()
    const raw = peer(name, 'raw')
    const a = bus(name, [raw.transport])
    // Five hellos of 200 records fit; the sixth fits in part; the seventh's own record does not: refused whole.
    for (let index = 0; index < 7; index++) raw.hello(`n${index}`, {}, records(`r${index}-`, 199))
    await vi.waitFor(() => expect(a.stats().rejected).toBe(6 * 200 - MAX_LINK_RECORDS + 1), { interval: 5 })
    expect(a.peers()).toHaveLength(MAX_LINK_RECORDS)
    expect(a.stats().transports[0]?.peers).toBe(6)
  })

  test(`at most ${MAX_PEERS} contexts are known at once; records of more are refused`, async () => {
    const name = uniqueName()
    const first = peer(name, 'first')
    const second = peer(name, 'second')
    const a = bus(name, [first.transport, second.transport])
    // 1,000 contexts on one link; 200 more offered on another, of which 24 fit; then one more hello, refused whole.
    for (let index = 0; index < 5; index++) first.hello(`n${index}`, {}, records(`r${index}-`, 199))
    await vi.waitFor(() => expect(a.peers()).toHaveLength(1000), { interval: 5 })
    second.hello('m0', {}, records('s0-', 199))
    second.hello('m1', {}, records('s1-', 199))
    await vi.waitFor(() => expect(a.stats().rejected).toBe(200 - (MAX_PEERS - 1000) + 1), { interval: 5 })
    expect(a.peers()).toHaveLength(MAX_PEERS)
  })

  test(`patterns past ${MAX_LINK_PATTERNS} on a link make the record that crosses the line want everything`, async () => {
    const name = uniqueName()
    const raw = peer(name, 'raw')
    const a = bus(name, [raw.transport])
    const full = Array.from({ length: 256 }, (_, index) => `n${index}.*`)
    raw.hello('n0', {}, records('r-', MAX_LINK_PATTERNS / full.length, full))
    await vi.waitFor(() => expect(a.peers()).toHaveLength(MAX_LINK_PATTERNS / full.length + 1), { interval: 5 })
    expect(reaches(a, 'z.z')).toBe(false)
    raw.hello('last', {}, records('last-', 1, full))
    await vi.waitFor(() => expect(reaches(a, 'z.z')).toBe(true), { interval: 5 })
  })

  test(`at most ${MAX_RETAINED} topics retained by peers are kept; the least recently retained go first, counted and reported`, async () => {
    const name = uniqueName()
    const raw = peer(name, 'raw')
    const diagnostics: Diagnostic[] = []
    const a = bus(name, [raw.transport], diagnostics)
    const total = MAX_RETAINED + 904
    for (let start = 0; start < total; start += MAX_FRAME_EVENTS) {
      const batch = Array.from({ length: Math.min(MAX_FRAME_EVENTS, total - start) }, (_, index) => ({
        source: 'raw',
        seq: start + index + 1,
        topic: `state.t${start + index}`,
        data: start + index,
      }))
      raw.send({ ...eventsBody(batch), retained: batch.map((_, index) => index) })
    }
    await vi.waitFor(() => expect(a.stats().received).toBe(total), { interval: 5 })
    const got: unknown[] = []
    a.subscribe('state.*', (event) => void got.push(event.data), { last: true, capacity: 2 * MAX_RETAINED })
    await vi.waitFor(() => expect(got).toHaveLength(MAX_RETAINED), { interval: 5 })
    expect(Math.min(...(got as number[]))).toBe(904)
    expect(a.stats().dropped).toBe(904)
    const reported = diagnostics.filter((diagnostic) => diagnostic.type === 'drop' && diagnostic.message.includes('retained'))
    expect(reported.reduce((sum, diagnostic) => sum + (diagnostic.count ?? 1), 0)).toBe(904)
  })

  test('a waiting last: true subscription asks again a few times for a flood of joining peers, not once per join', async () => {
    const name = uniqueName()
    const raw = peer(name, 'raw')
    const a = bus(name, [raw.transport])
    raw.hello('first')
    await vi.waitFor(() => expect(ids(a)).toEqual(['first']), { interval: 5 })
    a.subscribe('waiting.*', () => {}, { last: true })
    await vi.waitFor(() => expect(raw.of('retained')).toHaveLength(1), { interval: 5 })
    for (let index = 0; index < 200; index++) raw.hello(`join${index}`)
    await vi.waitFor(() => expect(a.peers()).toHaveLength(201), { interval: 5 })
    await new Promise((resolve) => setTimeout(resolve, 400))
    expect(raw.of('retained').length).toBeLessThanOrEqual(3)
    expect(raw.of('retained').length).toBeGreaterThanOrEqual(2)
  })

  test('a hundred hellos asking for an answer get a few answers, not a hundred', async () => {
    const name = uniqueName()
    const raw = peer(name, 'raw')
    bus(name, [raw.transport])
    await vi.waitFor(() => expect(raw.of('hello')).toHaveLength(1), { interval: 5 })
    for (let index = 0; index < 100; index++)
      raw.send({ kind: 'hello', ask: true, routes: [{ id: `a${index}`, version: 1, patterns: [], replies: [] }] }, `a${index}`)
    await new Promise((resolve) => setTimeout(resolve, 300))
    expect(raw.of('hello').length).toBeLessThanOrEqual(4)
  })

  test('a bogus credit grant cannot switch flow control off', async () => {
    const name = uniqueName()
    const raw = peer(name, 'raw', { capacity: 100_000 })
    const a = bus(name, [raw.transport])
    raw.hello('raw', { patterns: ['x'] })
    await vi.waitFor(() => expect(ids(a)).toEqual(['raw']), { interval: 5 })
    raw.send({ kind: 'credit', credit: Number.MAX_SAFE_INTEGER })
    await vi.waitFor(() => expect(a.stats().transports[0]?.received).toBe(0), { interval: 5 })
    await new Promise((resolve) => setTimeout(resolve, 20))
    for (let index = 0; index < 3 * INITIAL_CREDIT; index++) a.publish('x', index)
    await vi.waitFor(() => expect(eventsIn(raw.frames)).toHaveLength(INITIAL_CREDIT), { interval: 5 })
    expect(a.stats().transports[0]).toMatchObject({ sent: INITIAL_CREDIT, queued: 2 * INITIAL_CREDIT })
  })

  test(`a link's batch cannot exceed the wire's ${MAX_FRAME_EVENTS} events a frame; answers to a retained-state request come in batches`, async () => {
    expect(() => createBus({ transports: [messagePort(new MessageChannel().port1, { batch: MAX_FRAME_EVENTS + 1 })] })).toThrow(TypeError)
    const name = uniqueName()
    const raw = peer(name, 'raw')
    const a = bus(name, [messagePort(new MessageChannel().port1), raw.transport])
    for (let index = 0; index < 1200; index++) a.publish(`kept.t${index}`, index, { retain: true })
    raw.hello('raw')
    await vi.waitFor(() => expect(ids(a)).toEqual(['raw']), { interval: 5 })
    raw.send({ kind: 'retained', patterns: ['kept.*'], ask: 1 })
    await vi.waitFor(() => expect(eventsIn(raw.frames.filter((frame) => frame.answers === 1))).toHaveLength(1200), { interval: 5 })
    expect(raw.frames.filter((frame) => frame.answers === 1).map((frame) => (frame.data as unknown[]).length)).toEqual([512, 512, 176])
  })
})
