import type { BusEvent } from './types.js'

/** Header carrying the inbox topic a request's reply goes to. */
export const REPLY_TO = 'x-crossbus-reply-to'

/** The headers of an event that has none: one frozen object shared by all. */
export const EMPTY_HEADERS: Readonly<Record<string, string>> = Object.freeze({})

/** The frozen event envelope. A class, so every event shares one shape and prints as `Envelope`. */
export class Envelope implements BusEvent {
  readonly id: string
  readonly topic: string
  readonly data: unknown
  readonly source: string
  readonly seq: number
  readonly time: number
  readonly headers: Readonly<Record<string, string>>
  readonly redelivered: boolean
  constructor(
    id: string,
    topic: string,
    data: unknown,
    source: string,
    seq: number,
    time: number,
    headers: Readonly<Record<string, string>>,
    redelivered: boolean,
  ) {
    this.id = id
    this.topic = topic
    this.data = data
    this.source = source
    this.seq = seq
    this.time = time
    this.headers = headers
    this.redelivered = redelivered
    Object.freeze(this)
  }
}

/** The same event with other data (a `copy: true` subscription's clone) or marked redelivered. */
export function withChanges(event: BusEvent, data: unknown, redelivered: boolean): BusEvent {
  return new Envelope(event.id, event.topic, data, event.source, event.seq, event.time, event.headers, redelivered)
}

/** Events published with `durable: true` (here or in the context they came from). */
const durableEvents = new WeakSet<BusEvent>()

/** Marks an event as durable: durable subscriptions take it from the store, not live. */
export function markDurable(event: BusEvent): void {
  durableEvents.add(event)
}

export function isDurable(event: BusEvent): boolean {
  return durableEvents.has(event)
}
