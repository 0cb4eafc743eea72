/**
 * Test support for hostile input: raw peers that post whatever a test builds
 * onto a real link (through a MessageChannel, so frames are structured-cloned
 * as on any wire, holes and all), a direct endpoint that hands objects to a
 * link without cloning (getters, proxies), and a tap on a transport.
 */
import fc from 'fast-check'
import type { Endpoint, Transport } from '../src/seams.js'
import { messagePort } from '../src/transports/message-port.js'
import type { Bus, Diagnostic } from '../src/types.js'
import { encodeEvents, MAX_FRAME_EVENTS, MAX_ID_LENGTH, WIRE_VERSION } from '../src/wire.js'

export type RawFrame = Record<string, unknown>

/** Marks a transport's endpoints as reaching another origin (what messagePort(window, { origin }) does for a foreign origin). */
export function crossOrigin(transport: Transport): Transport {
  return {
    ...transport,
    open(context) {
      const endpoint = transport.open(context) as Endpoint
      return { ...endpoint, crossOrigin: true } as Endpoint
    },
  }
}

/** The other side of a MessagePort link, driven by hand: it posts frames as `from` and keeps what it receives. */
export interface RawPeer {
  readonly transport: Transport
  readonly frames: RawFrame[]
  /** Posts a frame: the envelope fields (`crossbus`, `bus`, `from`) are added unless the body sets them. */
  send(body: RawFrame, from?: string): void
  /** Posts anything at all. */
  post(message: unknown): void
  /** Says hello as `id` with one record of its own (and `others`, relayed). */
  hello(id?: string, record?: { patterns?: string[]; replies?: string[]; version?: number }, others?: RawFrame[]): void
  /** Frames of one kind received so far. */
  of(kind: string): RawFrame[]
  close(): void
}

export function rawPeer(name: string, id = 'raw', options: { crossOrigin?: boolean; capacity?: number } = {}): RawPeer {
  const { port1, port2 } = new MessageChannel()
  const frames: RawFrame[] = []
  port2.onmessage = (event) => frames.push(event.data as RawFrame)
  const base = messagePort(port1, options.capacity === undefined ? {} : { capacity: options.capacity })
  const post = (message: unknown): void => port2.postMessage(message)
  const send = (body: RawFrame, from = id): void => post({ crossbus: WIRE_VERSION, bus: name, from, ...body })
  let version = 0
  return {
    transport: options.crossOrigin === true ? crossOrigin(base) : base,
    frames,
    send,
    post,
    hello(helloId = id, record = {}, others = []) {
      const own = { id: helloId, version: record.version ?? ++version, patterns: record.patterns ?? [], replies: record.replies ?? [] }
      send({ kind: 'hello', routes: [own, ...others] }, helloId)
    },
    of: (kind) => frames.filter((frame) => frame.kind === kind),
    close: () => port2.close(),
  }
}

/** An events frame body (no envelope) from columns given per event. */
export function eventsBody(
  events: readonly { source: string; seq: number; topic: string; data: unknown; headers?: Record<string, string> }[],
  extra: RawFrame = {},
): RawFrame {
  const sources: string[] = []
  const topics: string[] = []
  const at = (table: string[], value: string): number => {
    const index = table.indexOf(value)
    return index >= 0 ? index : table.push(value) - 1
  }
  const src = events.map((event) => at(sources, event.source))
  const topic = events.map((event) => at(topics, event.topic))
  const body: RawFrame = {
    kind: 'events',
    sources,
    topics,
    src,
    seq: events.map((event) => event.seq),
    topic,
    time: events.map(() => 0),
    data: events.map((event) => event.data),
    ...extra,
  }
  if (events.some((event) => event.headers !== undefined)) body.headers = events.map((event) => event.headers ?? null)
  return body
}

/** Every event (topic, source, data) in the events frames of a list, in order. */
export function eventsIn(frames: readonly RawFrame[]): { topic: string; source: string; seq: number; data: unknown; headers: Record<string, string> | null }[] {
  const out: { topic: string; source: string; seq: number; data: unknown; headers: Record<string, string> | null }[] = []
  for (const frame of frames) {
    if (frame.kind !== 'events') continue
    const data = frame.data as unknown[]
    for (let index = 0; index < data.length; index++) {
      out.push({
        topic: (frame.topics as string[])[(frame.topic as ArrayLike<number>)[index] as number] as string,
        source: (frame.sources as string[])[(frame.src as ArrayLike<number>)[index] as number] as string,
        seq: (frame.seq as ArrayLike<number>)[index] as number,
        data: data[index],
        headers: ((frame.headers as (Record<string, string> | null)[] | undefined)?.[index] ?? null) as Record<string, string> | null,
      })
    }
  }
  return out
}

/**
 * A link whose messages a test hands to the bus directly, without a structured
 * clone: objects with getters, proxies and throwing toString reach the decoder as they are.
 */
export function directLink(): { transport: Transport; deliver(message: unknown): void; posted: unknown[] } {
  let receive: ((message: unknown) => void) | undefined
  const posted: unknown[] = []
  return {
    posted,
    deliver: (message) => receive?.(message),
    transport: {
      name: 'direct',
      open: () => ({
        kind: 'point',
        post: (message) => void posted.push(message),
        listen(onMessage) {
          receive = onMessage
        },
        close() {
          receive = undefined
        },
      }),
    },
  }
}

/** Wraps a transport to record every message its endpoint posts. */
export function tapped(transport: Transport): Transport & { posts: RawFrame[] } {
  const posts: RawFrame[] = []
  return {
    ...transport,
    posts,
    open(context) {
      const endpoint = transport.open(context) as Endpoint
      return {
        ...endpoint,
        kind: endpoint.kind,
        post(message) {
          posts.push(message as RawFrame)
          endpoint.post(message)
        },
        listen: (receive, reject) => endpoint.listen(receive, reject),
        close: () => endpoint.close(),
      }
    },
  }
}

/** Sum of what bad-frame diagnostics stand for (count, or 1). */
export function badFrames(list: readonly Diagnostic[]): number {
  return list.filter((diagnostic) => diagnostic.type === 'bad-frame').reduce((sum, diagnostic) => sum + (diagnostic.count ?? 1), 0)
}

/** Would a publish on `topic` be handed to some link now? */
export function reaches(bus: Bus, topic: string): boolean {
  const before = bus.stats().transports.reduce((sum, link) => sum + link.sent + link.queued + link.dropped, 0)
  bus.publish(topic, null, { headers: { 'x-probe': '1' } })
  const after = bus.stats().transports.reduce((sum, link) => sum + link.sent + link.queued + link.dropped, 0)
  return after > before
}

/** Code the decoder must never run: every spy records here that it was called. */
export const calls: string[] = []
const spy =
  (what: string, value: unknown = 'x') =>
  (): unknown => {
    calls.push(what)
    return value
  }

/**
 * Values a sender can build, each made by a thunk when a test runs it (so
 * fast-check itself never touches a revoked proxy). Those marked exotic cannot
 * cross a structured clone: only an in-process endpoint can deliver them.
 */
export function hostileValues(options: { exotic?: boolean } = {}): fc.Arbitrary<() => unknown> {
  const sparse = (length: number, values: Record<number, unknown> = {}): unknown[] => {
    const array = new Array<unknown>(length)
    for (const [index, value] of Object.entries(values)) array[Number(index)] = value
    return array
  }
  const revoked = (): unknown => {
    const made = Proxy.revocable({}, {})
    made.revoke()
    return made.proxy
  }
  const plain = fc.constantFrom<unknown>(
    { toString: 0, valueOf: 0 },
    Object.create(null),
    { toString: spy('toString'), valueOf: spy('valueOf', 1) },
    { [Symbol.toPrimitive]: spy('toPrimitive') },
    sparse(1),
    sparse(3, { 1: 'x' }),
    sparse(2, { 0: { id: 'a', version: 1, patterns: [], replies: [] } }),
    [undefined],
    [null],
    Number.NaN,
    Number.POSITIVE_INFINITY,
    Number.NEGATIVE_INFINITY,
    -0,
    -1,
    1.5,
    2 ** 32,
    Number.MAX_SAFE_INTEGER,
    Number.MAX_SAFE_INTEGER + 2,
    '',
    '$reply.someone.1',
    '$log.appended',
    'x'.repeat(MAX_ID_LENGTH + 1),
    new Array(MAX_FRAME_EVENTS + 1).fill(0),
    new Float64Array([Number.NaN]),
    new Uint32Array(2),
    new Int32Array([-1]),
  )
  const exotic = fc.constantFrom<() => unknown>(
    () => Object.defineProperty({}, 'id', { get: spy('getter'), enumerable: true }),
    () => Object.defineProperty([], 0, { get: spy('index getter'), enumerable: true }),
    () => new Proxy({}, { get: spy('proxy get'), getOwnPropertyDescriptor: () => ({ value: 'x', configurable: true, enumerable: true }) }),
    () =>
      new Proxy([], {
        get: () => {
          throw new Error('proxy trap')
        },
      }),
    revoked,
  )
  const anything = fc.anything({ withBigInt: true, withTypedArray: true, withSparseArray: true, withNullPrototype: true })
  const cloneable = fc.oneof(plain, anything).map((value) => () => value)
  return options.exotic === false ? cloneable : fc.oneof(cloneable, exotic)
}

type Json = Record<string, unknown>

/**
 * A valid frame of each kind, as a peer posts it, on bus `bus`; senders and
 * sources drawn from `ids` (default: any short id), topics from `topics`
 * (default: any short valid topic).
 */
export function validFrames(options: { bus: string; ids?: readonly string[]; topics?: readonly string[] }): fc.Arbitrary<Json> {
  const id = options.ids === undefined ? fc.stringMatching(/^[a-z0-9]{1,8}$/) : fc.constantFrom(...options.ids)
  const topic = options.topics === undefined ? fc.stringMatching(/^[a-z]{1,5}(\.[a-z]{1,5}){0,2}$/) : fc.constantFrom(...options.topics)
  const record = fc.record({ id, version: fc.nat(), patterns: fc.array(topic, { maxLength: 3 }), replies: fc.array(topic, { maxLength: 2 }) })
  const base = { crossbus: fc.constant(WIRE_VERSION), bus: fc.constant(options.bus), from: id }
  const events = fc
    .array(
      fc.record({ source: id, seq: fc.nat(), topic, time: fc.nat(), data: fc.jsonValue(), headers: fc.dictionary(fc.string(), fc.string(), { maxKeys: 2 }) }),
      {
        minLength: 1,
        maxLength: 40,
      },
    )
    .map((list) => encodeEvents(list, (index) => index % 3 === 0) as unknown as Json)
  return fc.oneof(
    fc.record({ ...base, kind: fc.constant('hello'), routes: fc.array(record, { minLength: 1, maxLength: 3 }), ask: fc.boolean() }),
    fc.record({ ...base, kind: fc.constant('bye') }),
    fc.tuple(fc.record(base), events).map(([envelope, body]) => ({ ...envelope, ...body })),
    fc.record({ ...base, kind: fc.constant('credit'), credit: fc.nat() }),
    fc.record({ ...base, kind: fc.constant('retained'), patterns: fc.array(topic, { maxLength: 3 }), ask: fc.nat() }),
  )
}

/** Every path to a value in a frame (fields, items of arrays and records), for replacing one. */
export function paths(value: unknown, prefix: (string | number)[] = []): (string | number)[][] {
  const found: (string | number)[][] = prefix.length === 0 ? [] : [prefix]
  if (ArrayBuffer.isView(value) || typeof value !== 'object' || value === null) return found
  const keys = Array.isArray(value) ? value.map((_, index) => index) : Object.keys(value)
  for (const key of keys) found.push(...paths((value as Record<string | number, unknown>)[key], [...prefix, key]))
  return found
}

/** A copy of `frame` with the value at `path` replaced. */
export function replaced(frame: Json, path: (string | number)[], value: unknown): Json {
  const copy = structuredClone(frame)
  let at = copy as Record<string | number, unknown>
  for (const key of path.slice(0, -1)) at = at[key] as Record<string | number, unknown>
  at[path[path.length - 1] as string | number] = value
  return copy
}
