import type { BusEvent } from './types.js'

/** Header carrying the inbox topic a request's reply goes to. */
export const REPLY_TO = 'x-crossbus-reply-to'
/** Header set on a reply whose handler failed; the reply's data is the error. */
export const REPLY_ERROR = 'x-crossbus-reply-error'

/** The headers of an event that has none: one frozen object shared by all. */
export const EMPTY_HEADERS: Readonly<Record<string, string>> = Object.freeze({})

/** What travels with an event beside its public fields: how it was published. */
export const RETAINED = 1
export const DURABLE = 2
/** Published with `local: true`: it stays in this context (a bridge in it must not carry it either). */
export const LOCAL = 4

/**
 * Envelopes are frozen outside production builds, where bundlers replace
 * `process.env.NODE_ENV` (a freeze costs about as much as the rest of a
 * publish). The fields are readonly in the types either way.
 */
const FREEZE: boolean = (() => {
  try {
    return process.env.NODE_ENV !== 'production'
  } catch {
    // No bundler and no process (a browser loading the module as is): not a production build.
    return true
  }
})()

declare const process: { env: Record<string, string | undefined> }

/** The fields of an event, to build an envelope from. */
export interface EventFields {
  readonly id: string
  readonly topic: string
  readonly data: unknown
  readonly source: string
  readonly seq: number
  readonly time: number
  readonly headers: Readonly<Record<string, string>>
  readonly redelivered: boolean
}

/** Where an envelope keeps its publish flags: a non-enumerable own property, absent when they are 0. */
const FLAGS: unique symbol = Symbol('crossbus.flags')
/** Where it keeps its queue group assignments (pairs: group key, member context id), absent when none. */
const ASSIGNED: unique symbol = Symbol('crossbus.assigned')

/**
 * The event envelope. A class, so every event shares one shape and prints as
 * `Envelope`; its publish flags (RETAINED, DURABLE) ride along out of sight,
 * for the links and the durable subscriptions. Its fields are plain own
 * properties assigned once (declared, not defined as class fields: a field
 * definition per property costs as much as the rest of a publish).
 */
export class Envelope implements BusEvent {
  declare readonly id: string
  declare readonly topic: string
  declare readonly data: unknown
  declare readonly source: string
  declare readonly seq: number
  declare readonly time: number
  declare readonly headers: Readonly<Record<string, string>>
  declare readonly redelivered: boolean

  constructor(fields: EventFields, flags = 0, assigned?: readonly string[]) {
    const self = this as { -readonly [K in keyof EventFields]: EventFields[K] }
    self.id = fields.id
    self.topic = fields.topic
    self.data = fields.data
    self.source = fields.source
    self.seq = fields.seq
    self.time = fields.time
    self.headers = fields.headers
    self.redelivered = fields.redelivered
    if (flags !== 0) Object.defineProperty(this, FLAGS, { value: flags })
    if (assigned !== undefined) Object.defineProperty(this, ASSIGNED, { value: assigned })
    if (FREEZE) Object.freeze(this)
  }

  /** The queue group assignments of an event: pairs [group key, member context id, …], or undefined. */
  static assigned(event: BusEvent): readonly string[] | undefined {
    return (event as { [ASSIGNED]?: readonly string[] })[ASSIGNED]
  }

  /** The publish flags of an event (0 for none, and for an object that is not an Envelope). */
  static flags(event: BusEvent): number {
    return (event as { [FLAGS]?: number })[FLAGS] ?? 0
  }
}

/** Was the event published durable (here or in the context it came from)? Durable subscriptions take it from the store. */
export const isDurable = (event: BusEvent): boolean => (Envelope.flags(event) & DURABLE) !== 0

/** Was the event published with `local: true` (in this context: no other sees it)? */
export const isLocal = (event: BusEvent): boolean => (Envelope.flags(event) & LOCAL) !== 0

/** The same event with other data (a `copy: true` subscription's clone) or marked redelivered. */
export function withChanges(event: BusEvent, data: unknown, redelivered: boolean): BusEvent {
  return new Envelope({ ...event, data, redelivered }, Envelope.flags(event), Envelope.assigned(event))
}

/** Is `event` assigned to context `id` for queue group `key`? */
export function assignedTo(event: BusEvent, key: string, id: string): boolean {
  const pairs = Envelope.assigned(event)
  if (pairs === undefined) return false
  for (let index = 0; index < pairs.length; index += 2) if (pairs[index] === key && pairs[index + 1] === id) return true
  return false
}
