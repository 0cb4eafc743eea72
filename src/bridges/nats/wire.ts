/**
 * What crosses the NATS wire: a bus event as a message (subject, payload,
 * headers) and a message back as the parts of a local event. Decoding never
 * throws: a message from the wire becomes an event or the reason it is refused.
 */
import { type Msg, MsgHdrsImpl, type MsgHdrs, headers as natsHeaders } from '@nats-io/nats-core'
import { CrossbusError, errorMessage, quote } from '../../errors.js'
import { isReserved, parseTopic } from '../../topic.js'
import type { BusEvent } from '../../types.js'

/**
 * NATS header: `<event id>@<origin>`. The event id (`source:seq`) is also the
 * JetStream `Nats-Msg-Id`; the origin (one device's bus) never imports its own
 * events. One short header: on a small event, headers are most of the bytes a
 * message takes, and what the receiving client spends parsing it.
 */
export const ID_HEADER = 'Crossbus-Id'

/** Local headers of an imported event: the subject it came on (which also marks it imported, so it is never exported again). */
export const SUBJECT_HEADER = 'x-crossbus-nats-subject'
/** Local header: the id the event had where it was published, when a crossbus bridge exported it. */
export const REMOTE_ID_HEADER = 'x-crossbus-nats-id'
/** Local header: the origin that exported it. */
export const REMOTE_ORIGIN_HEADER = 'x-crossbus-nats-origin'

/** Headers an imported event carries at most; more is a malformed message. */
export const MAX_HEADERS = 64

/** Turns data into a payload and back. Default: JSON in UTF-8. */
export interface NatsCodec {
  encode(data: unknown): Uint8Array
  decode(payload: Uint8Array): unknown
}

const encoder = new TextEncoder()
const decoder = new TextDecoder('utf-8', { fatal: true })
const EMPTY = new Uint8Array(0)

/**
 * Small texts are encoded into a shared slab (encodeInto) rather than each
 * into a buffer of its own (encode allocates one per call, which costs more
 * than the encoding). The client holds the views until it has sent them; a
 * full slab is left to them and a new one begun.
 */
const SLAB_BYTES = 64 * 1024
let slab = new Uint8Array(SLAB_BYTES)
let slabOffset = 0

function encodeText(text: string): Uint8Array {
  const most = text.length * 3
  if (most > SLAB_BYTES / 4) return encoder.encode(text)
  if (slabOffset + most > SLAB_BYTES) {
    slab = new Uint8Array(SLAB_BYTES)
    slabOffset = 0
  }
  const { written } = encoder.encodeInto(text, slab.subarray(slabOffset))
  const view = slab.subarray(slabOffset, slabOffset + written)
  slabOffset += written
  return view
}

/** JSON in UTF-8; `undefined` travels as an empty payload. Maps, Sets, Dates and typed arrays become what JSON makes of them. */
export const jsonCodec: NatsCodec = {
  encode(data) {
    const text = JSON.stringify(data)
    return text === undefined ? EMPTY : encodeText(text)
  },
  decode(payload) {
    return payload.length === 0 ? undefined : JSON.parse(decoder.decode(payload))
  },
}

/** How topics map onto subjects. */
export interface SubjectMap {
  /** '' for none; otherwise tokens that every subject starts with. */
  readonly prefix: string
}

export const subjectOf = (map: SubjectMap, topic: string): string => (map.prefix === '' ? topic : `${map.prefix}.${topic}`)

/** Subjects already checked → their topic (null: none). Subjects repeat; the check is what costs. Bounded. */
const topics = new Map<string, string | null>()
const MAX_TOPICS = 1024

/** The topic of a subject, or undefined when the subject is not under the prefix or is no valid, publishable topic. */
export function topicOf(map: SubjectMap, subject: string): string | undefined {
  const key = map.prefix === '' ? subject : `${map.prefix}\u0000${subject}`
  const known = topics.get(key)
  if (known !== undefined) return known ?? undefined
  const topic = checkedTopic(map, subject)
  if (topics.size >= MAX_TOPICS) topics.clear()
  topics.set(key, topic ?? null)
  return topic
}

function checkedTopic(map: SubjectMap, subject: string): string | undefined {
  let topic = subject
  if (map.prefix !== '') {
    if (subject.length <= map.prefix.length + 1 || !subject.startsWith(map.prefix) || subject.charCodeAt(map.prefix.length) !== 46 /* . */) return undefined
    topic = subject.slice(map.prefix.length + 1)
  }
  try {
    parseTopic(topic)
  } catch {
    return undefined
  }
  return isReserved(topic) ? undefined : topic
}

/** An event ready for the client: what publish takes, and its size as the server counts it (payload + headers). */
export interface OutboundMessage {
  readonly subject: string
  readonly payload: Uint8Array
  /** None for a core publish without ids or headers: the smallest message, the fastest to send and to parse. */
  readonly headers: MsgHdrs | undefined
  readonly size: number
}

/**
 * Headers encoded once, as the server reads them. nats-core's publish only
 * asks its headers to `encode()`; building a MsgHdrs entry by entry (each key
 * checked and looked up) cost more than the rest of a publish. Write-only:
 * for core publishes (a JetStream publish adds Nats-Msg-Id to real MsgHdrs).
 */
class EncodedHeaders extends MsgHdrsImpl {
  readonly #bytes: Uint8Array

  constructor(bytes: Uint8Array) {
    super()
    this.#bytes = bytes
  }

  override encode(): Uint8Array {
    return this.#bytes
  }
}

/** A header name NATS carries: printable ASCII but ':' (RFC 822 field names, as nats-core checks them). */
function validName(key: string): boolean {
  if (key.length === 0) return false
  for (let index = 0; index < key.length; index++) {
    const code = key.charCodeAt(index)
    if (code < 33 || code > 126 || code === 58) return false
  }
  return true
}

const LINE_BREAK = /[\r\n]/

/**
 * How an event goes out: `core` with its id header only when `ids` says so
 * (or it has headers of its own, which need a header block anyway), `jetstream`
 * always with it and with this Nats-Msg-Id.
 */
export type Carriage = { readonly kind: 'core'; readonly ids: boolean } | { readonly kind: 'jetstream'; readonly msgID: string }

/**
 * An event as a NATS message, or the error that stops it: its data the codec
 * cannot encode, a header NATS cannot carry (TypeError), or a message larger
 * than the server's max_payload (PAYLOAD_TOO_LARGE).
 */
export function encodeEvent(
  map: SubjectMap,
  codec: NatsCodec,
  event: BusEvent,
  origin: string,
  maxPayload: number,
  carriage: Carriage,
): OutboundMessage | Error {
  const subject = subjectOf(map, event.topic)
  let payload: Uint8Array
  try {
    payload = codec.encode(event.data)
    if (!(payload instanceof Uint8Array)) return new TypeError(`crossbus: the NATS codec must encode to a Uint8Array (event on ${quote(event.topic)})`)
  } catch (error) {
    return new TypeError(`crossbus: the data of an event on ${quote(event.topic)} cannot be encoded for NATS: ${errorMessage(error)}`, { cause: error })
  }
  let text = ''
  const own = event.headers
  for (const key in own) {
    const value = own[key] as string
    if (!validName(key))
      return new TypeError(
        `crossbus: header ${quote(key)} of an event on ${quote(event.topic)} cannot travel on NATS: a header name is printable ASCII without ':'`,
      )
    if (LINE_BREAK.test(value))
      return new TypeError(`crossbus: header ${quote(key)} of an event on ${quote(event.topic)} cannot travel on NATS: its value has a line break`)
    text += `${key}: ${value}\r\n`
  }
  const withId = carriage.kind === 'jetstream' || carriage.ids || text !== ''
  let bytes: Uint8Array | undefined
  if (withId) bytes = encodeText(`NATS/1.0\r\n${text}${ID_HEADER}: ${event.id}@${origin}\r\n\r\n`)
  const size = payload.length + (bytes?.length ?? 0) + (carriage.kind === 'jetstream' ? 15 + carriage.msgID.length : 0)
  if (size > maxPayload) {
    return new CrossbusError(
      'PAYLOAD_TOO_LARGE',
      `an event on ${quote(event.topic)} is ${size} bytes as a NATS message, over the server's max_payload of ${maxPayload} bytes`,
    )
  }
  if (carriage.kind === 'core') return { subject, payload, headers: bytes === undefined ? undefined : new EncodedHeaders(bytes), size }
  const headers = natsHeaders()
  for (const key in own) headers.append(key, own[key] as string)
  headers.set(ID_HEADER, `${event.id}@${origin}`)
  return { subject, payload, headers, size }
}

/** A NATS message as the parts of a local event. */
export interface InboundEvent {
  readonly topic: string
  readonly data: unknown
  /** Its own headers and the bridge's x-crossbus-nats-* ones. */
  readonly headers: Record<string, string>
  /** The id it had where it was published (crossbus exporters only). */
  readonly id: string | undefined
  /** The origin that exported it (crossbus exporters only). */
  readonly origin: string | undefined
}

/** Longest id or origin header accepted: ids are `source:seq`. */
const MAX_ID_LENGTH = 128

/** A message from the wire as an event, or why it is refused. Never throws, whatever the message holds. */
export function decodeMessage(map: SubjectMap, codec: NatsCodec, message: Msg): InboundEvent | string {
  let subject: string
  let payload: Uint8Array
  let incoming: MsgHdrs | undefined
  try {
    subject = message.subject
    payload = message.data
    incoming = message.headers
  } catch (error) {
    return `unreadable message: ${errorMessage(error)}`
  }
  const topic = topicOf(map, subject)
  if (topic === undefined) return `subject ${quote(subject)} is no topic under the prefix`
  // A plain object (a null-prototype one is a dictionary to the engine: slow to copy, and the bus copies headers).
  const headers: Record<string, string> = { [SUBJECT_HEADER]: subject }
  let id: string | undefined
  let origin: string | undefined
  if (incoming !== undefined) {
    let count = 0
    try {
      for (const [key, values] of incoming) {
        if (++count > MAX_HEADERS) return `more than ${MAX_HEADERS} headers`
        if (typeof key !== 'string' || !Array.isArray(values)) return 'malformed headers'
        if (key === ID_HEADER) {
          const value = values[0]
          const at = typeof value === 'string' ? value.lastIndexOf('@') : -1
          if (at <= 0 || at === (value as string).length - 1) return 'malformed Crossbus-Id header'
          id = (value as string).slice(0, at)
          origin = (value as string).slice(at + 1)
        }
        // The server's own (Nats-Msg-Id, Nats-Expected-…) and our markers do not become event headers.
        else if (!key.startsWith('Nats-') && !key.startsWith('x-crossbus-nats-')) {
          const value = values.length === 1 && typeof values[0] === 'string' ? values[0] : values.join(', ')
          // A header named __proto__ stays a header, not the object's prototype.
          if (key === '__proto__') Object.defineProperty(headers, key, { value, enumerable: true, writable: true, configurable: true })
          else headers[key] = value
        }
      }
    } catch (error) {
      return `malformed headers: ${errorMessage(error)}`
    }
    if (id !== undefined && (id.length > MAX_ID_LENGTH || (origin as string).length > MAX_ID_LENGTH)) return 'malformed Crossbus-Id header'
  }
  let data: unknown
  try {
    data = codec.decode(payload)
  } catch (error) {
    return `payload the codec cannot decode: ${errorMessage(error)}`
  }
  if (id !== undefined) headers[REMOTE_ID_HEADER] = id
  if (origin !== undefined) headers[REMOTE_ORIGIN_HEADER] = origin
  return { topic, data, headers, id, origin }
}
