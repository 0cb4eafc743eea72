/**
 * The export side of the holder: subscribes to the export patterns (so the
 * events of every context of the origin travel to it over the bus) and hands
 * them to NATS, never to a client that is not connected.
 *
 * - Non-durable events (all events without JetStream) are core publishes;
 *   while there is no connection they wait in a bounded queue, sent in order
 *   once one is up; what the queue cannot hold is counted and reported.
 * - With JetStream, durable events are the outbox: a durable `process()`
 *   consumer per export pattern reads them from the local log, publishes each
 *   with its event id as `Nats-Msg-Id`, and returns (so the log acks it) only
 *   after the stream's PubAck; `maxInFlight` publishes at most await theirs.
 *   A failed publish is tried again, forever, with backoff; the stream's
 *   de-duplication makes a repeat harmless.
 */
import type { JetStreamClient } from '@nats-io/jetstream'
import type { MsgHdrs, NatsConnection } from '@nats-io/nats-core'
import { isDurable, isLocal } from '../../envelope.js'
import { errorMessage, isCrossbusError, quote } from '../../errors.js'
import { BoundedQueue } from '../../queue.js'
import { backoffDelay, type ResolvedRetry, sleep } from '../../retry.js'
import { matchTokens } from '../../topic.js'
import type { Bus, BusEvent, Subscription } from '../../types.js'
import type { Counters } from './counters.js'
import { isStatusTopic, type Settings } from './options.js'
import type { NatsDiagnostic } from './types.js'
import { type Carriage, encodeEvent, type OutboundMessage, SUBJECT_HEADER } from './wire.js'

export interface ExportHost {
  readonly bus: Bus
  readonly settings: Settings
  readonly counters: Counters
  readonly origin: string
  maxPayload(): number
  report(diagnostic: NatsDiagnostic): void
  /** Counters changed. */
  changed(): void
}

/** Queue of the export subscriptions: a burst published in one task is queued whole before the bridge runs. */
const SUBSCRIPTION_CAPACITY = 8192

/** Waits between JetStream publishes of one event that failed, as the processor's backoff would. */
const RETRY: ResolvedRetry = { attempts: Number.MAX_SAFE_INTEGER, initialDelay: 100, maxDelay: 10_000, factor: 2, jitter: true }

interface Waiter {
  readonly resolve: (client: JetStreamClient) => void
  readonly reject: (reason: unknown) => void
  readonly signal: AbortSignal
  readonly onAbort: () => void
}

export class Exporter {
  readonly #host: ExportHost
  readonly #subscriptions: Subscription[] = []
  readonly #waiting: BoundedQueue<OutboundMessage>
  #connection: NatsConnection | undefined
  #jetstream: JetStreamClient | undefined
  /** Durable publishes waiting for a connection, in the order they asked. */
  #gate: Waiter[] = []
  /** Durable events being handled (waiting for a connection, or for their PubAck). */
  #handling = 0
  /** JetStream publishes awaiting their PubAck. */
  inFlight = 0
  /** How core publishes go out (with ids or not). */
  readonly #core: Carriage
  /** A failed JetStream publish was reported; the next success says so again. */
  #failing = false

  constructor(host: ExportHost) {
    this.#host = host
    this.#core = { kind: 'core', ids: host.settings.ids }
    this.#waiting = new BoundedQueue(host.settings.capacity)
  }

  get queued(): number {
    return this.#waiting.size
  }

  /**
   * Durable events in the log not acked by the stream yet: each outbox consumer's backlog (read and not acked,
   * and the log's positions past what it read); a consumer not live yet counts what it holds.
   */
  get outbox(): number {
    let outbox = 0
    let live = false
    for (const subscription of this.#subscriptions) {
      const stats = subscription.stats()
      if (stats.durable === undefined) continue
      if (stats.backlog !== undefined) live = true
      outbox += stats.backlog ?? stats.queued
    }
    return live ? outbox : outbox + this.#handling
  }

  /** Subscribes to the export patterns. */
  start(): void {
    const { bus, settings } = this.#host
    settings.exports.forEach(({ pattern }, index) => {
      if (settings.jetstream === undefined) {
        // A `local: true` event stays in its context: the bridge in it does not carry it either.
        this.#subscriptions.push(bus.subscribe(pattern, (event) => isLocal(event) || this.#publishCore(event, index), { capacity: SUBSCRIPTION_CAPACITY }))
        return
      }
      const { maxInFlight } = settings.jetstream
      this.#subscriptions.push(
        bus.process(
          pattern,
          (event, { signal }) => (isLocal(event) ? undefined : isDurable(event) ? this.#publishDurable(event, index, signal) : this.#publishCore(event, index)),
          {
            durable: `crossbus-nats:${settings.name}:${pattern}`,
            concurrency: maxInFlight,
            capacity: Math.max(1024, 4 * maxInFlight),
            // The handler retries on its own and throws only when stopped; this is the last resort.
            retry: { attempts: Number.MAX_SAFE_INTEGER, initialDelay: 1000, maxDelay: 30_000 },
          },
        ),
      )
    })
  }

  connected(connection: NatsConnection, jetstream: JetStreamClient | undefined): void {
    this.#connection = connection
    this.#jetstream = jetstream
    // What waited goes first, in order, before any new event.
    for (let message = this.#waiting.shift(); message !== undefined; message = this.#waiting.shift()) {
      if (this.#write(connection, message)) continue
      // Refused (the connection closed meanwhile): it and the rest wait, in order, for the next one.
      const rest = this.#waiting.drain()
      this.#waiting.push(message)
      for (const later of rest) this.#waiting.push(later)
      break
    }
    if (jetstream !== undefined) {
      const gate = this.#gate
      this.#gate = []
      for (const waiter of gate) {
        waiter.signal.removeEventListener('abort', waiter.onAbort)
        waiter.resolve(jetstream)
      }
    }
    this.#host.changed()
  }

  disconnected(): void {
    this.#connection = undefined
    this.#jetstream = undefined
  }

  /** Ends the subscriptions (the outbox consumers write their last ack; the log keeps the rest). */
  stop(): void {
    for (const subscription of this.#subscriptions) subscription.unsubscribe()
    this.#subscriptions.length = 0
    const lost = this.#waiting.drain().length
    if (lost > 0) {
      this.#host.counters.dropped += lost
      this.#host.report({
        type: 'drop',
        count: lost,
        message: `crossbus: the NATS bridge stopped with ${lost} non-durable event(s) still waiting for a connection; they were not sent`,
      })
    }
  }

  /** Should this subscription export the event? Not imported ones, not a status, and only the first export pattern that matches. */
  #owns(event: BusEvent, index: number): boolean {
    if (event.headers[SUBJECT_HEADER] !== undefined || isStatusTopic(event.topic)) return false
    if (index === 0) return true
    const tokens = event.topic.split('.')
    const exports = this.#host.settings.exports
    for (let earlier = 0; earlier < index; earlier++) if (matchTokens((exports[earlier] as { tokens: readonly string[] }).tokens, tokens)) return false
    return true
  }

  #encode(event: BusEvent, carriage: Carriage): OutboundMessage | undefined {
    const { settings, origin } = this.#host
    const message = encodeEvent(settings, settings.codec, event, origin, this.#host.maxPayload(), carriage)
    if (!(message instanceof Error)) return message
    this.#drop(event, message)
    return undefined
  }

  #drop(event: BusEvent, error: Error): void {
    const counters = this.#host.counters
    counters.dropped++
    if (isCrossbusError(error, 'PAYLOAD_TOO_LARGE')) counters.tooLarge++
    this.#host.report({ type: 'drop', topic: event.topic, count: 1, error, message: `${error.message}; event ${event.id} was not exported` })
    this.#host.changed()
  }

  #publishCore(event: BusEvent, index: number): void {
    if (!this.#owns(event, index)) return
    const message = this.#encode(event, this.#core)
    if (message === undefined) return
    const connection = this.#connection
    // Never past an event that waits: order is kept.
    if (connection !== undefined && this.#waiting.size === 0 && this.#write(connection, message)) return
    if (this.#waiting.full) {
      if (this.#host.settings.overflow === 'drop-newest') {
        this.#overflow(event.topic)
        return
      }
      this.#waiting.shift()
      this.#overflow(event.topic)
    }
    this.#waiting.push(message)
  }

  #overflow(topic: string): void {
    this.#host.counters.dropped++
    this.#host.report({
      type: 'drop',
      topic,
      count: 1,
      message: `crossbus: the NATS bridge's queue of events waiting for a connection is full (capacity ${this.#host.settings.capacity}); an event was dropped (${this.#host.settings.overflow})`,
    })
    this.#host.changed()
  }

  /** Hands one message to the client; false when the client refused it for its connection (it then waits). */
  #write(connection: NatsConnection, message: OutboundMessage): boolean {
    try {
      if (message.headers === undefined) connection.publish(message.subject, message.payload)
      else connection.publish(message.subject, message.payload, { headers: message.headers })
    } catch (error) {
      if (isTooLarge(error)) {
        this.#host.counters.dropped++
        this.#host.counters.tooLarge++
        this.#host.report({
          type: 'drop',
          subject: message.subject,
          count: 1,
          error,
          message: `crossbus: a message to ${quote(message.subject)} is over the server's max_payload; it was not exported`,
        })
        return true
      }
      // Closed or draining: the caller keeps it for the next connection.
      return false
    }
    this.#host.counters.exported++
    this.#host.changed()
    return true
  }

  async #publishDurable(event: BusEvent, index: number, signal: AbortSignal): Promise<void> {
    if (!this.#owns(event, index)) return
    const message = this.#encode(event, { kind: 'jetstream', msgID: event.id })
    if (message === undefined) return
    const counters = this.#host.counters
    this.#handling++
    try {
      for (let failures = 0; ; ) {
        const jetstream = await this.#whenConnected(signal)
        this.inFlight++
        try {
          const ack = await jetstream.publish(message.subject, message.payload, {
            msgID: event.id,
            // A JetStream carriage always has real headers (the client adds Nats-Msg-Id to them).
            headers: message.headers as MsgHdrs,
            timeout: (this.#host.settings.jetstream as { ackTimeout: number }).ackTimeout,
          })
          counters.exported++
          if (ack.duplicate) counters.acknowledgedDuplicates++
          if (this.#failing) {
            this.#failing = false
            this.#host.report({ type: 'nats-error', message: 'crossbus: JetStream publishes succeed again' })
          }
          this.#host.changed()
          return
        } catch (error) {
          if (signal.aborted) throw error
          if (isTooLarge(error)) {
            this.#drop(event, error as Error)
            return
          }
          failures++
          if (!this.#failing) {
            this.#failing = true
            this.#host.report({
              type: 'nats-error',
              topic: event.topic,
              subject: message.subject,
              error,
              message: `crossbus: JetStream publish of ${event.id} to ${quote(message.subject)} failed (${explain(error, this.#host.settings)}); the outbox keeps it and tries again`,
            })
          }
        } finally {
          this.inFlight--
        }
        // A closed connection waits at the gate; a refusal or a lost ack is tried again after a pause.
        if (this.#connection !== undefined) await sleep(backoffDelay(RETRY, failures), signal)
      }
    } finally {
      this.#handling--
      this.#host.changed()
    }
  }

  /** The JetStream client once connected; rejects when `signal` aborts. Waiters go through in the order they came. */
  #whenConnected(signal: AbortSignal): Promise<JetStreamClient> {
    if (this.#jetstream !== undefined && this.#gate.length === 0) return Promise.resolve(this.#jetstream)
    return new Promise((resolve, reject) => {
      if (signal.aborted) return reject(signal.reason)
      const waiter: Waiter = {
        resolve,
        reject,
        signal,
        onAbort: () => {
          const at = this.#gate.indexOf(waiter)
          if (at >= 0) this.#gate.splice(at, 1)
          reject(signal.reason)
        },
      }
      signal.addEventListener('abort', waiter.onAbort, { once: true })
      this.#gate.push(waiter)
    })
  }
}

function isTooLarge(error: unknown): boolean {
  return error instanceof Error && error.name === 'InvalidArgumentError' && /max_payload/.test(error.message)
}

function explain(error: unknown, settings: Settings): string {
  const name = error instanceof Error ? error.name : 'error'
  // No responders: nothing captures the subject, so no stream (or no JetStream).
  if (name === 'JetStreamNotEnabled' || /no responders/i.test(errorMessage(error))) {
    return `no JetStream stream captures it: does stream ${quote(settings.jetstream?.stream)} exist, with subjects covering the exports?`
  }
  return `${name}: ${errorMessage(error)}`
}
