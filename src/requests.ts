import { EMPTY_HEADERS, REPLY_ERROR, REPLY_TO } from './envelope.js'
import { CrossbusError, errorFromWire, errorToWire, quote } from './errors.js'
import { ABORT_PREFIX, type Groups, replyGroupKey } from './groups.js'
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
const NO_REPLIERS: readonly string[] = Object.freeze([])
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
  /** Queue groups: what repliers elsewhere are running of this context's requests. */
  readonly groups: Groups
  /** This context's reply patterns changed: peers must hear of it. */
  interestChanged(): void
}

interface PendingRequest {
  resolve(value: unknown): void
  reject(error: unknown): void
  /** The repliers in other contexts running it: pairs of group key and context id. */
  remote: readonly string[]
  /** To send it again, to another replier, when the one running it is gone. */
  readonly topic: string
  readonly data: unknown
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
      const pending: PendingRequest = { resolve, reject, remote: NO_REPLIERS, topic, data }
      this.#pending.set(replyTo, pending)
      try {
        pending.remote = this.#send(topic, data, replyTo)
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
        // Given up (timeout, signal, close): a replier still on it is told why, here or where it runs.
        if (failure !== undefined) {
          this.cancel(replyTo, failure.reason)
          this.#abandon(pending, replyTo)
        }
      }
    })
  }

  /** Publishes a request; returns the repliers elsewhere that were given it (pairs: group key, context id). */
  #send(topic: string, data: unknown, replyTo: string): readonly string[] {
    const publisher = this.#host.publisher
    publisher.assigned = undefined
    publisher.emit(topic, data, Object.freeze({ [REPLY_TO]: replyTo }), 0)
    const assigned = publisher.assigned as readonly string[] | undefined
    if (assigned === undefined) return NO_REPLIERS
    const remote: string[] = []
    for (let index = 0; index < assigned.length; index += 2)
      if ((assigned[index] as string).startsWith('r ')) remote.push(assigned[index] as string, assigned[index + 1] as string)
    return remote
  }

  /** A request given up: the repliers elsewhere hear it (their signal aborts), and are no longer counted busy with it. */
  #abandon(pending: PendingRequest, replyTo: string): void {
    const publisher = this.#host.publisher
    for (let index = 0; index < pending.remote.length; index += 2) {
      const replier = pending.remote[index + 1] as string
      this.#host.groups.handled(pending.remote[index] as string, replier, 1)
      publisher.emit(`${ABORT_PREFIX}${replier}`, replyTo, EMPTY_HEADERS, UNCHECKED)
    }
    pending.remote = NO_REPLIERS
  }

  /**
   * Contexts that are gone: a request one of them was running goes to another
   * replier at once, or fails with NO_RESPONDERS when there is none left,
   * instead of waiting for its timeout.
   */
  contextsGone(ids: readonly string[]): void {
    for (const [replyTo, pending] of this.#pending) {
      let lost = false
      const kept: string[] = []
      for (let index = 0; index < pending.remote.length; index += 2) {
        if (ids.includes(pending.remote[index + 1] as string)) lost = true
        else kept.push(pending.remote[index] as string, pending.remote[index + 1] as string)
      }
      if (!lost) continue
      pending.remote = kept
      // Another replier, if one is there; else, with no replier left anywhere, it fails now.
      if (kept.length === 0 && this.#hasResponder(this.#host.router.tokens(pending.topic))) {
        try {
          pending.remote = this.#send(pending.topic, pending.data, replyTo)
        } catch (error) {
          pending.reject(error)
          continue
        }
      }
      if (pending.remote.length === 0 && !this.#hasLocalReplier(pending.topic)) {
        pending.reject(new CrossbusError('NO_RESPONDERS', `the replier running the request on ${quote(pending.topic)} is gone, and no other replies on it`))
      }
    }
  }

  #hasLocalReplier(topic: string): boolean {
    const tokens = this.#host.router.tokens(topic)
    for (const replyer of this.#replyers) if (replyer.active && matchTokens(replyer.tokens, tokens)) return true
    return false
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
          // Its replier elsewhere is done with it.
          for (let index = 0; index < pending.remote.length; index += 2) {
            if (pending.remote[index + 1] === event.source) this.#host.groups.handled(pending.remote[index] as string, event.source, 1)
          }
          pending.remote = NO_REPLIERS
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
