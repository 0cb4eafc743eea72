import { cloneError } from './cloneable.js'
import { createReporter } from './diagnostics.js'
import { Dispatcher } from './dispatcher.js'
import { type Batch, DurableLog, storedEvent } from './durable.js'
import { EMPTY_HEADERS as NO_HEADERS, Envelope, isDurable, markDurable, REPLY_TO } from './envelope.js'
import { createEventIds } from './event-id.js'
import { CrossbusError, quote } from './errors.js'
import type { Overflow } from './queue.js'
import { resolveRetry, abortReason } from './retry.js'
import { Network } from './network.js'
import { Router } from './router.js'
import { defaultTransports } from './transports/default.js'
import {
  type Counters,
  type Handler,
  HandlerSubscriber,
  type ProcessHandler,
  ProcessorSubscriber,
  StreamSubscriber,
  type Subscriber,
  type SubscriberHost,
  type SubscriberOptions,
} from './subscription.js'
import { isReserved, matchTokens, parsePattern } from './topic.js'
import type {
  Bus,
  BusEvent,
  BusOptions,
  BusStats,
  EventMap,
  OnceOptions,
  PeerInfo,
  ProcessOptions,
  PublishOptions,
  Receipt,
  RequestOptions,
  Store,
  SubscribeOptions,
  Subscription,
} from './types.js'

/** Header carrying the inbox topic a reply goes to. */
export const REPLY_TO_HEADER: string = REPLY_TO
/** Header set on a reply whose handler failed; the reply's data is the error. */
export const REPLY_ERROR_HEADER = 'x-crossbus-error'

const DEFAULT_CAPACITY = 1024
const DEFAULT_REQUEST_TIMEOUT = 5000
/** Reserved topic on which a context says its durable log grew (data: the last position). */
const LOG_TOPIC = '$log.appended'
/** Publishes that may share one Date.now() reading within a task (a few microseconds at most). */
const CLOCK_READS_SHARED = 128

const RESOLVED: Promise<void> = Promise.resolve()

const disposeSymbol: typeof Symbol.dispose = Symbol.dispose ?? (Symbol.for('Symbol.dispose') as typeof Symbol.dispose)
const asyncDisposeSymbol: typeof Symbol.asyncDispose = Symbol.asyncDispose ?? (Symbol.for('Symbol.asyncDispose') as typeof Symbol.asyncDispose)

function checkCapacity(name: string, value: number | undefined, fallback: number): number {
  if (value === undefined) return fallback
  if (!Number.isInteger(value) || value < 1) throw new TypeError(`crossbus: ${name} must be an integer >= 1, got ${String(value)}`)
  return value
}

function checkOverflow(value: Overflow | undefined, fallback: Overflow): Overflow {
  if (value === undefined) return fallback
  if (value !== 'drop-newest' && value !== 'drop-oldest') {
    throw new TypeError(`crossbus: overflow must be 'drop-newest' or 'drop-oldest', got ${String(value)}`)
  }
  return value
}

/** A frozen copy of string-valued headers; anything else is a TypeError (a peer would refuse the whole batch). */
function checkHeaders(headers: Record<string, string>): Readonly<Record<string, string>> {
  if (headers === null || typeof headers !== 'object') throw new TypeError('crossbus: headers must be an object of strings')
  for (const key in headers) {
    if (typeof headers[key] !== 'string') throw new TypeError(`crossbus: header ${quote(key)} must be a string, got ${typeof headers[key]}`)
  }
  return Object.freeze({ ...headers })
}

function checkFunction(name: string, value: unknown): void {
  if (typeof value !== 'function') throw new TypeError(`crossbus: ${name} must be a function, got ${typeof value}`)
}

function checkTimeout(name: string, value: number | undefined): number | undefined {
  if (value === undefined) return undefined
  if (typeof value !== 'number' || !(value >= 0)) throw new TypeError(`crossbus: ${name} must be a number >= 0, got ${String(value)}`)
  return value
}

/** A random id that is a valid topic token: base36, no dots. */
function createId(): string {
  const bytes = new Uint8Array(8)
  if (typeof crypto === 'object' && typeof crypto.getRandomValues === 'function') crypto.getRandomValues(bytes)
  else for (let index = 0; index < bytes.length; index++) bytes[index] = Math.floor(Math.random() * 256)
  let id = ''
  for (const byte of bytes) id += (byte % 36).toString(36)
  return id
}

/** The receipt; `id` is built only when asked for, which most publishers never do. */
class PublishReceipt implements Receipt {
  readonly queued: number
  readonly dropped: number
  /** @internal */
  readonly ids: (seq: number) => string
  /** @internal */
  readonly seq: number
  /** @internal The append transaction of a durable event. */
  readonly batch: Batch | undefined

  constructor(ids: (seq: number) => string, seq: number, queued: number, dropped: number, batch: Batch | undefined) {
    this.ids = ids
    this.seq = seq
    this.queued = queued
    this.dropped = dropped
    this.batch = batch
  }

  get id(): string {
    return this.ids(this.seq)
  }

  get persisted(): Promise<void> {
    return this.batch === undefined ? RESOLVED : this.batch.promise
  }
}

/** A Store, or a TypeError naming what is missing. */
function checkStore(store: Store | undefined): Store | undefined {
  if (store === undefined) return undefined
  for (const method of ['append', 'read', 'retained', 'register', 'ack', 'compact'] as const) {
    if (typeof (store as Partial<Store> | null)?.[method] !== 'function') {
      throw new TypeError(`crossbus: store must be a Store (indexedDbStore() or memoryStore()); it has no ${method}()`)
    }
  }
  return store
}

interface PendingRequest {
  resolve(value: unknown): void
  reject(error: unknown): void
}

/**
 * Creates a bus for this context.
 *
 * @example
 * const bus = createBus<{ 'cart.updated': { items: number } }>()
 * bus.subscribe('cart.*', (event) => console.log(event.data.items))
 * bus.publish('cart.updated', { items: 3 })
 */
export function createBus<E extends EventMap = EventMap>(options: BusOptions = {}): Bus<E> {
  if (options === null || typeof options !== 'object') throw new TypeError('crossbus: createBus options must be an object')
  const defaultCapacity = checkCapacity('capacity', options.capacity, DEFAULT_CAPACITY)
  const defaultOverflow = checkOverflow(options.overflow, 'drop-newest')
  const report = createReporter(options.onDiagnostic)
  const id = createId()
  const name = options.name ?? 'crossbus'
  if (typeof name !== 'string' || name.length === 0) throw new TypeError('crossbus: name must be a non-empty string')
  const transports = options.transports ?? defaultTransports()
  if (!Array.isArray(transports)) throw new TypeError('crossbus: transports must be an array')
  /** true: every publish; undefined (default): publishes that a link takes; false: never. */
  const validate = options.validate
  const eventId = createEventIds(id)
  const counters: Counters = {
    published: 0,
    delivered: 0,
    dropped: 0,
    failed: 0,
    retried: 0,
    deadLettered: 0,
    received: 0,
    rejected: 0,
    stored: 0,
    evicted: 0,
  }
  const router = new Router<Subscriber>()
  const dispatcher = new Dispatcher()
  const closeController = new AbortController()
  const retained = new Map<string, BusEvent>()
  /** Retained topics whose last event was published with `local: true`. */
  const localRetained = new Set<string>()
  const replyers = new Set<Subscriber>()
  const pendingRequests = new Map<string, PendingRequest>()
  let inbox: Subscriber | undefined
  let requestSeq = 0
  let seq = 0
  let closed = false
  let closing: Promise<void> | undefined
  /** Retained-state requests to peers: ask number → the `last: true` subscription waiting. */
  const retainedAsks = new Map<number, Subscriber>()
  /** `last: true` subscriptions that found nothing retained here; asked again when a peer joins. */
  const waitingForRetained = new Set<Subscriber>()

  // Date.now() costs as much as the rest of a publish; a burst in one task shares a reading.
  let clockTime = 0
  let clockReadsLeft = 0
  const resetClock = (): void => {
    clockReadsLeft = 0
  }
  const timestamp = (): number => {
    if (clockReadsLeft <= 0) {
      clockTime = Date.now()
      clockReadsLeft = CLOCK_READS_SHARED
      queueMicrotask(resetClock)
    }
    clockReadsLeft--
    return clockTime
  }

  const host: SubscriberHost = {
    counters,
    dispatcher,
    report,
    detach(subscriber) {
      router.remove(subscriber)
      replyers.delete(subscriber)
      if (waitingForRetained.delete(subscriber)) {
        for (const [ask, asker] of retainedAsks) if (asker === subscriber) retainedAsks.delete(ask)
      }
      network?.interestChanged()
    },
    publishInternal(topic, data, headers, durable) {
      emit(topic, data, Object.freeze(headers), false, false, false, durable && durableLog !== undefined)
    },
  }

  const store = checkStore(options.store)
  /** The durable log; absent without a store. */
  const durableLog: DurableLog | undefined =
    store === undefined
      ? undefined
      : new DurableLog(
          {
            name,
            report,
            count(field, amount) {
              counters[field] += amount
            },
            announce(position) {
              // Straight to the links that want it: local consumers were told already, and it is not app traffic.
              if (network === undefined) return
              const links = network.linksFor(LOG_TOPIC, router.tokens(LOG_TOPIC))
              if (links.length === 0) return
              const eventSeq = ++seq
              network.send(new Envelope(eventId(eventSeq), LOG_TOPIC, position, id, eventSeq, timestamp(), NO_HEADERS, false), links)
            },
          },
          store,
        )
  /**
   * Makes peers send their commits' announcements here while this context has
   * durable subscriptions (deliverRemote takes them before routing).
   */
  let logWatcher: Subscriber | undefined
  function watchLog(): void {
    if (logWatcher === undefined || !logWatcher.active) {
      logWatcher = attach(LOG_TOPIC, { capacity: 1 }, (settings) => new HandlerSubscriber(host, settings, () => {}), { internal: true })
    }
  }
  /** Durable subscriptions waiting for their consumer's lock: not routed yet, but in stats and closed with the bus. */
  const standby = new Set<Subscriber>()

  /** Links to other contexts; absent when there are no transports. */
  const network: Network | undefined =
    transports.length === 0
      ? undefined
      : new Network(
          {
            id,
            name,
            report,
            count(field, amount = 1) {
              counters[field] += amount
            },
            interest() {
              const patterns = new Set<string>()
              for (const subscriber of router.all()) if (!subscriber.local) patterns.add(subscriber.pattern)
              const replies = new Set<string>()
              for (const replyer of replyers) if (!replyer.local) replies.add(replyer.pattern)
              return { patterns: [...patterns], replies: [...replies] }
            },
            deliver: deliverRemote,
            retained(patterns) {
              const found: BusEvent[] = []
              for (const [topic, event] of retained) {
                if (localRetained.has(topic)) continue
                const tokens = router.tokens(topic)
                if (patterns.some((pattern) => matchTokens(pattern, tokens))) found.push(event)
              }
              return found
            },
            isRetained: (event) => retained.size > 0 && retained.get(event.topic) === event,
            answered(ask, event) {
              // Wire input: a malformed topic, or one the asking subscription does not match, is refused.
              let tokens: readonly string[]
              try {
                tokens = router.tokens(event.topic)
              } catch {
                return false
              }
              const subscriber = retainedAsks.get(ask)
              if (subscriber === undefined || !subscriber.active || !matchTokens(subscriber.tokens, tokens)) return true
              if (!retained.has(event.topic)) retained.set(event.topic, event)
              // The first answer ends the wait: later peers are not asked again for this subscription.
              waitingForRetained.delete(subscriber)
              subscriber.offer(event)
              return true
            },
            peerJoined() {
              for (const subscriber of waitingForRetained) askRetained(subscriber)
            },
          },
          transports,
        )

  /** Asks peers (and waits for the store) for the retained events a `last: true` subscription should start from. */
  function askRetained(subscriber: Subscriber): void {
    if (network === undefined && storedRetained === undefined) return
    waitingForRetained.add(subscriber)
    if (network !== undefined) retainedAsks.set(network.askRetained([subscriber.pattern]), subscriber)
  }

  /** Retained durable events outlive the page: loaded from the store once, at start. */
  let storedRetained: Promise<void> | undefined = store
    ?.retained()
    .then((events) => {
      storedRetained = undefined
      for (const stored of events) {
        // Something newer arrived meanwhile.
        if (retained.has(stored.topic) || closed) continue
        const event = storedEvent(stored, false)
        retained.set(stored.topic, event)
        const tokens = router.tokens(stored.topic)
        for (const subscriber of waitingForRetained) {
          if (!subscriber.active || !matchTokens(subscriber.tokens, tokens)) continue
          subscriber.offer(event)
          waitingForRetained.delete(subscriber)
        }
      }
    })
    .catch((error: unknown) => {
      storedRetained = undefined
      report({ type: 'storage-error', error, message: `crossbus: could not load retained events from the store: ${String(error)}` })
    })

  /** An event from another context: to local subscriptions (not `local: true` ones); false for an invalid topic. */
  function deliverRemote(event: BusEvent, retain: boolean): boolean {
    if (event.topic === LOG_TOPIC) {
      durableLog?.grew()
      return true
    }
    let targets: readonly Subscriber[]
    try {
      targets = router.route(event.topic).targets
    } catch {
      return false
    }
    for (const target of targets) {
      if (target.local) continue
      // A durable subscription reads durable events from the store, where they are in order and acked.
      if (target.durable !== undefined && isDurable(event)) continue
      target.offer(event)
      if (target.single) {
        router.remove(target)
        network?.interestChanged()
      }
    }
    if (retain) {
      retained.set(event.topic, event)
      localRetained.delete(event.topic)
    }
    return true
  }

  function ensureOpen(): void {
    if (closed) throw new CrossbusError('CLOSED', 'the bus is closed')
  }

  function checkCloneable(topic: string, data: unknown): void {
    const error = cloneError(data)
    if (error !== undefined) {
      throw new CrossbusError('NOT_CLONEABLE', `the data published on ${quote(topic)} cannot be structured-cloned`, { cause: error })
    }
  }

  /** The one publish path: validated topic, bounded queues, never a handler call. */
  function emit(
    topic: string,
    data: unknown,
    headers: Readonly<Record<string, string>>,
    retain: boolean,
    check: boolean,
    local: boolean,
    durable: boolean,
  ): Receipt {
    const { targets, tokens } = router.route(topic)
    // Links are chosen once: the choice decides validation, and the same links then get the event.
    const links = network === undefined || local ? undefined : network.linksFor(topic, tokens)
    const crossing = links !== undefined && links.length > 0
    if (check && (validate === true || (validate === undefined && (crossing || durable)))) checkCloneable(topic, data)
    const eventSeq = ++seq
    counters.published++
    let event: BusEvent | undefined
    if (durable) markDurable((event = new Envelope(eventId(eventSeq), topic, data, id, eventSeq, timestamp(), headers, false)))
    let queued = 0
    let dropped = 0
    for (let index = 0; index < targets.length; index++) {
      const target = targets[index] as Subscriber
      // Durable subscriptions take durable events from the store.
      if (durable && target.durable !== undefined) continue
      const queue = target.queue
      if (queue.full) {
        dropped++
        if (target.overflow === 'drop-newest') {
          // Only the first drop of a report needs its event id.
          target.recordDrop(topic, target.unreportedDrops === 0 ? eventId(eventSeq) : '')
          continue
        }
        target.evict()
      }
      event ??= new Envelope(eventId(eventSeq), topic, data, id, eventSeq, timestamp(), headers, false)
      queue.push(event)
      queued++
      if (!target.scheduled) dispatcher.schedule(target)
      if (target.single) {
        router.remove(target)
        network?.interestChanged()
      }
    }
    if (crossing || retain) event ??= new Envelope(eventId(eventSeq), topic, data, id, eventSeq, timestamp(), headers, false)
    if (retain) {
      retained.set(topic, event as BusEvent)
      // A local event stays local, retained or not: peers asking for retained state do not get it.
      if (local) localRetained.add(topic)
      else localRetained.delete(topic)
    }
    if (crossing) {
      const sent = (network as Network).send(event as BusEvent, links)
      queued += sent.queued
      dropped += sent.dropped
    }
    const batch = durable ? (durableLog as DurableLog).append(event as BusEvent, retain) : undefined
    return new PublishReceipt(eventId, eventSeq, queued, dropped, batch)
  }

  /** Reserved topics are the bus's own. */
  function checkPublishable(topic: string): void {
    if (typeof topic === 'string' && isReserved(topic)) {
      throw new CrossbusError('INVALID_TOPIC', `invalid topic ${quote(topic)}: a first token starting with $ is reserved for the bus`)
    }
  }

  function publish(topic: string, data: unknown, publishOptions?: PublishOptions): Receipt {
    if (closed) ensureOpen()
    if (typeof topic === 'string' && topic.charCodeAt(0) === 36 /* $ */) checkPublishable(topic)
    if (publishOptions === undefined) return emit(topic, data, NO_HEADERS, false, true, false, false)
    const durable = publishOptions.durable === true
    if (durable && durableLog === undefined) {
      router.route(topic)
      throw new CrossbusError('NO_STORE', 'durable publish needs a store: pass createBus({ store })')
    }
    // The store is shared by every context of the origin: a durable event cannot stay in this one.
    if (durable && publishOptions.local === true) throw new TypeError('crossbus: a publish cannot be both durable and local')
    const headers = publishOptions.headers === undefined ? NO_HEADERS : checkHeaders(publishOptions.headers)
    return emit(topic, data, headers, publishOptions.retain === true, true, publishOptions.local === true, durable)
  }

  /** The durable consumer name of a subscription, checked; undefined for others. */
  function checkDurable(subscribeOptions: SubscribeOptions | undefined): string | undefined {
    const durable = subscribeOptions?.durable
    if (durable === undefined) return undefined
    if (durableLog === undefined) throw new CrossbusError('NO_STORE', `durable subscription ${quote(String(durable))} needs a store: pass createBus({ store })`)
    if (typeof durable !== 'string' || durable.length === 0)
      throw new TypeError(`crossbus: durable must be a non-empty consumer name, got ${quote(String(durable))}`)
    if (subscribeOptions?.local === true) {
      throw new TypeError(`crossbus: durable subscription ${quote(durable)} cannot be local: a replay comes from contexts that are gone`)
    }
    return durable
  }

  /** Shared set-up of every kind of subscription: validation, signal, routing, retained events. */
  function attach<S extends Subscriber>(
    pattern: string,
    subscribeOptions: SubscribeOptions | undefined,
    create: (settings: SubscriberOptions) => S,
    extra: { internal?: boolean; single?: boolean } = {},
  ): S {
    const tokens = parsePattern(pattern)
    ensureOpen()
    const signal = subscribeOptions?.signal
    const durable = checkDurable(subscribeOptions)
    const subscriber = create({
      pattern,
      tokens,
      capacity: checkCapacity('capacity', subscribeOptions?.capacity, defaultCapacity),
      overflow: checkOverflow(subscribeOptions?.overflow, defaultOverflow),
      local: subscribeOptions?.local === true,
      copy: subscribeOptions?.copy === true,
      durable,
      internal: extra.internal === true,
      single: extra.single === true,
    })
    if (signal?.aborted) {
      subscriber.active = false
      return subscriber
    }
    if (signal !== undefined) {
      const onAbort = (): void => subscriber.unsubscribe(abortReason(signal))
      signal.addEventListener('abort', onAbort, { once: true })
      subscriber.onEnd(() => signal.removeEventListener('abort', onAbort))
    }
    const last = subscribeOptions?.last === true
    if (durable === undefined) route(subscriber, last)
    else {
      // Routed once it holds its consumer's lock and knows its cursor.
      subscriber.standby = true
      standby.add(subscriber)
      subscriber.onEnd(() => standby.delete(subscriber))
      ;(durableLog as DurableLog).consume(subscriber, durable, () => {
        subscriber.standby = false
        standby.delete(subscriber)
        route(subscriber, last)
        watchLog()
      })
    }
    return subscriber
  }

  /** Puts a subscription in routing, tells peers, and gives a `last: true` one the retained events. */
  function route(subscriber: Subscriber, last: boolean): void {
    router.add(subscriber)
    network?.interestChanged()
    if (!last) return
    let found = false
    for (const [topic, event] of retained) {
      // A local subscription starts from this context's own retained events only.
      if (subscriber.local && event.source !== id) continue
      if (matchTokens(subscriber.tokens, router.tokens(topic))) {
        subscriber.offer(event)
        found = true
      }
    }
    // Nothing here: ask the peers (and the store), now and whenever one joins, until one answers.
    if (!found && !subscriber.local) askRetained(subscriber)
  }

  function toSubscription(subscriber: Subscriber): Subscription {
    const unsubscribe = (): void => subscriber.unsubscribe()
    return {
      pattern: subscriber.pattern,
      unsubscribe,
      stats: () => subscriber.stats(),
      [disposeSymbol]: unsubscribe,
    }
  }

  function subscribe(pattern: string, handler: Handler, subscribeOptions?: SubscribeOptions): Subscription {
    checkFunction('handler', handler)
    return toSubscription(attach(pattern, subscribeOptions, (settings) => new HandlerSubscriber(host, settings, handler)))
  }

  function process(pattern: string, handler: ProcessHandler, processOptions: ProcessOptions = {}): Subscription {
    checkFunction('handler', handler)
    const concurrency = checkCapacity('concurrency', processOptions.concurrency, 1)
    const timeout = checkTimeout('timeout', processOptions.timeout)
    const retry = resolveRetry(processOptions.retry)
    const { deadLetter } = processOptions
    if (typeof deadLetter === 'string') {
      if (matchTokens(parsePattern(pattern), router.tokens(deadLetter))) {
        throw new CrossbusError(
          'INVALID_TOPIC',
          `deadLetter ${quote(deadLetter)} matches the processor's own pattern ${quote(pattern)}: its dead letters would come back to it`,
        )
      }
    } else if (deadLetter !== undefined) checkFunction('deadLetter', deadLetter)
    const subscriber = attach(
      pattern,
      processOptions,
      (settings) => new ProcessorSubscriber(host, settings, handler, { concurrency, timeout, retry, deadLetter }),
    )
    return toSubscription(subscriber)
  }

  function stream(pattern: string, subscribeOptions?: SubscribeOptions): AsyncIterableIterator<BusEvent> {
    const subscriber = attach(pattern, subscribeOptions, (settings) => new StreamSubscriber(host, settings))
    const iterator: AsyncIterableIterator<BusEvent> = {
      next: () => subscriber.next(),
      return: (value?: unknown) => {
        subscriber.release()
        subscriber.unsubscribe()
        return Promise.resolve({ done: true, value: value as undefined })
      },
      [Symbol.asyncIterator]: () => iterator,
    }
    return iterator
  }

  /**
   * A promise that `start` settles, or that rejects with TIMEOUT, with the
   * signal's reason, or with CLOSED; `start` returns its clean-up, run once.
   */
  function settleable<T>(
    signal: AbortSignal | undefined,
    timeout: number | undefined,
    timeoutMessage: string,
    start: (resolve: (value: T) => void, reject: (error: unknown) => void) => () => void,
  ): Promise<T> {
    if (closed) return Promise.reject(new CrossbusError('CLOSED', 'the bus is closed'))
    if (signal?.aborted) return Promise.reject(abortReason(signal))
    return new Promise<T>((resolve, reject) => {
      let settled = false
      let cleanup = (): void => {}
      const closeSignal = closeController.signal
      const finish =
        <V>(settle: (value: V) => void) =>
        (value: V): void => {
          if (settled) return
          settled = true
          clearTimeout(timer)
          signal?.removeEventListener('abort', onAbort)
          closeSignal.removeEventListener('abort', onClose)
          cleanup()
          settle(value)
        }
      const done = finish(resolve)
      const fail = finish(reject)
      const onAbort = (): void => fail(abortReason(signal as AbortSignal))
      const onClose = (): void => fail(new CrossbusError('CLOSED', 'the bus closed'))
      const timer = timeout === undefined ? undefined : setTimeout(() => fail(new CrossbusError('TIMEOUT', timeoutMessage)), timeout)
      signal?.addEventListener('abort', onAbort, { once: true })
      closeSignal.addEventListener('abort', onClose, { once: true })
      try {
        cleanup = start(done, fail)
      } catch (error) {
        fail(error)
      }
      if (settled) cleanup()
    })
  }

  function once(pattern: string, onceOptions: OnceOptions = {}): Promise<BusEvent> {
    parsePattern(pattern)
    const timeout = checkTimeout('timeout', onceOptions.timeout)
    return settleable<BusEvent>(onceOptions.signal, timeout, `no event matched ${quote(pattern)} within ${timeout} ms`, (resolve) => {
      const subscriber = attach(pattern, { capacity: 1 }, (settings) => new HandlerSubscriber(host, settings, resolve), {
        single: true,
        internal: true,
      })
      return () => subscriber.unsubscribe()
    })
  }

  function reply(pattern: string, handler: (event: BusEvent) => unknown, subscribeOptions?: SubscribeOptions): Subscription {
    checkFunction('handler', handler)
    const answer: Handler = (event) => {
      const replyTo = event.headers[REPLY_TO_HEADER]
      if (replyTo === undefined) return handler(event)
      return Promise.resolve()
        .then(() => handler(event))
        .then(
          (value) => emit(replyTo, value, NO_HEADERS, false, false, false, false),
          (error: unknown) => {
            emit(replyTo, error, Object.freeze({ [REPLY_ERROR_HEADER]: error instanceof Error ? error.message : String(error) }), false, false, false, false)
            throw error
          },
        )
    }
    const subscriber = attach(pattern, subscribeOptions, (settings) => new HandlerSubscriber(host, settings, answer))
    if (subscriber.active) {
      replyers.add(subscriber)
      network?.interestChanged()
    }
    return toSubscription(subscriber)
  }

  function hasResponder(topicTokens: readonly string[]): boolean {
    for (const replyer of replyers) if (matchTokens(replyer.tokens, topicTokens)) return true
    return network?.hasResponder(topicTokens) ?? false
  }

  function openInbox(): void {
    if (inbox !== undefined) return
    inbox = attach(
      `$reply.${id}.>`,
      { capacity: defaultCapacity },
      (settings) =>
        new HandlerSubscriber(host, settings, (event) => {
          const pending = pendingRequests.get(event.topic)
          if (pending === undefined) return
          const failure = event.headers[REPLY_ERROR_HEADER]
          if (failure === undefined) pending.resolve(event.data)
          else pending.reject(event.data instanceof Error ? event.data : new Error(failure))
        }),
      { internal: true },
    )
  }

  function request(topic: string, data: unknown, requestOptions: RequestOptions = {}): Promise<unknown> {
    checkPublishable(topic)
    const tokens = router.tokens(topic)
    const timeout = checkTimeout('timeout', requestOptions.timeout) ?? DEFAULT_REQUEST_TIMEOUT
    if (!closed && !hasResponder(tokens)) {
      return Promise.reject(new CrossbusError('NO_RESPONDERS', `no reply handler matches ${quote(topic)}`))
    }
    return settleable(requestOptions.signal, timeout, `no reply to ${quote(topic)} within ${timeout} ms`, (resolve, reject) => {
      openInbox()
      const replyTo = `$reply.${id}.${++requestSeq}`
      pendingRequests.set(replyTo, { resolve, reject })
      try {
        emit(topic, data, Object.freeze({ [REPLY_TO_HEADER]: replyTo }), false, true, false, false)
      } catch (error) {
        pendingRequests.delete(replyTo)
        throw error
      }
      return () => pendingRequests.delete(replyTo)
    })
  }

  function stats(): BusStats {
    const subscriptions = []
    let dropped = counters.dropped
    for (const subscriber of router.all()) {
      dropped += subscriber.dropped
      if (!subscriber.internal) subscriptions.push(subscriber.stats())
    }
    for (const subscriber of standby) subscriptions.push(subscriber.stats())
    return {
      ...counters,
      dropped,
      subscriptions,
      transports: network?.stats() ?? [],
      peers: network?.peers().length ?? 0,
    }
  }

  function peers(): PeerInfo[] {
    return network?.peers() ?? []
  }

  function flush(): Promise<void> {
    if (durableLog === undefined) return network?.flush() ?? RESOLVED
    return Promise.all([network?.flush(), durableLog.flush()]).then(() => undefined)
  }

  function close(): Promise<void> {
    if (closing !== undefined) return closing
    closed = true
    closing = (async () => {
      const reason = new CrossbusError('CLOSED', 'the bus is closed')
      // Processors and their backoff waits stop now; handlers keep draining what is queued.
      for (const subscriber of router.all()) {
        if (subscriber instanceof ProcessorSubscriber) {
          for (const event of subscriber.queue.drain()) subscriber.recordDrop(event.topic, event.id)
          subscriber.unsubscribe(reason)
        }
      }
      closeController.abort(reason)
      for (const subscriber of router.all()) if (subscriber instanceof StreamSubscriber) subscriber.end()
      await dispatcher.whenIdle()
      for (const subscriber of router.all()) if (!(subscriber instanceof StreamSubscriber)) subscriber.unsubscribe(reason)
      for (const subscriber of standby) subscriber.unsubscribe(reason)
      // Durable subscriptions waiting for their lock are not routed yet; their last acks are written.
      await durableLog?.close()
      network?.close()
    })()
    return closing
  }

  const bus = {
    id,
    publish,
    subscribe,
    process,
    stream,
    once,
    request,
    reply,
    peers,
    stats,
    flush,
    close,
    [asyncDisposeSymbol]: close,
  }
  return bus as unknown as Bus<E>
}
