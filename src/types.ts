import type { ErrorCode } from './errors.js'
import type { Overflow } from './queue.js'
import type { RetryOptions } from './retry.js'
import type { Endpoint, EndpointSource, Transport } from './seams.js'

export type { Endpoint, EndpointSource, ErrorCode, Overflow, RetryOptions, Transport }

/**
 * Topic → payload map of a typed bus: a type or an interface. The untyped bus
 * uses `Record<string, unknown>`.
 */
export type EventMap = Record<string, unknown>

/**
 * Request topic → the data a request carries and the reply it gets, for a
 * typed request/reply: `{ 'math.double': { data: number; reply: number } }`.
 * The untyped bus uses `Record<string, { data: unknown; reply: unknown }>`.
 */
export type RequestMap = Record<string, { data: unknown; reply: unknown }>

/** A read-only view of a payload: local subscribers share one object by reference. */
export type DeepReadonly<T> = T extends (...args: never[]) => unknown
  ? T
  : T extends ReadonlyMap<infer K, infer V>
    ? ReadonlyMap<DeepReadonly<K>, DeepReadonly<V>>
    : T extends ReadonlySet<infer V>
      ? ReadonlySet<DeepReadonly<V>>
      : T extends object
        ? { readonly [P in keyof T]: DeepReadonly<T[P]> }
        : T

/**
 * One published event. The envelope is frozen; `data` is shared by reference
 * between the subscribers of one context (use `copy: true` for a private copy).
 */
export interface BusEvent<T = unknown, K extends string = string> {
  /** Unique across contexts: `${source}:${seq}`. */
  readonly id: string
  readonly topic: K
  readonly data: DeepReadonly<T>
  /** Id of the publishing context (its bus id). */
  readonly source: string
  /** Per source, strictly increasing. */
  readonly seq: number
  /** `Date.now()` at publish (one reading is shared by up to 128 publishes of one task). */
  readonly time: number
  readonly headers: Readonly<Record<string, string>>
  /** True when replayed from a store or delivered again after a failure. */
  readonly redelivered: boolean
}

type Untyped<E> = string extends keyof E ? true : false

/**
 * Every pattern that matches topic K: each token itself or `*`, and `>` for
 * any rest (as in NATS). For `a.b`: a.b, a.*, a.>, *.b, *.*, *.>, >.
 */
export type PatternsOfTopic<K extends string> = K extends `${infer Head}.${infer Rest}` ? `${Head | '*'}.${PatternsOfTopic<Rest>}` | '>' : K | '*' | '>'

/**
 * The patterns a subscription on a typed bus may use: those that match at least
 * one topic of E (so topics and patterns autocomplete, and a misspelt one's
 * error lists what would have matched); any string on the untyped bus.
 */
export type PatternFor<E> = Untyped<E> extends true ? string : { [K in Extract<keyof E, string>]: PatternsOfTopic<K> }[Extract<keyof E, string>]

/** Topics of a map, or any string for the untyped bus. */
export type TopicOf<E> = Untyped<E> extends true ? string : Extract<keyof E, string>

/** The payload of topic K (unknown on the untyped bus). */
export type DataOf<E, K extends string> = K extends keyof E ? E[K] : unknown

/** Does NATS-style pattern P match topic K? Evaluated by the compiler. */
export type PatternMatches<P extends string, K extends string, First extends boolean = true> = P extends '>'
  ? Reserved<K, First> extends true
    ? false
    : true
  : P extends `${infer Head}.${infer Rest}`
    ? K extends `${infer TopicHead}.${infer TopicRest}`
      ? Head extends '*'
        ? Reserved<TopicHead, First> extends true
          ? false
          : PatternMatches<Rest, TopicRest, false>
        : Head extends TopicHead
          ? PatternMatches<Rest, TopicRest, false>
          : false
      : false
    : K extends `${string}.${string}`
      ? false
      : P extends '*'
        ? Reserved<K, First> extends true
          ? false
          : true
        : P extends K
          ? true
          : false

/** As at run time, only a wildcard in the first position skips a reserved (`$…`) token. */
type Reserved<Token extends string, First extends boolean> = First extends true ? (Token extends `$${string}` ? true : false) : false

/** The topics of E that pattern P matches. */
export type MatchingTopics<E, P extends string> = {
  [K in Extract<keyof E, string>]: PatternMatches<P, K> extends true ? K : never
}[Extract<keyof E, string>]

/** The event type a subscriber of P receives: a union discriminated by `topic`. */
export type EventFor<E, P extends string> =
  Untyped<E> extends true ? BusEvent<unknown> : { [K in MatchingTopics<E, P>]: BusEvent<DataOf<E, K>, K> }[MatchingTopics<E, P>]

/** P itself when it matches some topic of E (always, on the untyped bus); otherwise the patterns that would, a compile error that lists them. */
export type PatternOf<E, P extends string> = Untyped<E> extends true ? P : [MatchingTopics<E, P>] extends [never] ? PatternFor<E> : P

/**
 * A callback taking an event. Declared as a method so its parameter is checked
 * bivariantly: on the untyped bus, a handler may annotate the payload it expects
 * (`(event: BusEvent<number>) => …`).
 */
export type EventCallback<Ev, R> = { handle(event: Ev, context: HandlerContext): R }['handle']

/** Same, for processors. A handler may return anything: what it returns (or resolves to) is ignored. */
export type ProcessCallback<Ev> = { handle(event: Ev, context: ProcessContext): unknown }['handle']

export interface PublishOptions {
  /**
   * Also append to the store (batched: one transaction per task), so durable
   * subscriptions get it at least once, even after a crash or a reload. Needs a store.
   */
  durable?: boolean | undefined
  /** Keep as the topic's last event for `last: true` subscribers. */
  retain?: boolean | undefined
  headers?: Record<string, string> | undefined
  /** Deliver in this context only: never handed to a transport. */
  local?: boolean | undefined
}

/** What `publish` returns at once. */
export interface Receipt {
  readonly id: string
  /** Queues the event entered. */
  readonly queued: number
  /** Events lost to overflow by this publish: the new one (drop-newest) or an evicted older one (drop-oldest). */
  readonly dropped: number
  /** Resolves when a durable event is committed (rejects STORAGE_UNAVAILABLE, QUOTA_EXCEEDED); at once for others. */
  readonly persisted: Promise<void>
}

export interface SubscribeOptions {
  /** Queue bound of this subscription. Default: the bus's `capacity` (1024). */
  capacity?: number | undefined
  /** Default: the bus's `overflow` ('drop-newest'). */
  overflow?: Overflow | undefined
  /** Aborting it unsubscribes. */
  signal?: AbortSignal | undefined
  /**
   * Consumer name: makes the subscription durable (needs a store). It replays
   * the stored matching events it has not acked, then follows; one instance per
   * name and origin is live, others wait (Web Locks) and take over.
   */
  durable?: string | undefined
  /** Only events published in this context. */
  local?: boolean | undefined
  /** Give this subscription its own structuredClone of `data`. */
  copy?: boolean | undefined
  /** First deliver the retained event of each matching topic. */
  last?: boolean | undefined
  /**
   * A queue group, as in NATS: the subscriptions with this name and the same
   * pattern, in every context, share the events; each goes to exactly one of
   * them, to the ones that keep up.
   */
  queue?: string | undefined
}

/** What a subscribe or reply handler gets beside its event. */
export interface HandlerContext {
  /**
   * Aborts when the subscription ends: unsubscribed, its own signal aborted,
   * or the bus's close deadline passed with the handler still running.
   */
  readonly signal: AbortSignal
}

export interface ProcessContext {
  /** Aborts on the processor's signal, on close (once its deadline passes), and when the attempt times out. */
  readonly signal: AbortSignal
  /** 1 for the first attempt. */
  readonly attempt: number
}

/** Options of `process`; `T`: the topics a typed bus's dead letter may go to. */
export interface ProcessOptions<T extends string = string> extends SubscribeOptions {
  /** Events handled at once. Default 1. */
  concurrency?: number | undefined
  /** Milliseconds per attempt; the attempt then fails with TIMEOUT. Default: none. */
  timeout?: number | undefined
  retry?: RetryOptions | undefined
  /**
   * Where an event goes after its last failed attempt: a topic (same data, with
   * x-crossbus-* headers; on a typed bus, one of its topics) or a callback.
   */
  deadLetter?: T | ((event: BusEvent, error: unknown) => void) | undefined
}

/** Options of `reply`. */
export interface ReplyOptions extends SubscribeOptions {
  /** Requests this replier handles at once. Default 1. */
  concurrency?: number | undefined
}

export interface SubscriptionStats {
  readonly pattern: string
  readonly durable?: string
  /** Durable subscriptions: true while another instance of the name is live and this one waits. */
  readonly standby?: boolean
  readonly queued: number
  readonly capacity: number
  readonly delivered: number
  readonly dropped: number
  readonly failed: number
  /**
   * Durable subscriptions, once live: stored matching events not acked yet, unlike `queued` not capped
   * by the capacity. Exact for what it has read from the store (queued, running, or handled above an
   * older one still running); for what it has not read yet, every position up to the last this context
   * knows the log reached (its own commits, peers' announcements), matching or not: an upper bound while
   * it catches up, 0 once it has.
   */
  readonly backlog?: number
}

export interface Subscription {
  readonly pattern: string
  /** Idempotent. Events still queued are discarded. */
  unsubscribe(): void
  stats(): SubscriptionStats
  [Symbol.dispose](): void
}

export interface TransportStats {
  readonly name: string
  readonly queued: number
  readonly capacity: number
  readonly sent: number
  readonly received: number
  readonly dropped: number
  readonly rejected: number
  /** Events that arrived again (over another path, or replayed) and were dropped as duplicates. */
  readonly duplicates: number
  readonly peers: number
}

export interface BusStats {
  /** publish calls accepted here. */
  readonly published: number
  /** Handler calls that completed. */
  readonly delivered: number
  /** Events lost to overflow, summed over every subscription and link. */
  readonly dropped: number
  /** Handler calls (each attempt) that threw, rejected or timed out. */
  readonly failed: number
  /** Attempts after the first. */
  readonly retried: number
  /** Events sent to a dead letter. */
  readonly deadLettered: number
  /** Events that arrived from other contexts. */
  readonly received: number
  /** Frames refused as malformed or foreign, and malformed records durable consumers skipped in the log. */
  readonly rejected: number
  /** Durable events this context committed to its store. */
  readonly stored: number
  /** Stored events this context's compactions evicted (past maxAge or maxEvents) before every consumer had them. */
  readonly evicted: number
  readonly subscriptions: SubscriptionStats[]
  readonly transports: TransportStats[]
  readonly peers: number
}

export interface PeerInfo {
  readonly id: string
  readonly transport: string
  readonly lastSeen: number
}

export type DiagnosticType =
  | 'drop'
  | 'handler-error'
  | 'retry'
  | 'dead-letter'
  | 'bad-frame'
  | 'not-cloneable'
  | 'storage-error'
  | 'transport-error'
  | 'peer-join'
  | 'peer-leave'

/** Something worth knowing that is not an exception: drops, handler failures, peers. */
export interface Diagnostic {
  readonly type: DiagnosticType
  readonly topic?: string
  readonly eventId?: string
  /** Pattern of the subscription concerned. */
  readonly subscription?: string
  readonly transport?: string
  readonly error?: unknown
  /** How many events this report stands for (drops are coalesced per subscription and task). */
  readonly count?: number
  /** A readable sentence, the one the default reporter prints. */
  readonly message: string
}

export interface BusOptions {
  /** Contexts with the same name share events. Default 'crossbus'. */
  name?: string | undefined
  /** Links to other contexts. Default: [broadcastChannel()] where BroadcastChannel really delivers, else []. */
  transports?: readonly Transport[] | undefined
  /**
   * The durable log (`indexedDbStore()` from crossbus/idb, `memoryStore()` from
   * crossbus/memory). Every context of the bus that publishes or consumes
   * durable events uses the same log. Without one, durable options throw NO_STORE.
   */
  store?: Store | undefined
  /** Default queue capacity of a subscription. Default 1024. */
  capacity?: number | undefined
  /** Default overflow policy. Default 'drop-newest'. */
  overflow?: Overflow | undefined
  /**
   * Check at publish that data can cross contexts (structuredClone), throwing NOT_CLONEABLE.
   * Default: for events a link will carry (some other context wants them) and durable events.
   * true: every publish. false: never.
   */
  validate?: boolean | undefined
  /** Default: console.warn, once per kind and place. */
  onDiagnostic?: ((diagnostic: Diagnostic) => void) | undefined
  /** Milliseconds close() waits for queued deliveries and running handlers before it aborts them. Default 5000. */
  closeTimeout?: number | undefined
  /**
   * Node (worker_threads, a script): while this bus has subscriptions, processors
   * or repliers that other contexts can reach, its links keep the thread alive,
   * as a MessagePort with a listener does, until close(). false: they never do
   * (a script that ends when its own work is done). Default true.
   */
  keepAlive?: boolean | undefined
}

export interface CloseOptions {
  /**
   * Milliseconds to let queued deliveries and running handlers (processors too)
   * finish before they are aborted and what is queued is dropped. Default: the
   * bus's `closeTimeout` (5000). 0: at once.
   */
  timeout?: number | undefined
}

export interface OnceOptions {
  signal?: AbortSignal | undefined
  /** Milliseconds before rejecting with TIMEOUT. Default: none. */
  timeout?: number | undefined
}

export interface RequestOptions {
  /** Milliseconds before rejecting with TIMEOUT. Default 5000. */
  timeout?: number | undefined
  signal?: AbortSignal | undefined
}

/** The topics a request may go to: the request map's, or on an untyped request map the event map's. */
export type RequestTopicOf<E, R> = Untyped<R> extends true ? TopicOf<E> : Extract<keyof R, string>

/** The data a request on K carries. */
export type RequestDataOf<E, R, K extends string> =
  Untyped<R> extends true
    ? Untyped<E> extends true
      ? unknown
      : K extends keyof E
        ? E[K]
        : never
    : K extends keyof R
      ? R[K] extends { data: infer D }
        ? D
        : never
      : never

/** The reply a request on K resolves with (unknown on an untyped request map). */
export type ReplyOf<R, K extends string> = Untyped<R> extends true ? unknown : K extends keyof R ? (R[K] extends { reply: infer Y } ? Y : never) : never

/** A request map seen as an event map: request topic → its data. */
type RequestEvents<R> = { [K in keyof R]: R[K] extends { data: infer D } ? D : never }

/** The event a reply handler for P gets. */
export type ReplyEventFor<E, R, P extends string> = Untyped<R> extends true ? EventFor<E, P> : EventFor<RequestEvents<R>, P>

/** What a reply handler for P must return (or resolve to): the reply of every request topic P matches. */
export type ReplyFor<R, P extends string> = Untyped<R> extends true ? unknown : { [K in MatchingTopics<R, P>]: ReplyOf<R, K> }[MatchingTopics<R, P>]

/** A reply handler: its return value (or what it resolves to) is the reply. */
export type ReplyCallback<Ev, Y> = { handle(event: Ev, context: HandlerContext): Y | PromiseLike<Y> }['handle']

/**
 * A topic bus. Every method works detached (`const { publish } = bus`).
 * `E`: topic → payload; `R`: request topic → `{ data, reply }`.
 */
export interface Bus<E extends object = EventMap, R extends object = RequestMap> {
  /** This context's id. */
  readonly id: string
  /** The bus's name (`BusOptions.name`): contexts with the same name are one bus. */
  readonly name: string
  /** Never blocks, never awaits, never delivers inside the call. */
  publish<K extends TopicOf<E>>(topic: K, data: DataOf<E, K>, options?: PublishOptions): Receipt
  /** Calls the handler for each matching event, in order; what it returns is ignored (a promise is awaited first). */
  subscribe<P extends PatternFor<E>>(pattern: PatternOf<E, P>, handler: EventCallback<EventFor<E, P>, unknown>, options?: SubscribeOptions): Subscription
  process<P extends PatternFor<E>>(pattern: PatternOf<E, P>, handler: ProcessCallback<EventFor<E, P>>, options?: ProcessOptions<TopicOf<E>>): Subscription
  /** An async iterator over matching events, bounded like any subscription; ends when its signal aborts or the bus closes. */
  stream<P extends PatternFor<E>>(pattern: PatternOf<E, P>, options?: SubscribeOptions): AsyncIterableIterator<EventFor<E, P>>
  /** The next matching event. */
  once<P extends PatternFor<E>>(pattern: PatternOf<E, P>, options?: OnceOptions): Promise<EventFor<E, P>>
  /** The retained event of `topic` this context holds now (a UI's first frame), or undefined. */
  last<K extends TopicOf<E>>(topic: K): BusEvent<DataOf<E, K>, K> | undefined
  /** Publishes `data` to `topic` and resolves with the first reply's data: one replier runs it. */
  request<K extends RequestTopicOf<E, R>>(topic: K, data: RequestDataOf<E, R, K>, options?: RequestOptions): Promise<ReplyOf<R, K>>
  /** Answers requests: the handler's return value is the reply. Its signal aborts when the asker gives up (its signal, its timeout) or the bus closes. */
  reply<P extends PatternFor<Untyped<R> extends true ? E : R>>(
    pattern: PatternOf<Untyped<R> extends true ? E : R, P>,
    handler: ReplyCallback<ReplyEventFor<E, R, P>, ReplyFor<R, P>>,
    options?: ReplyOptions,
  ): Subscription
  peers(): PeerInfo[]
  stats(): BusStats
  /** Resolves when everything published so far is handed to transports and persisted. */
  flush(): Promise<void>
  /**
   * Idempotent and graceful: publish and subscribe throw CLOSED and remote events
   * stop at once; queued deliveries and running handlers finish until the
   * deadline (`timeout`, default the bus's `closeTimeout`, 5 s), then are aborted
   * (their signals) and what is queued is dropped and counted; links say goodbye.
   */
  close(options?: CloseOptions): Promise<void>
  [Symbol.asyncDispose](): Promise<void>
}

/** An event in a durable log, at its position. */
export interface StoredEvent extends Omit<BusEvent, 'redelivered'> {
  /** Assigned by the store at append: strictly increasing across every context sharing it. */
  readonly position: number
  /** Published with `retain: true`. */
  readonly retain: boolean
  /**
   * Set by `read` in a store whose log can be deleted and created again behind its back
   * (indexedDbStore: another tab, "clear site data"): the incarnation of the log the event was read
   * from, the same for all of its events. A consumer that sees it change knows its cursor means
   * nothing in the new log.
   */
  readonly generation?: string
}

/** What a durable consumer has handled: every matching event at or below `cursor`. */
export interface ConsumerState {
  readonly pattern: string
  readonly cursor: number
}

/**
 * A durable log shared by the contexts of an origin (`crossbus/idb`), or of one
 * process (`crossbus/memory`). Appends are transactions; positions only grow.
 * Failures reject with CrossbusError STORAGE_UNAVAILABLE or QUOTA_EXCEEDED.
 */
export interface Store {
  /** Names the log: stores with the same name are one log (durable consumers lock by it). */
  readonly name: string
  /** Appends in one transaction, in order; resolves with the positions once committed. */
  append(events: readonly Omit<StoredEvent, 'position'>[]): Promise<number[]>
  /**
   * Up to `limit` events after `position`, oldest first, as they were stored: a malformed record
   * comes back at its position (the engine skips and reports it) and never stops the read. A
   * position at or past the next one the log would hand out was never reached by this log, so it
   * was replaced (deleted and created again): the read then starts from the log's oldest event, and
   * the positions going back tell the reader.
   */
  read(after: number, limit: number): Promise<StoredEvent[]>
  /** The last retained event of each topic, kept even after that event left the log. */
  retained(): Promise<StoredEvent[]>
  /** Registers a consumer if new (it starts from the oldest stored event) and returns its state. */
  register(name: string, pattern: string): Promise<ConsumerState>
  /** Moves a consumer's cursor forward (never back): everything matching at or below `cursor` is handled. */
  ack(name: string, cursor: number): Promise<void>
  /**
   * Deletes each event that at least one registered consumer matches and every
   * matching consumer has acked, and each retained event a later retained event
   * of its topic replaced that no registered consumer still needs (durable +
   * retain as persisted state keeps its last value, not its history); evicts
   * events older than maxAge or beyond maxEvents, acked or not. Resolves with
   * how many went each way.
   */
  compact(now?: number): Promise<{ deleted: number; evicted: number }>
  /** Drops the connection; the store reopens lazily when used again. */
  close(): void
}
