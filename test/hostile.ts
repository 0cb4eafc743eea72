/**
 * Test support for hostile input: raw peers that post whatever a test builds
 * onto a real link (through a MessageChannel, so frames are structured-cloned
 * as on any wire, holes and all), a direct endpoint that hands objects to a
 * link without cloning (getters, proxies), and a tap on a transport.
 */
import type { Endpoint, Transport } from '../src/seams.js'
import { messagePort } from '../src/transports/message-port.js'
import type { Bus, Diagnostic } from '../src/types.js'
import { WIRE_VERSION } from '../src/wire.js'

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
