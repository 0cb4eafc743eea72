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

/** An event on the wire. */
export interface WireEvent {
  readonly id: string
  readonly topic: string
  readonly data: unknown
  readonly source: string
  readonly seq: number
  readonly time: number
  readonly headers: Readonly<Record<string, string>>
  /** Set when the publisher retained it. */
  readonly retain?: boolean
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
/** events: a batch, in order. */
export interface EventsFrame extends FrameBase {
  readonly kind: 'events'
  readonly events: readonly WireEvent[]
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

function isWireEvent(value: unknown): value is WireEvent {
  return (
    isObject(value) &&
    isString(value.id) &&
    isString(value.topic) &&
    isString(value.source) &&
    isCount(value.seq) &&
    typeof value.time === 'number' &&
    isHeaders(value.headers) &&
    (value.retain === undefined || typeof value.retain === 'boolean')
  )
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
      if (!Array.isArray(message.events) || !message.events.every(isWireEvent)) return 'malformed events'
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
