/**
 * The crossbus wire format: a small versioned envelope that every link speaks
 * (BroadcastChannel, MessagePort and friends), and its decoder. Anything that
 * does not decode is refused, counted and reported; it never throws.
 */

export const WIRE_VERSION = 1

/** What one context wants and answers, flooded through the links. */
export interface RouteRecord {
  /** Context (bus) id. */
  readonly id: string
  /** Bumped on every change and heartbeat; the highest wins. */
  readonly version: number
  /** Subscription patterns of that context (events it wants). */
  readonly patterns: readonly string[]
  /** Reply patterns (requests it answers). */
  readonly replies: readonly string[]
}

interface FrameBase {
  /** Wire version; also marks the message as ours. */
  readonly crossbus: typeof WIRE_VERSION
  /** Bus name: contexts with other names share the channel but not events. */
  readonly bus: string
  /** Sender's context id. */
  readonly from: string
  /** Addressee on a shared channel; others ignore the frame. */
  readonly to?: string
}

/**
 * hello: I am here (or still here), this is everything reachable through me;
 * `ask` asks receivers to answer with their own hello.
 */
export interface HelloFrame extends FrameBase {
  readonly kind: 'hello'
  readonly routes: readonly RouteRecord[]
  readonly ask?: boolean
}
/** bye: I am leaving (close, pagehide). */
export interface ByeFrame extends FrameBase {
  readonly kind: 'bye'
}
/**
 * events: a batch, in order, as columns: one entry per event in each of
 * `src`, `seq`, `topic`, `time` and `data`. Sources and topics are tables, so
 * a batch of one publisher's events on a few topics clones almost as cheaply
 * as the bare data (an object per event costs three times as much).
 */
export interface EventsFrame extends FrameBase {
  readonly kind: 'events'
  readonly sources: readonly string[]
  readonly topics: readonly string[]
  /** Index into `sources`. Typed arrays for large batches (they clone as one copy), plain arrays for small ones. */
  readonly src: Uint32Array | readonly number[]
  readonly seq: Float64Array | readonly number[]
  /** Index into `topics`. */
  readonly topic: Uint32Array | readonly number[]
  readonly time: Float64Array | readonly number[]
  readonly data: readonly unknown[]
  /** Headers of each event (null for none); absent when no event has any. */
  readonly headers?: readonly (Readonly<Record<string, string>> | null)[]
  /** Indexes of events their publisher retained. */
  readonly retained?: readonly number[]
  /** Indexes of events published durable (durable subscriptions read them from the store instead). */
  readonly durable?: readonly number[]
  /** Answer to a retained-state request of that number. */
  readonly answers?: number
}
/** credit: you may send me this many more events (MessagePort flow control). */
export interface CreditFrame extends FrameBase {
  readonly kind: 'credit'
  readonly credit: number
}
/** retained: send me your retained events matching these patterns, answering with this number. */
export interface RetainedFrame extends FrameBase {
  readonly kind: 'retained'
  readonly patterns: readonly string[]
  readonly ask: number
}

export type Frame = HelloFrame | ByeFrame | EventsFrame | CreditFrame | RetainedFrame

const isString = (value: unknown): value is string => typeof value === 'string'
const isCount = (value: unknown): value is number => typeof value === 'number' && Number.isSafeInteger(value) && value >= 0
const isObject = (value: unknown): value is Record<string, unknown> => typeof value === 'object' && value !== null

function isStringArray(value: unknown): value is string[] {
  return Array.isArray(value) && value.every(isString)
}

function isHeaders(value: unknown): value is Record<string, string> {
  return isObject(value) && Object.values(value).every(isString)
}

function isRecord(value: unknown): value is RouteRecord {
  return isObject(value) && isString(value.id) && isCount(value.version) && isStringArray(value.patterns) && isStringArray(value.replies)
}

function isNumberColumn(value: unknown, length: number, typed: typeof Uint32Array | typeof Float64Array): value is ArrayLike<number> {
  if (value instanceof typed) return value.length === length
  return Array.isArray(value) && value.length === length && value.every((item) => typeof item === 'number')
}

function isIndexColumn(value: unknown, length: number, bound: number): boolean {
  if (!isNumberColumn(value, length, Uint32Array)) return false
  for (let index = 0; index < length; index++) {
    const item = value[index] as number
    if (!Number.isInteger(item) || item < 0 || item >= bound) return false
  }
  return true
}

function isEvents(message: Record<string, unknown>): boolean {
  const { sources, topics, src, seq, topic, time, data, headers, retained, durable } = message
  if (!Array.isArray(data) || !isStringArray(sources) || !isStringArray(topics)) return false
  const count = data.length
  if (!isIndexColumn(src, count, sources.length) || !isIndexColumn(topic, count, topics.length)) return false
  if (!isNumberColumn(seq, count, Float64Array)) return false
  for (let index = 0; index < count; index++) if (!isCount(seq[index])) return false
  if (!isNumberColumn(time, count, Float64Array)) return false
  if (headers !== undefined && !(Array.isArray(headers) && headers.length === count && headers.every((entry) => entry === null || isHeaders(entry))))
    return false
  return isIndexList(retained, count) && isIndexList(durable, count)
}

/** An optional list of event indexes. */
function isIndexList(value: unknown, count: number): boolean {
  return value === undefined || (Array.isArray(value) && value.every((index) => isCount(index) && index < count))
}

/**
 * Checks a message from a channel. Returns the frame, or a short reason why it
 * is not one of ours (foreign code on the channel, wrong version, malformed).
 */
export function decodeFrame(message: unknown): Frame | string {
  if (!isObject(message)) return 'not an object'
  if (message.crossbus !== WIRE_VERSION) {
    return message.crossbus === undefined ? 'not a crossbus frame' : `unsupported wire version ${String(message.crossbus)}`
  }
  if (!isString(message.bus) || !isString(message.from)) return 'missing bus or sender'
  if (message.to !== undefined && !isString(message.to)) return 'malformed addressee'
  switch (message.kind) {
    case 'hello':
      if (!Array.isArray(message.routes) || !message.routes.every(isRecord)) return 'malformed routes'
      if (message.ask !== undefined && typeof message.ask !== 'boolean') return 'malformed hello'
      return message as unknown as HelloFrame
    case 'bye':
      return message as unknown as ByeFrame
    case 'events':
      if (!isEvents(message)) return 'malformed events'
      if (message.answers !== undefined && !isCount(message.answers)) return 'malformed answer number'
      return message as unknown as EventsFrame
    case 'credit':
      return isCount(message.credit) ? (message as unknown as CreditFrame) : 'malformed credit'
    case 'retained':
      return isStringArray(message.patterns) && isCount(message.ask) ? (message as unknown as RetainedFrame) : 'malformed retained request'
    default:
      return `unknown frame kind ${JSON.stringify(String(message.kind)).slice(0, 40)}`
  }
}

/** Batches at least this long carry their number columns in typed arrays. */
const TYPED_COLUMNS_FROM = 32

/**
 * Encodes events as the columns of an events frame (without the envelope
 * fields), with the indexes of the retained and of the durable ones.
 */
export function encodeEvents(
  events: readonly {
    readonly source: string
    readonly seq: number
    readonly topic: string
    readonly time: number
    readonly data: unknown
    readonly headers: Readonly<Record<string, string>>
  }[],
  isRetained: (index: number) => boolean,
  isDurable: (index: number) => boolean = () => false,
): Omit<EventsFrame, 'crossbus' | 'bus' | 'from' | 'to' | 'answers'> {
  const count = events.length
  const sources: string[] = []
  const topics: string[] = []
  const sourceIndex = new Map<string, number>()
  const topicIndex = new Map<string, number>()
  // A typed array clones as one copy but costs an off-heap allocation: worth it for batches, not for one event.
  const typed = count >= TYPED_COLUMNS_FROM
  const src = typed ? new Uint32Array(count) : new Array<number>(count)
  const seq = typed ? new Float64Array(count) : new Array<number>(count)
  const topic = typed ? new Uint32Array(count) : new Array<number>(count)
  const time = typed ? new Float64Array(count) : new Array<number>(count)
  const data = new Array<unknown>(count)
  let headers: (Readonly<Record<string, string>> | null)[] | undefined
  let retained: number[] | undefined
  let durable: number[] | undefined
  for (let index = 0; index < count; index++) {
    const event = events[index] as (typeof events)[number]
    let source = sourceIndex.get(event.source)
    if (source === undefined) sourceIndex.set(event.source, (source = sources.push(event.source) - 1))
    let topicAt = topicIndex.get(event.topic)
    if (topicAt === undefined) topicIndex.set(event.topic, (topicAt = topics.push(event.topic) - 1))
    src[index] = source
    seq[index] = event.seq
    topic[index] = topicAt
    time[index] = event.time
    data[index] = event.data
    for (const _key in event.headers) {
      headers ??= new Array<Readonly<Record<string, string>> | null>(count).fill(null)
      headers[index] = event.headers
      break
    }
    if (isRetained(index)) (retained ??= []).push(index)
    if (isDurable(index)) (durable ??= []).push(index)
  }
  return {
    kind: 'events',
    sources,
    topics,
    src,
    seq,
    topic,
    time,
    data,
    ...(headers === undefined ? {} : { headers }),
    ...(retained === undefined ? {} : { retained }),
    ...(durable === undefined ? {} : { durable }),
  }
}
