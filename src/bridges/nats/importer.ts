/**
 * The import side of the holder: NATS messages on the import subjects become
 * local events, published into the bus (so every context of the origin gets
 * them), marked with the subject they came on so they are never exported
 * again. Refused: this origin's own events coming back (no echo), an event id
 * imported before (a repeat after the stream's de-duplication window, two
 * import patterns matching one subject), and anything malformed, which is
 * counted and reported, never thrown.
 *
 * With `jetstream.durable`, messages come from durable JetStream consumers
 * (one per import pattern: nats-server 2.9 refuses several filter subjects on
 * one consumer) and each is acked only once its event is committed to the
 * local store; otherwise from core subscriptions.
 */
import type { AckPolicy, DeliverPolicy, JetStreamClient, JetStreamManager, JsMsg } from '@nats-io/jetstream'
import type { Msg, NatsConnection, Subscription as NatsSubscription } from '@nats-io/nats-core'
import { errorMessage, isCrossbusError, quote } from '../../errors.js'
import { backoffDelay, type ResolvedRetry, sleep } from '../../retry.js'
import { matchTokens } from '../../topic.js'
import type { Bus } from '../../types.js'
import type { Counters } from './counters.js'
import { isStatusTopic, type Settings } from './options.js'
import { RecentIds } from './recent.js'
import type { NatsDiagnostic } from './types.js'
import { decodeMessage, type InboundEvent, subjectOf } from './wire.js'

/** Event ids remembered to refuse a repeat. */
export const RECENT_IDS = 16_384
/** JetStream messages a consumer holds unacked at once (pulled ahead). */
const PULL_BATCH = 256
/** Messages that failed to be stored locally come back after this. */
const NAK_DELAY_MS = 1000

const RETRY: ResolvedRetry = { attempts: Number.MAX_SAFE_INTEGER, initialDelay: 250, maxDelay: 10_000, factor: 2, jitter: true }

export interface ImportHost {
  readonly bus: Bus
  readonly settings: Settings
  readonly counters: Counters
  readonly origin: string
  report(diagnostic: NatsDiagnostic): void
  changed(): void
}

/** Names of the JetStream consumers, one per import pattern. */
export function consumerNames(settings: Settings): string[] {
  const durable = settings.jetstream?.durable
  if (durable === undefined) return []
  return settings.imports.length === 1 ? [durable] : settings.imports.map((_, index) => `${durable}_${index + 1}`)
}

export class Importer {
  readonly #host: ImportHost
  readonly #recent = new RecentIds(RECENT_IDS)
  #subscriptions: NatsSubscription[] = []
  /** Ends the JetStream consumers of the current connection. */
  #consuming: AbortController | undefined
  #stopped = false

  constructor(host: ImportHost) {
    this.#host = host
  }

  connected(connection: NatsConnection, jetstream: JetStreamClient | undefined, manager: JetStreamManager | undefined): void {
    const { settings } = this.#host
    if (settings.jetstream?.durable !== undefined && jetstream !== undefined && manager !== undefined) {
      const consuming = new AbortController()
      this.#consuming = consuming
      const names = consumerNames(settings)
      settings.imports.forEach((_, index) => void this.#consume(jetstream, manager, names[index] as string, index, consuming.signal))
      return
    }
    settings.imports.forEach(({ pattern }, index) => {
      const subject = subjectOf(settings, pattern)
      this.#subscriptions.push(
        connection.subscribe(subject, {
          callback: (error, message) => {
            if (error !== null) {
              this.#host.report({
                type: 'nats-error',
                subject,
                error,
                message: `crossbus: the NATS subscription to ${quote(subject)} failed: ${errorMessage(error)}`,
              })
              return
            }
            this.#importCore(message, index)
          },
        }),
      )
    })
  }

  disconnected(): void {
    this.#subscriptions = []
    this.#consuming?.abort()
    this.#consuming = undefined
  }

  stop(): void {
    this.#stopped = true
    for (const subscription of this.#subscriptions) subscription.unsubscribe()
    this.disconnected()
  }

  /** Checks a message; the event to publish, or undefined when it is refused or not this subscription's (already counted). */
  #accept(message: Msg | JsMsg, index: number): InboundEvent | undefined {
    const { settings, counters } = this.#host
    const event = decodeMessage(settings, settings.codec, message as Msg)
    if (typeof event === 'string') {
      counters.rejected++
      const subject = safeSubject(message)
      this.#host.report({
        type: 'bad-message',
        ...(subject === undefined ? {} : { subject }),
        message: `crossbus: the NATS bridge refused a message: ${event}`,
      })
      this.#host.changed()
      return undefined
    }
    // Another import pattern, earlier in the list, takes it.
    const tokens = event.topic.split('.')
    for (let earlier = 0; earlier < index; earlier++)
      if (matchTokens((settings.imports[earlier] as { tokens: readonly string[] }).tokens, tokens)) return undefined
    if (isStatusTopic(event.topic)) return undefined
    if (event.origin === this.#host.origin || (event.id !== undefined && this.#recent.has(event.id))) {
      counters.duplicates++
      this.#host.changed()
      return undefined
    }
    return event
  }

  /** Publishes into the bus; false when the bus refused it (reported). */
  #publish(event: InboundEvent, durable: boolean): ReturnType<Bus['publish']> | undefined {
    try {
      return this.#host.bus.publish(event.topic, event.data, durable ? { headers: event.headers, durable: true } : { headers: event.headers })
    } catch (error) {
      if (isCrossbusError(error, 'CLOSED')) return undefined
      this.#host.counters.rejected++
      this.#host.report({
        type: 'bad-message',
        topic: event.topic,
        error,
        message: `crossbus: the bus refused an event imported from NATS on ${quote(event.topic)}: ${errorMessage(error)}`,
      })
      this.#host.changed()
      return undefined
    }
  }

  #importCore(message: Msg, index: number): void {
    if (this.#stopped) return
    const event = this.#accept(message, index)
    if (event === undefined) return
    if (this.#publish(event, false) === undefined) return
    if (event.id !== undefined) this.#recent.add(event.id)
    this.#host.counters.imported++
    this.#host.changed()
  }

  #importJetStream(message: JsMsg, index: number): void {
    const event = this.#accept(message, index)
    if (event === undefined) {
      // A refused message is one the stream need not send again; a repeat or another pattern's is acked as handled.
      message.ack()
      return
    }
    const receipt = this.#publish(event, true)
    if (receipt === undefined) {
      message.term()
      return
    }
    const id = event.id
    if (id !== undefined) this.#recent.add(id)
    this.#host.counters.imported++
    this.#host.changed()
    receipt.persisted.then(
      () => message.ack(),
      (error: unknown) => {
        // Not stored: the stream sends it again, and the id must not refuse it then.
        if (id !== undefined) this.#recent.delete(id)
        this.#host.report({
          type: 'nats-error',
          topic: event.topic,
          error,
          message: `crossbus: an event imported from JetStream could not be stored (${errorMessage(error)}); the stream sends it again`,
        })
        message.nak(NAK_DELAY_MS)
      },
    )
  }

  /** One durable consumer: created if missing, then consumed until the connection ends; set-up failures are retried. */
  async #consume(jetstream: JetStreamClient, manager: JetStreamManager, name: string, index: number, signal: AbortSignal): Promise<void> {
    const { settings } = this.#host
    const stream = (settings.jetstream as { stream: string }).stream
    const filter = subjectOf(settings, (settings.imports[index] as { pattern: string }).pattern)
    for (let failures = 0; !signal.aborted; ) {
      try {
        await ensureConsumer(manager, stream, name, filter)
        const consumer = await jetstream.consumers.get(stream, name)
        if (signal.aborted) return
        const messages = await consumer.consume({ max_messages: PULL_BATCH })
        const stop = (): void => void messages.stop()
        signal.addEventListener('abort', stop, { once: true })
        failures = 0
        for await (const message of messages) {
          if (signal.aborted) break
          this.#importJetStream(message, index)
        }
        signal.removeEventListener('abort', stop)
      } catch (error) {
        if (signal.aborted) return
        failures++
        if (failures === 1) {
          this.#host.report({
            type: 'nats-error',
            subject: filter,
            error,
            message: `crossbus: JetStream consumer ${quote(name)} on stream ${quote(stream)} cannot import: ${errorMessage(error)}; it tries again`,
          })
        }
      }
      try {
        await sleep(backoffDelay(RETRY, Math.max(1, failures)), signal)
      } catch {
        return
      }
    }
  }
}

/** Creates the durable consumer if the stream has none of that name; one with another filter is an error to report. */
async function ensureConsumer(manager: JetStreamManager, stream: string, name: string, filter: string): Promise<void> {
  let existing: { config: { filter_subject?: string } } | undefined
  try {
    existing = await manager.consumers.info(stream, name)
  } catch (error) {
    if (!/consumer not found/i.test(errorMessage(error))) throw error
  }
  if (existing === undefined) {
    await manager.consumers.add(stream, {
      durable_name: name,
      filter_subject: filter,
      // The enums' values, spelled out: @nats-io/jetstream is loaded only when used (see holder.ts), and only its types here.
      ack_policy: 'explicit' as AckPolicy,
      // A consumer seen for the first time starts from the oldest message, as a durable subscription does.
      deliver_policy: 'all' as DeliverPolicy,
    })
    return
  }
  if (existing.config.filter_subject !== filter) {
    throw new Error(`it exists with filter ${quote(existing.config.filter_subject ?? '')}, not ${quote(filter)}: delete it or name another jetstream.durable`)
  }
}

function safeSubject(message: Msg | JsMsg): string | undefined {
  try {
    return typeof message.subject === 'string' ? message.subject : undefined
  } catch {
    return undefined
  }
}
