import { EMPTY_HEADERS, REPLY_ERROR, REPLY_TO } from './envelope.js'
import { CrossbusError, errorFromWire, errorToWire, quote } from './errors.js'
import { replyGroupKey } from './groups.js'
import { type Handler, HandlerSubscriber } from './handler.js'
import type { Network } from './network.js'
import { duration, knownOptions, positiveInteger } from './options.js'
import { type Publisher, UNCHECKED } from './publisher.js'
import type { Registry } from './registry.js'
import type { Router } from './router.js'
import { settleable } from './settle.js'
import type { Subscriber } from './subscriber.js'
import { checkPublishable, matchTokens } from './topic.js'
import type { ReplyOptions, RequestOptions } from './types.js'

const DEFAULT_REQUEST_TIMEOUT = 5000
const REQUEST_OPTIONS = ['timeout', 'signal']
/** Requests being answered here that can be cancelled, at most (the oldest is forgotten first). */
const MAX_ANSWERING = 4096
/** A failed reply's header: its data is an Error's wire form ('error'), or the value thrown as it is ('value'). */
const THREW_ERROR: Readonly<Record<string, string>> = Object.freeze({ [REPLY_ERROR]: 'error' })
const THREW_VALUE: Readonly<Record<string, string>> = Object.freeze({ [REPLY_ERROR]: 'value' })

/** What request/reply needs from its bus. */
export interface RequestsHost {
  /** This context's id: its inbox is `$reply.<id>.>`. */
  readonly id: string
  readonly registry: Registry
  readonly router: Router<Subscriber>
  readonly publisher: Publisher
  readonly network: Network | undefined
  /** Aborts when the bus closes: pending requests reject with CLOSED. */
  readonly closeSignal: AbortSignal
  /** Capacity of the inbox. */
  readonly capacity: number
  /** This context's reply patterns changed: peers must hear of it. */
  interestChanged(): void
}

interface PendingRequest {
  resolve(value: unknown): void
  reject(error: unknown): void
}

/**
 * Request and reply: reply handlers (advertised to peers), and requests that
 * publish with a reply-to inbox topic and wait for the first reply.
 */
export class Requests {
  readonly #host: RequestsHost
  readonly #replyers = new Set<Subscriber>()
  readonly #pending = new Map<string, PendingRequest>()
  #inbox: Subscriber | undefined
  #requests = 0
  /** Wire forms of errors thrown by this context's reply handlers → the errors themselves (a reply that stays here keeps its class). */
  readonly #thrown = new WeakMap<object, unknown>()
  /** Requests this context's repliers are running: inbox topic → what aborts the handler when its asker gives up. */
  readonly #answering = new Map<string, AbortController>()

  constructor(host: RequestsHost) {
    this.#host = host
  }

  /**
   * Answers requests on `pattern`: the handler's return value is the reply, its
   * failure a failed reply. Its repliers with the same queue name (in every
   * context) share the requests: one of them runs each. Its handler's signal
   * aborts when the asker gives up (its signal, its timeout) or the bus closes;
   * an abandoned request frees its slot at once.
   */
  reply(pattern: string, handler: Handler, options?: ReplyOptions): Subscriber {
    const publisher = this.#host.publisher
    const concurrency = positiveInteger('concurrency', options?.concurrency, 1)
    const answer: Handler = (event, context) => {
      const replyTo = event.headers[REPLY_TO]
      if (replyTo === undefined) return handler(event, context)
      const abandoned = new AbortController()
      if (this.#answering.size >= MAX_ANSWERING) this.#answering.delete(this.#answering.keys().next().value as string)
      this.#answering.set(replyTo, abandoned)
      const signal = AbortSignal.any([context.signal, abandoned.signal])
      const settled = Promise.resolve()
        .then(() => handler(event, { signal }))
        .then(
          (value) => {
            if (!signal.aborted) publisher.emit(replyTo, value, EMPTY_HEADERS, UNCHECKED)
          },
          (error: unknown) => {
            if (signal.aborted) return
            // An Error crosses as data that keeps its shape (name, message, stack, cause, own fields); any other value as itself.
            const wire = errorToWire(error)
            if (wire !== error && typeof wire === 'object' && wire !== null) this.#thrown.set(wire, error)
            publisher.emit(replyTo, wire, wire === error ? THREW_VALUE : THREW_ERROR, UNCHECKED)
            throw error
          },
        )
      // Abandoned (the asker gave up, the bus closed): the slot is free at once, whatever the handler still does.
      const released = new Promise<void>((resolve) => signal.addEventListener('abort', () => resolve(), { once: true }))
      return Promise.race([settled, released]).finally(() => {
        if (this.#answering.get(replyTo) === abandoned) this.#answering.delete(replyTo)
      })
    }
    const registry = this.#host.registry
    const group = replyGroupKey(options?.queue ?? '')
    const subscriber = registry.attach(pattern, options, (settings) => new HandlerSubscriber(registry, settings, answer, concurrency), { group })
    if (subscriber.active) {
      this.#replyers.add(subscriber)
      subscriber.onEnd(() => this.#replyers.delete(subscriber))
      if (!subscriber.local) this.#host.interestChanged()
    }
    return subscriber
  }

  /** The asker of `replyTo` gave up: its replier here (if it runs it) sees its signal abort. */
  cancel(replyTo: string, reason: unknown): void {
    this.#answering.get(replyTo)?.abort(reason)
  }

  /** This context's reply patterns that other contexts' requests may reach. */
  patterns(): string[] {
    const replies = new Set<string>()
    for (const replyer of this.#replyers) if (!replyer.local) replies.add(replyer.pattern)
    return [...replies]
  }

  request(topic: string, data: unknown, options: RequestOptions = {}): Promise<unknown> {
    checkPublishable(topic)
    const host = this.#host
    const tokens = host.router.tokens(topic)
    knownOptions('request', options, REQUEST_OPTIONS)
    const timeout = duration('timeout', options.timeout) ?? DEFAULT_REQUEST_TIMEOUT
    const network = host.network
    const noResponders = (): CrossbusError => new CrossbusError('NO_RESPONDERS', `no reply handler matches ${quote(topic)}`)
    // Starting up, the peers' reply patterns may not be known yet: the request goes out and waits for discovery.
    if (!host.closeSignal.aborted && !this.#hasResponder(tokens) && network?.discovering !== true) return Promise.reject(noResponders())
    return settleable(host.closeSignal, options.signal, timeout, `no reply to ${quote(topic)} within ${timeout} ms`, (resolve, reject) => {
      this.#openInbox()
      const replyTo = `$reply.${host.id}.${++this.#requests}`
      this.#pending.set(replyTo, { resolve, reject })
      try {
        host.publisher.emit(topic, data, Object.freeze({ [REPLY_TO]: replyTo }), 0)
      } catch (error) {
        this.#pending.delete(replyTo)
        throw error
      }
      if (network?.discovering && !this.#hasResponder(tokens)) {
        void network.discovered().then(() => {
          if (this.#pending.has(replyTo) && !this.#hasResponder(tokens)) reject(noResponders())
        })
      }
      return (failure) => {
        this.#pending.delete(replyTo)
        // Settled: no reply is taken for it any more (a late or forged one is dropped at the link).
        network?.settled(replyTo)
        // Given up (timeout, signal, close): a replier still on it is told why.
        if (failure !== undefined) this.cancel(replyTo, failure.reason)
      }
    })
  }

  #hasResponder(tokens: readonly string[]): boolean {
    for (const replyer of this.#replyers) if (matchTokens(replyer.tokens, tokens)) return true
    return this.#host.network?.hasResponder(tokens) ?? false
  }

  #openInbox(): void {
    if (this.#inbox !== undefined) return
    const registry = this.#host.registry
    this.#inbox = registry.attach(
      `$reply.${this.#host.id}.>`,
      { capacity: this.#host.capacity },
      (settings) =>
        new HandlerSubscriber(registry, settings, (event) => {
          const pending = this.#pending.get(event.topic)
          if (pending === undefined) return
          const failure = event.headers[REPLY_ERROR]
          if (failure === undefined) pending.resolve(event.data)
          // A reply from this context carries the very error thrown; one from another context, its wire form.
          else if (failure === 'error') pending.reject(this.#thrown.get(event.data as object) ?? errorFromWire(event.data))
          else pending.reject(event.data)
        }),
      { internal: true },
    )
  }
}
