/**
 * What crosses the NATS wire: a bus event as a message (subject, payload,
 * headers) and a message back as the parts of a local event. Decoding never
 * throws: a message from the wire becomes an event or the reason it is refused.
 */
import { headers as natsHeaders, type Msg, type MsgHdrs } from '@nats-io/nats-core'
import { CrossbusError, errorMessage, quote } from '../../errors.js'
import { isReserved, parseTopic } from '../../topic.js'
import type { BusEvent } from '../../types.js'

/** NATS header: the event id (`source:seq`), also the JetStream `Nats-Msg-Id`. */
export const ID_HEADER = 'Crossbus-Id'
/** NATS header: the origin (one device's bus) that exported the event; an origin never imports its own. */
export const ORIGIN_HEADER = 'Crossbus-Origin'

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

/** JSON in UTF-8; `undefined` travels as an empty payload. Maps, Sets, Dates and typed arrays become what JSON makes of them. */
export const jsonCodec: NatsCodec = {
  encode(data) {
    const text = JSON.stringify(data)
    return text === undefined ? EMPTY : encoder.encode(text)
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

/** The topic of a subject, or undefined when the subject is not under the prefix or is no valid, publishable topic. */
export function topicOf(map: SubjectMap, subject: string): string | undefined {
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
  readonly headers: MsgHdrs
  readonly size: number
}

/**
 * An event as a NATS message, or the error that stops it: its data the codec
 * cannot encode, a header NATS cannot carry (TypeError), or a message larger
 * than the server's max_payload (PAYLOAD_TOO_LARGE).
 */
export function encodeEvent(map: SubjectMap, codec: NatsCodec, event: BusEvent, origin: string, maxPayload: number): OutboundMessage | Error {
  const subject = subjectOf(map, event.topic)
  let payload: Uint8Array
  try {
    payload = codec.encode(event.data)
    if (!(payload instanceof Uint8Array)) return new TypeError(`crossbus: the NATS codec must encode to a Uint8Array (event on ${quote(event.topic)})`)
  } catch (error) {
    return new TypeError(`crossbus: the data of an event on ${quote(event.topic)} cannot be encoded for NATS: ${errorMessage(error)}`, { cause: error })
  }
  const headers = natsHeaders()
  // Header lines as the server counts them: "NATS/1.0\r\n", "key: value\r\n" each, "\r\n".
  let headerSize = 12
  let wide = false
  for (const key in event.headers) {
    const value = event.headers[key] as string
    try {
      headers.append(key, value)
    } catch (error) {
      return new TypeError(`crossbus: header ${quote(key)} of an event on ${quote(event.topic)} cannot travel on NATS: ${errorMessage(error)}`)
    }
    headerSize += key.length + value.length + 4
    wide ||= !isAscii(value)
  }
  headers.set(ID_HEADER, event.id)
  headers.set(ORIGIN_HEADER, origin)
  headerSize += ID_HEADER.length + event.id.length + 4 + ORIGIN_HEADER.length + origin.length + 4
  // Only a value outside ASCII can take more bytes than characters.
  if (wide) headerSize = encoder.encode(headers.toString()).length
  const size = payload.length + headerSize
  if (size > maxPayload) {
    return new CrossbusError(
      'PAYLOAD_TOO_LARGE',
      `an event on ${quote(event.topic)} is ${size} bytes as a NATS message, over the server's max_payload of ${maxPayload} bytes`,
    )
  }
  return { subject, payload, headers, size }
}

function isAscii(value: string): boolean {
  for (let index = 0; index < value.length; index++) if (value.charCodeAt(index) > 127) return false
  return true
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
  const headers: Record<string, string> = Object.create(null)
  let id: string | undefined
  let origin: string | undefined
  if (incoming !== undefined) {
    let keys: string[]
    try {
      keys = incoming.keys()
    } catch (error) {
      return `malformed headers: ${errorMessage(error)}`
    }
    if (keys.length > MAX_HEADERS) return `${keys.length} headers, more than ${MAX_HEADERS}`
    for (const key of keys) {
      if (typeof key !== 'string') return 'malformed headers'
      const values = incoming.values(key)
      const value = values.join(', ')
      if (key === ID_HEADER) id = values[0]
      else if (key === ORIGIN_HEADER) origin = values[0]
      // The server's own (Nats-Msg-Id, Nats-Expected-…) and our markers do not become event headers.
      else if (!key.startsWith('Nats-') && !key.startsWith('x-crossbus-nats-')) headers[key] = value
    }
    if (id !== undefined && (id.length === 0 || id.length > MAX_ID_LENGTH)) return 'malformed Crossbus-Id header'
    if (origin !== undefined && (origin.length === 0 || origin.length > MAX_ID_LENGTH)) return 'malformed Crossbus-Origin header'
  }
  let data: unknown
  try {
    data = codec.decode(payload)
  } catch (error) {
    return `payload the codec cannot decode: ${errorMessage(error)}`
  }
  headers[SUBJECT_HEADER] = subject
  if (id !== undefined) headers[REMOTE_ID_HEADER] = id
  if (origin !== undefined) headers[REMOTE_ORIGIN_HEADER] = origin
  return { topic, data, headers: { ...headers }, id, origin }
}
