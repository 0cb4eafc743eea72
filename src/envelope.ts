import type { BusEvent } from './types.js'



/** The same event with other data (a `copy: true` subscription's clone) or marked redelivered. */
export function withChanges(event: BusEvent, data: unknown, redelivered: boolean): BusEvent {
  return new Envelope(event.id, event.topic, data, event.source, event.seq, event.time, event.headers, redelivered)
}
