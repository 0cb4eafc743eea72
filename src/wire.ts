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
  /** Bumped on every change and heartbeat: a version that changes says its context lives (see Link's preferred()). */
  readonly version: number
  /** Subscription patterns of that context (events it wants). */
  readonly patterns: readonly string[]
  /** Reply patterns (requests it answers). */
  readonly replies: readonly string[]
  /**
   * Its queue group memberships: `q <queue> <pattern>` for a subscription in
   * queue group <queue>, `r <queue> <pattern>` for a replier ('' queue: `r  <pattern>`).
   * Absent when none. Members of a group get an event only when its publisher
   * assigns it to them (see EventsFrame.assigned).
   */
  readonly groups?: readonly string[]
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
  readonly src: ArrayLike<number>
  readonly seq: ArrayLike<number>
  /** Index into `topics`. */
  readonly topic: ArrayLike<number>
  readonly time: ArrayLike<number>
  readonly data: readonly unknown[]
  /** Headers of each event (null for none); absent when no event has any. */
  readonly headers?: readonly (Readonly<Record<string, string>> | null)[]
  /** Indexes of events their publisher retained (a list on the wire, a set once decoded). */
  readonly retained?: ReadonlySet<number>
  /** Indexes of events published durable (durable subscriptions read them from the store instead). */
  readonly durable?: ReadonlySet<number>
  /** Answer to a retained-state request of that number. */
  readonly answers?: number
  /**
   * Each event's queue group assignments, as pairs [group key, member context
   * id, …] (null for none); absent when no event has any. A member context
   * delivers an event to one of its members of a group only when assigned it.
   */
  readonly assigned?: readonly (readonly string[] | null)[]
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

/** Events in one frame, at most. A link's `batch` cannot exceed it, and a frame with more is refused whole. */
export const MAX_FRAME_EVENTS = 4096
/** Route records in one hello, at most: a hello with more is refused. */
export const MAX_ROUTES = 256
/**
 * Patterns (and reply patterns) of one record that are read one by one. A
 * record with more is read as `['>']`: it wants (answers) everything, so no
 * interest list can make matching cost more than this.
 */
export const MAX_PATTERNS = 256
/** Longest context id accepted (ids are 8 characters). */
export const MAX_ID_LENGTH = 128
/** Longest pattern accepted in a record or a retained-state request (MAX_TOPIC_LENGTH). */
const MAX_PATTERN_LENGTH = 256

/** What a record with more than MAX_PATTERNS patterns is read as. */
export const EVERYTHING: readonly string[] = Object.freeze(['>'])

/**
 * The decoder reads only what a sender cannot turn into code: own data
 * properties (an accessor reads as absent, so no getter runs), `typeof`
 * checks, and `for` loops over `length` that see holes (`every()` skips them).
 * It never converts a value it was given to a string, and it copies what it
 * checked into a new frame, so nothing read later can differ from what was
 * checked. A Proxy can still throw from a trap: decodeFrame catches that.
 */
const own = (object: object, key: string | number): unknown => Object.getOwnPropertyDescriptor(object, key)?.value
const isCount = (value: unknown): value is number => typeof value === 'number' && Number.isSafeInteger(value) && value >= 0
const isObject = (value: unknown): value is object => typeof value === 'object' && value !== null
const isId = (value: unknown): value is string => typeof value === 'string' && value.length > 0 && value.length <= MAX_ID_LENGTH
const isPattern = (value: unknown): value is string => typeof value === 'string' && value.length <= MAX_PATTERN_LENGTH

/** A value named in a reason without calling anything on it. */
function nameOf(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value.slice(0, 40))
  if (typeof value === 'number' || typeof value === 'boolean' || typeof value === 'bigint' || value === undefined) return `${value}`
  return value === null ? 'null' : typeof value === 'object' ? 'an object' : `a ${typeof value}`
}

/**
 * The items of a plain array of at most `max`, each read by `read` into a new
 * array; undefined when it is not one, or when `read` refuses an item (a
 * hole or an accessor reads as undefined).
 */
function list<T>(value: unknown, read: (item: unknown) => T | undefined, max: number): T[] | undefined {
  if (!Array.isArray(value) || value.length > max) return undefined
  const length = value.length
  const copy = new Array<T>(length)
  for (let index = 0; index < length; index++) {
    const item = read(own(value, index))
    if (item === undefined) return undefined
    copy[index] = item
  }
  return copy
}

const which =
  <T>(check: (value: unknown) => value is T) =>
  (value: unknown): T | undefined =>
    check(value) ? value : undefined
const readId = which(isId)
const readString = which((value): value is string => typeof value === 'string')
const readPattern = which(isPattern)
const readNumber = which((value): value is number => typeof value === 'number')
const readCount = which(isCount)

/** A record's pattern list: copied, or EVERYTHING past MAX_PATTERNS. */
function patternList(value: unknown): readonly string[] | undefined {
  if (Array.isArray(value) && value.length > MAX_PATTERNS) return EVERYTHING
  return list(value, readPattern, MAX_PATTERNS)
}

/** Longest group membership accepted: `q`, a queue name and a pattern. */
const MAX_GROUP_LENGTH = 2 * MAX_PATTERN_LENGTH + 4
const readGroup = which((value): value is string => typeof value === 'string' && value.length <= MAX_GROUP_LENGTH)

function readRecord(value: unknown): RouteRecord | undefined {
  if (!isObject(value)) return undefined
  const id = own(value, 'id')
  const version = own(value, 'version')
  const patterns = patternList(own(value, 'patterns'))
  const replies = patternList(own(value, 'replies'))
  if (!isId(id) || !isCount(version) || patterns === undefined || replies === undefined) return undefined
  const rawGroups = own(value, 'groups')
  if (rawGroups === undefined) return { id, version, patterns, replies }
  // More memberships than patterns are read: the rest are ignored (those members get nothing from here).
  const groups = list(Array.isArray(rawGroups) ? rawGroups.slice(0, MAX_PATTERNS) : rawGroups, readGroup, MAX_PATTERNS)
  return groups === undefined ? undefined : { id, version, patterns, replies, groups }
}

/** Queue group assignments of one event, at most (pairs: key and member). */
const MAX_ASSIGNMENTS = 64
/** One event's assignments: null, or pairs of strings; undefined when malformed. */
function readAssignment(value: unknown): readonly string[] | null | undefined {
  if (value === null) return null
  const pairs = list(value, readGroup, 2 * MAX_ASSIGNMENTS)
  return pairs === undefined || pairs.length % 2 !== 0 ? undefined : pairs
}

/** A column of numbers: a typed array of exactly `typed` (what our encoder sends, cloned), or a plain array, copied. */
function numbers(value: unknown, length: number, typed: typeof Uint32Array | typeof Float64Array): ArrayLike<number> | undefined {
  const column = isObject(value) && Object.getPrototypeOf(value) === typed.prototype ? (value as ArrayLike<number>) : list(value, readNumber, MAX_FRAME_EVENTS)
  return column !== undefined && column.length === length ? column : undefined
}

/** Do the items of an index column point into a table of `bound` entries? */
function allIndexes(column: ArrayLike<number>, bound: number): boolean {
  for (let index = 0; index < column.length; index++) {
    const item = column[index] as number
    if (!Number.isInteger(item) || item < 0 || item >= bound) return false
  }
  return true
}

/** One event's headers, copied and frozen; null for none; undefined when malformed. */
export function readHeaders(value: unknown): Readonly<Record<string, string>> | null | undefined {
  if (value === null) return null
  if (!isObject(value) || Array.isArray(value)) return undefined
  const copy: Record<string, string> = {}
  for (const key of Object.keys(value)) {
    const header = own(value, key)
    if (typeof header !== 'string') return undefined
    copy[key] = header
  }
  return Object.freeze(copy)
}

/** An optional list of event indexes, as a set; false when malformed. */
function indexSet(value: unknown, count: number): ReadonlySet<number> | undefined | false {
  if (value === undefined) return undefined
  const indexes = list(value, readCount, MAX_FRAME_EVENTS)
  if (indexes === undefined) return false
  for (const index of indexes) if (index >= count) return false
  return new Set(indexes)
}

function readEvents(message: object, base: FrameBase): EventsFrame | string {
  const data = own(message, 'data')
  if (!Array.isArray(data)) return 'malformed events'
  const count = data.length
  if (count > MAX_FRAME_EVENTS) return `a frame of ${count} events, more than ${MAX_FRAME_EVENTS}`
  const sources = list(own(message, 'sources'), readId, MAX_FRAME_EVENTS)
  const topics = list(own(message, 'topics'), readString, MAX_FRAME_EVENTS)
  if (sources === undefined || topics === undefined) return 'malformed source or topic table'
  const src = numbers(own(message, 'src'), count, Uint32Array)
  const topic = numbers(own(message, 'topic'), count, Uint32Array)
  const seq = numbers(own(message, 'seq'), count, Float64Array)
  const time = numbers(own(message, 'time'), count, Float64Array)
  if (src === undefined || topic === undefined || seq === undefined || time === undefined) return 'malformed events'
  if (!allIndexes(src, sources.length) || !allIndexes(topic, topics.length)) return 'malformed events'
  for (let index = 0; index < count; index++) {
    if (!isCount(seq[index]) || !Number.isFinite(time[index])) return 'malformed events'
  }
  const rawHeaders = own(message, 'headers')
  const headers = rawHeaders === undefined ? undefined : list(rawHeaders, readHeaders, MAX_FRAME_EVENTS)
  if (headers !== undefined && headers.length !== count) return 'malformed headers'
  if (rawHeaders !== undefined && headers === undefined) return 'malformed headers'
  const retained = indexSet(own(message, 'retained'), count)
  const durable = indexSet(own(message, 'durable'), count)
  const answers = own(message, 'answers')
  if (retained === false || durable === false) return 'malformed events'
  const rawAssigned = own(message, 'assigned')
  // Events given to the same members share one array (structured clone keeps identity): read each once.
  const read = new Map<unknown, readonly string[] | null | undefined>()
  const readShared = (value: unknown): readonly string[] | null | undefined => {
    if (read.has(value)) return read.get(value)
    const pairs = readAssignment(value)
    if (read.size < MAX_ASSIGNMENTS) read.set(value, pairs)
    return pairs
  }
  const assigned = rawAssigned === undefined ? undefined : list(rawAssigned, readShared, MAX_FRAME_EVENTS)
  if (rawAssigned !== undefined && (assigned === undefined || assigned.length !== count)) return 'malformed assignments'
  if (answers !== undefined && !isCount(answers)) return 'malformed answer number'
  return {
    ...base,
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
    ...(answers === undefined ? {} : { answers }),
    ...(assigned === undefined ? {} : { assigned }),
  }
}

/**
 * Checks a message from a channel. Returns a new frame holding copies of what
 * it checked, or a short reason why the message is not one of ours (foreign
 * code on the channel, wrong version, malformed). It never throws and never
 * runs code the sender controls (no toString, valueOf or getter).
 */
export function decodeFrame(message: unknown): Frame | string {
  try {
    return decode(message)
  } catch {
    // Only an exotic object (a Proxy) gets here: no structured clone makes one.
    return 'unreadable frame'
  }
}

function decode(message: unknown): Frame | string {
  if (!isObject(message)) return 'not an object'
  const version = own(message, 'crossbus')
  if (version !== WIRE_VERSION) return version === undefined ? 'not a crossbus frame' : `unsupported wire version ${nameOf(version)}`
  const bus = own(message, 'bus')
  const from = own(message, 'from')
  const to = own(message, 'to')
  if (typeof bus !== 'string' || !isId(from)) return 'missing bus or sender'
  if (to !== undefined && !isId(to)) return 'malformed addressee'
  const base: FrameBase = to === undefined ? { crossbus: WIRE_VERSION, bus, from } : { crossbus: WIRE_VERSION, bus, from, to }
  const kind = own(message, 'kind')
  switch (kind) {
    case 'hello': {
      const routes = list(own(message, 'routes'), readRecord, MAX_ROUTES)
      const ask = own(message, 'ask')
      if (routes === undefined) return 'malformed routes'
      if (ask !== undefined && typeof ask !== 'boolean') return 'malformed hello'
      return ask === undefined ? { ...base, kind, routes } : { ...base, kind, routes, ask }
    }
    case 'bye':
      return { ...base, kind }
    case 'events':
      return readEvents(message, base)
    case 'credit': {
      const credit = own(message, 'credit')
      return isCount(credit) ? { ...base, kind, credit } : 'malformed credit'
    }
    case 'retained': {
      const patterns = list(own(message, 'patterns'), readPattern, MAX_PATTERNS)
      const ask = own(message, 'ask')
      return patterns !== undefined && isCount(ask) ? { ...base, kind, patterns, ask } : 'malformed retained request'
    }
    default:
      return `unknown frame kind ${nameOf(kind)}`
  }
}

/** The columns of an events frame as they are posted: the index lists are arrays on the wire. */
export interface EncodedEvents extends Omit<EventsFrame, 'crossbus' | 'bus' | 'from' | 'to' | 'answers' | 'retained' | 'durable'> {
  readonly retained?: readonly number[]
  readonly durable?: readonly number[]
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
  assignedOf: (index: number) => readonly string[] | undefined = () => undefined,
): EncodedEvents {
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
  let assigned: (readonly string[] | null)[] | undefined
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
    const pairs = assignedOf(index)
    if (pairs !== undefined) {
      assigned ??= new Array<readonly string[] | null>(count).fill(null)
      assigned[index] = pairs
    }
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
    ...(assigned === undefined ? {} : { assigned }),
  }
}
