/**
 * createBus: checks the options, builds the parts, and returns the detached
 * functions. Each part lives in its own module behind a narrow host
 * interface: the publisher (publish.ts: sequence, clock, ids, receipts, remote
 * arrivals), the registry (subscriptions: routing, standby, stats, close),
 * retained state, request/reply, the durable engine (brought by the store) and
 * the network (links to other contexts).
 *
 * No constructor calls back into its host: the parts are wired first, and
 * `network.start()` opens the links once everything exists, so the order of
 * the declarations below carries no hidden meaning. Back-edges (the network
 * delivering into the publisher, the durable engine announcing through it)
 * are the host functions given at construction.
 */
import { createCounters } from './counters.js'
import { createReporter } from './diagnostics.js'
import { Dispatcher } from './dispatcher.js'
import { Groups } from './groups.js'
import { type EngineStore, STORE_ENGINE } from './engine.js'
import { CrossbusError, quote } from './errors.js'
import { type Handler, HandlerSubscriber } from './handler.js'
import { randomId } from './ids.js'
import { Network } from './network.js'
import { callback, duration, knownOptions, overflowPolicy, positiveInteger } from './options.js'
import { type ProcessHandler, ProcessorSubscriber, processorSettings } from './processor.js'
import { Publisher } from './publisher.js'
import { Registry, toSubscription } from './registry.js'
import { Requests } from './requests.js'
import { RetainedState } from './retained.js'
import { Router } from './router.js'
import { settleable } from './settle.js'
import { StreamSubscriber } from './stream.js'
import type { Subscriber } from './subscriber.js'
import { parsePattern } from './topic.js'
import { defaultTransports } from './transports/default.js'
import type {
  Bus,
  BusEvent,
  BusOptions,
  BusStats,
  EventMap,
  OnceOptions,
  ProcessOptions,
  ReplyOptions,
  RequestMap,
  SubscribeOptions,
  Subscription,
} from './types.js'

const DEFAULT_CAPACITY = 1024
const BUS_OPTIONS = ['name', 'transports', 'store', 'capacity', 'overflow', 'validate', 'onDiagnostic', 'closeTimeout', 'keepAlive']
const SUBSCRIBE_OPTIONS = ['capacity', 'overflow', 'signal', 'durable', 'local', 'copy', 'last', 'queue']
const PROCESS_OPTIONS = [...SUBSCRIBE_OPTIONS, 'concurrency', 'timeout', 'retry', 'deadLetter']
const REPLY_OPTIONS = [...SUBSCRIBE_OPTIONS, 'concurrency']
const ONCE_OPTIONS = ['signal', 'timeout']
const CLOSE_OPTIONS = ['timeout']
const DEFAULT_CLOSE_TIMEOUT = 5000
const RESOLVED: Promise<void> = Promise.resolve()

const asyncDisposeSymbol: typeof Symbol.asyncDispose = Symbol.asyncDispose ?? (Symbol.for('Symbol.asyncDispose') as typeof Symbol.asyncDispose)

/**
 * Creates a bus for this context. `E` maps topics to payloads (a type or an
 * interface); `R` maps request topics to `{ data, reply }`.
 *
 * @example
 * const bus = createBus<{ 'cart.updated': { items: number } }, { 'math.double': { data: number; reply: number } }>()
 * bus.subscribe('cart.*', (event) => console.log(event.data.items))
 * bus.publish('cart.updated', { items: 3 })
 * bus.reply('math.double', (event) => event.data * 2)
 * const four = await bus.request('math.double', 2)
 */
export function createBus<E extends object = EventMap, R extends object = RequestMap>(options: BusOptions = {}): Bus<E, R> {
  if (options === null || typeof options !== 'object') throw new TypeError('crossbus: createBus options must be an object')
  knownOptions('createBus', options, BUS_OPTIONS)
  const capacity = positiveInteger('capacity', options.capacity, DEFAULT_CAPACITY)
  const overflow = overflowPolicy('overflow', options.overflow, 'drop-newest')
  const closeTimeout = duration('closeTimeout', options.closeTimeout) ?? DEFAULT_CLOSE_TIMEOUT
  const report = createReporter(options.onDiagnostic)
  const id = randomId()
  const name = options.name ?? 'crossbus'
  if (typeof name !== 'string' || name.length === 0) throw new TypeError('crossbus: name must be a non-empty string')
  const transports = options.transports ?? defaultTransports()
  if (!Array.isArray(transports)) throw new TypeError('crossbus: transports must be an array')
  const store = options.store as EngineStore | undefined
  const createEngine = store?.[STORE_ENGINE]
  if (store !== undefined && typeof createEngine !== 'function') {
    throw new TypeError('crossbus: store must be a Store made by indexedDbStore(), memoryStore() or defineStore() (crossbus/store)')
  }

  const counters = createCounters()
  const dispatcher = new Dispatcher()
  /** Aborts when the bus closes: pending once() and request() reject with CLOSED. */
  const lifecycle = new AbortController()
  const router = new Router<Subscriber>()

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
            interest: () => ({ patterns: registry.patterns(), replies: requests.patterns(), groups: registry.memberships() }),
            deliver: (event) => publisher.deliverRemote(event),
            retained: (patterns) => retained.matching(patterns),
            answered: (ask, event) => retained.answered(ask, event),
            peerJoined: () => retained.peerJoined(),
            contextsGone: (ids) => {
              publisher.contextsGone(ids)
              requests.contextsGone(ids)
            },
            groupsChanged: () => publisher.groupsChanged(),
            keepAlive: options.keepAlive !== false,
          },
          transports,
        )
  const retained: RetainedState = new RetainedState(
    {
      id,
      ask: (patterns) => network?.askRetained(patterns),
      report,
      dropped(count) {
        counters.dropped += count
      },
    },
    createEngine !== undefined,
  )
  const durable =
    store === undefined || createEngine === undefined
      ? undefined
      : createEngine(
          {
            id,
            name,
            report,
            count(field, amount) {
              counters[field] += amount
            },
            announce: (position) => publisher.announceLog(position),
            restoreRetained: (events) => retained.restore(events),
          },
          store,
        )
  const groups = new Groups()
  const publisher: Publisher = new Publisher({
    id,
    counters,
    router,
    network,
    durable,
    retained,
    groups,
    validate: options.validate,
    report,
    cancel: (replyTo, reason) => requests.cancel(replyTo, reason),
  })
  const interestChanged = (): void => network?.interestChanged()
  const registry: Registry = new Registry({ counters, dispatcher, router, publisher, retained, durable, capacity, overflow, report, interestChanged })
  const requests: Requests = new Requests({ id, registry, router, publisher, network, closeSignal: lifecycle.signal, capacity, groups, interestChanged })
  network?.start()

  function subscribe(pattern: string, handler: Handler, subscribeOptions?: SubscribeOptions): Subscription {
    callback('handler', handler)
    if (subscribeOptions !== undefined) knownOptions('subscribe', subscribeOptions, SUBSCRIBE_OPTIONS)
    return toSubscription(registry.attach(pattern, subscribeOptions, (settings) => new HandlerSubscriber(registry, settings, handler)))
  }

  function process(pattern: string, handler: ProcessHandler, processOptions: ProcessOptions = {}): Subscription {
    callback('handler', handler)
    knownOptions('process', processOptions, PROCESS_OPTIONS)
    const settings = processorSettings(pattern, processOptions)
    return toSubscription(registry.attach(pattern, processOptions, (options) => new ProcessorSubscriber(registry, options, handler, settings)))
  }

  function stream(pattern: string, subscribeOptions?: SubscribeOptions): AsyncIterableIterator<BusEvent> {
    if (subscribeOptions !== undefined) knownOptions('stream', subscribeOptions, SUBSCRIBE_OPTIONS)
    const subscriber = registry.attach(pattern, subscribeOptions, (settings) => new StreamSubscriber(registry, settings))
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

  function once(pattern: string, onceOptions: OnceOptions = {}): Promise<BusEvent> {
    parsePattern(pattern)
    knownOptions('once', onceOptions, ONCE_OPTIONS)
    const timeout = duration('timeout', onceOptions.timeout)
    return settleable<BusEvent>(lifecycle.signal, onceOptions.signal, timeout, `no event matched ${quote(pattern)} within ${timeout} ms`, (resolve) => {
      const subscriber = registry.attach(pattern, { capacity: 1 }, (settings) => new HandlerSubscriber(registry, settings, resolve), {
        single: true,
        internal: true,
      })
      return () => subscriber.unsubscribe()
    })
  }

  function reply(pattern: string, handler: Handler, subscribeOptions?: ReplyOptions): Subscription {
    callback('handler', handler)
    if (subscribeOptions !== undefined) knownOptions('reply', subscribeOptions, REPLY_OPTIONS)
    return toSubscription(requests.reply(pattern, handler, subscribeOptions))
  }

  function stats(): BusStats {
    const { subscriptions, dropped } = registry.stats()
    return {
      ...counters,
      dropped: counters.dropped + dropped,
      subscriptions,
      transports: network?.stats() ?? [],
      peers: network?.peers().length ?? 0,
    }
  }

  function flush(): Promise<void> {
    if (durable === undefined) return network?.flush() ?? RESOLVED
    return Promise.all([network?.flush(), durable.flush()]).then(() => undefined)
  }

  let closing: Promise<void> | undefined
  /**
   * Graceful, with a deadline: no more publishes, subscriptions or remote events
   * at once; queued deliveries and running handlers (processors too) go on
   * until everything is idle or `timeout` passes; then what still runs sees its
   * signal abort, what is queued is dropped and counted, and the links say goodbye.
   */
  function close(closeOptions?: { timeout?: number }): Promise<void> {
    if (closeOptions !== undefined && (closeOptions === null || typeof closeOptions !== 'object')) {
      throw new TypeError('crossbus: close options must be an object')
    }
    if (closeOptions !== undefined) knownOptions('close', closeOptions, CLOSE_OPTIONS)
    const timeout = duration('timeout', closeOptions?.timeout) ?? closeTimeout
    closing ??= (async () => {
      const reason = new CrossbusError('CLOSED', 'the bus is closed')
      publisher.close()
      network?.closing()
      durable?.closing()
      // Streams end after what is queued; pending once() and request() reject with CLOSED.
      registry.closing(reason)
      lifecycle.abort(reason)
      if (timeout > 0) await untilIdle(dispatcher, timeout)
      registry.closed(reason)
      // Durable events not acked stay in the log; the acks of what was handled are written.
      await durable?.close()
      network?.close()
    })()
    return closing
  }

  const bus = {
    id,
    name,
    publish: (topic: string, data: unknown, publishOptions?: Parameters<Publisher['publish']>[2]) => publisher.publish(topic, data, publishOptions),
    subscribe,
    process,
    stream,
    once,
    request: (topic: string, data: unknown, requestOptions?: Parameters<Requests['request']>[2]) => requests.request(topic, data, requestOptions),
    reply,
    last: (topic: string) => retained.get(topic),
    peers: () => network?.peers() ?? [],
    stats,
    flush,
    close,
    [asyncDisposeSymbol]: () => close(),
  }
  return bus as unknown as Bus<E, R>
}

/** Resolves when the dispatcher is idle or after `timeout` ms, whichever comes first. */
function untilIdle(dispatcher: Dispatcher, timeout: number): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, timeout)
    void dispatcher.whenIdle().then(() => {
      clearTimeout(timer)
      resolve()
    })
  })
}
