import { DropCounter } from './diagnostics.js'
import { DURABLE, Envelope, RETAINED } from './envelope.js'
import { errorMessage, quote } from './errors.js'
import { type Membership, readMembership } from './groups.js'
import { overflowPolicy, positiveInteger } from './options.js'
import { BoundedQueue, type Overflow } from './queue.js'
import { DEFAULT_BATCH, DEFAULT_LINK_CAPACITY, type Endpoint, INITIAL_CREDIT, PEER_TIMEOUT_MS, type Transport } from './seams.js'
import { PatternIndex } from './router.js'
import { type Throttled, throttle } from './throttle.js'
import { isReserved, matchTokens, parsePattern, parsePatterns } from './topic.js'
import type { BusEvent, Diagnostic, TransportStats } from './types.js'
import { decodeFrame, EVERYTHING, encodeEvents, type EventsFrame, type Frame, MAX_FRAME_EVENTS, type RouteRecord, WIRE_VERSION } from './wire.js'

/** What a link needs from the bus. */
export interface LinkHost {
  readonly id: string
  readonly name: string
  report(diagnostic: Diagnostic): void
  /** Counts for bus.stats(). */
  count(field: 'dropped' | 'rejected', amount?: number): void
  /**
   * The routes to announce on this link (split horizon: none learned from it).
   * `answering` a peer's question: this context's own record gets a new version,
   * so contexts further away see it is alive even while its timers are throttled.
   */
  routesFor(link: Link, answering: boolean): RouteRecord[]
  /** Something a neighbor announced changed. */
  routesChanged(): void
  receive(link: Link, frame: EventsFrame): void
  answerRetained(link: Link, from: string, patterns: readonly string[], ask: number): void
  /** A new neighbor said hello. */
  peerJoined(link: Link, id: string): void
  /** A neighbor whose lock is not watched yet said hello again. */
  unwatched(link: Link, id: string, neighbor: Neighbor): void
  /**
   * A record arrived (`changed`: its version is not the one this neighbor
   * sent last); false when its context is known to be gone (a stale copy),
   * 'full' when the table of contexts is full, 'absurd' when its version is
   * far beyond any believed for that context (it is not believed).
   */
  observe(record: RouteRecord, changed: boolean): boolean | 'full' | 'absurd'
  /** May a cross-origin link speak for context `id`? Not when another link reaches it, nor for this context. */
  claimable(link: Link, id: string): boolean
  /** The last neighbor of this link left. */
  deserted(link: Link, timedOut: boolean): void
}

export interface KnownRecord extends RouteRecord {
  readonly patternTokens: readonly (readonly string[])[]
  readonly replyTokens: readonly (readonly string[])[]
  /** Its queue group memberships, read. */
  readonly memberships: readonly Membership[]
  /** When its version last changed on this neighbor's path: the sign that its context lives. */
  readonly changedAt: number
}

/**
 * Of two copies of a context's record (over two paths), is `a` the one to
 * believe? One whose version changed within the peer timeout beats one that
 * stopped changing (a bogus version, or a stale copy circulating), and among
 * those the higher version wins: an order every context agrees on, so relays
 * never flip each other's choice back and forth.
 */
export function preferred(a: KnownRecord, b: KnownRecord, now: number): boolean {
  const liveA = now - a.changedAt <= PEER_TIMEOUT_MS
  const liveB = now - b.changedAt <= PEER_TIMEOUT_MS
  return liveA !== liveB ? liveA : a.version > b.version
}

/** Why a neighbor that stopped talking was forgotten. */
const TIMED_OUT = 'timed out'

/** A context directly on the other side of this link, and what it can reach. */
export interface Neighbor {
  lastSeen: number
  records: Map<string, KnownRecord>
  /** Set while the neighbor's Web Lock is held: it lives whatever its heartbeat does. */
  alive: boolean
  /** Times its lock was looked for (a new tab's hello can arrive before its lock request). */
  lockLookups: number
  /** Ends the wait on its lock when it is forgotten, so no lock request outlives it. */
  watch?: AbortController
  /** It said bye since its last hello: when its lock is released, it left (a forged bye is forgotten at its next hello). */
  saidBye?: boolean
}

/** Neighbors of one link, at most: a hello from one more is refused. */
export const MAX_NEIGHBORS = 256
/** Records held for one link (over all its neighbors), at most: the rest of a hello is refused. */
export const MAX_LINK_RECORDS = 1024
/** Patterns held for one link (over all its records), at most: a record past it counts as wanting everything. */
export const MAX_LINK_PATTERNS = 16384
/** A link asks strangers for a hello, and answers asks, at most once in this many ms (more are folded into one). */
const ASK_INTERVAL_MS = 100

const NO_GROUPS: readonly string[] = Object.freeze([])

const sameList = (a: readonly string[], b: readonly string[]): boolean => a.length === b.length && a.every((item, index) => item === b[index])

/** Reserved patterns a peer may hold: the durable log's announcements (same origin only). Replies travel by path, not by interest. */
const LOG_PATTERN = '$log.appended'

/** A peer's patterns without the reserved ones it has no business with. */
function interest(patterns: readonly string[], crossOrigin: boolean): readonly string[] {
  let kept: string[] | undefined
  for (let index = 0; index < patterns.length; index++) {
    const pattern = patterns[index] as string
    const allowed = !isReserved(pattern) || (pattern === LOG_PATTERN && !crossOrigin)
    if (!allowed) kept ??= patterns.slice(0, index)
    else kept?.push(pattern)
  }
  return kept ?? patterns
}

/** Parses a record's patterns once: a heartbeat that only bumps the version reuses the parse. */
function know(record: RouteRecord, previous: KnownRecord | undefined, now: number): KnownRecord {
  const changedAt = previous === undefined || previous.version !== record.version ? now : previous.changedAt
  if (
    previous !== undefined &&
    sameList(previous.patterns, record.patterns) &&
    sameList(previous.replies, record.replies) &&
    sameList(previous.groups ?? NO_GROUPS, record.groups ?? NO_GROUPS)
  ) {
    return previous.version === record.version ? previous : { ...previous, version: record.version, changedAt }
  }
  const memberships: Membership[] = []
  for (const entry of record.groups ?? NO_GROUPS) {
    const membership = readMembership(entry, parsePattern)
    if (membership !== undefined) memberships.push(membership)
  }
  return { ...record, patternTokens: parsePatterns(record.patterns), replyTokens: parsePatterns(record.replies), memberships, changedAt }
}

const sameRoutes = (a: readonly RouteRecord[] | undefined, b: readonly RouteRecord[]): boolean =>
  a !== undefined &&
  a.length === b.length &&
  a.every((record, index) => {
    const other = b[index] as RouteRecord
    return (
      record.id === other.id &&
      record.patterns.join('\n') === other.patterns.join('\n') &&
      record.replies.join('\n') === other.replies.join('\n') &&
      (record.groups ?? NO_GROUPS).join('\n') === (other.groups ?? NO_GROUPS).join('\n')
    )
  })

/**
 * One link of the bus: an endpoint, the neighbors behind it and what they
 * want, and a bounded queue of events waiting to be sent. Events are batched:
 * a link posts once `batch` events are pending and otherwise at the end of the
 * task (a microtask, never a timer, so a hidden tab sends at full speed).
 * Point links use credits: the receiver grants as it accepts, so a stalled
 * receiver fills only this link's queue.
 */
export class Link {
  readonly name: string
  /** 'broadcast' links reach same-origin contexts only (BroadcastChannel). */
  readonly kind: 'broadcast' | 'point'
  readonly queue: BoundedQueue<BusEvent>
  readonly overflow: Overflow
  readonly batch: number
  readonly neighbors: Map<string, Neighbor> = new Map()
  sent = 0
  received = 0
  rejected = 0
  /** Events that arrived again (another path, a replay) and were dropped. */
  duplicates = 0
  /**
   * The other side is another origin (a cross-origin Window): it may speak
   * only for the contexts behind this link, never for this origin's.
   */
  readonly crossOrigin: boolean
  /** Events lost on this link: overflow (reported once per task), and what could not be sent or was left at close. */
  readonly drops: DropCounter
  readonly #endpoint: Endpoint
  readonly #host: LinkHost
  #credit: number
  /** Queue length at which enqueue posts at once: a batch, or a full queue. */
  readonly #sendAt: number
  #grant = 0
  #flushScheduled = false
  #wants = new Map<string, boolean>()
  /** The patterns (and reply patterns) of every record behind this link, by token; built when first needed after a change. */
  #wantIndex: PatternIndex | undefined
  #answerIndex: PatternIndex | undefined
  /** Every context reachable through this link, with its liveliest record; built when first needed after a change. */
  #reach: Map<string, KnownRecord> | undefined
  /** Records (MAX_LINK_RECORDS) and patterns (MAX_LINK_PATTERNS) held over all neighbors. */
  #records = 0
  #patterns = 0
  #lastAnnounced: RouteRecord[] | undefined
  /** Asks strangers for a hello at most once per ASK_INTERVAL_MS: a flood of strangers costs one ask, not one each. */
  readonly #askStrangers: Throttled = throttle(() => this.announce({ ask: true, force: true }), ASK_INTERVAL_MS)
  /** Answers hellos that ask (and new neighbors) at most once per ASK_INTERVAL_MS; one answer reaches every asker of a channel. */
  readonly #answerAsk: Throttled = throttle(() => this.announce({ force: true, answering: true }), ASK_INTERVAL_MS)
  /** Events that entered the queue, and that left it (posted or evicted), since creation. */
  #entered = 0
  #left = 0
  #drainWaiters: { target: number; resolve: () => void }[] = []
  /** Said bye on pagehide; silent until pageshow. */
  #away = false
  /** Strangers already asked to say hello. */
  #asked = new Set<string>()
  #closed = false

  /** Made for one context that connected to a source (a shared worker's tab); closed when that context leaves. */
  readonly fromSource: boolean
  /** Since when this link has had no neighbor, its last one having timed out; undefined otherwise. */
  silentSince: number | undefined = undefined
  /**
   * Until it has heard its peers' interest, the link takes every event this
   * context publishes (see DISCOVERY_MS): ended by its peer's first hello
   * (point links) or by the network's heartbeat once the time is up.
   */
  discovering = true
  readonly openedAt: number = Date.now()

  /**
   * A link over `endpoint`. It says its first hello when the network calls
   * announce({ ask: true }) (after the app's first subscriptions, for the
   * links a bus opens at start). `fromSource`: accepted from an EndpointSource.
   */
  constructor(host: LinkHost, transport: Transport, endpoint: Endpoint, { fromSource = false }: { fromSource?: boolean } = {}) {
    this.#host = host
    this.fromSource = fromSource
    this.name = transport.name
    this.queue = new BoundedQueue(positiveInteger(`${transport.name} capacity`, transport.capacity, DEFAULT_LINK_CAPACITY))
    this.overflow = overflowPolicy(`${transport.name} overflow`, transport.overflow, 'drop-newest')
    this.batch = positiveInteger(`${transport.name} batch`, transport.batch, DEFAULT_BATCH)
    if (this.batch > MAX_FRAME_EVENTS)
      throw new TypeError(`crossbus: ${transport.name} batch must be at most ${MAX_FRAME_EVENTS} (the wire's limit), got ${this.batch}`)
    this.drops = new DropCounter((first, count) =>
      host.report({
        type: 'drop',
        transport: this.name,
        topic: first.topic,
        eventId: first.id,
        count,
        message: `crossbus: link ${this.name} queue full (capacity ${this.queue.capacity}, ${this.overflow}): dropped ${count} event(s); its peer is not keeping up.`,
      }),
    )
    this.#sendAt = Math.min(this.batch, this.queue.capacity)
    this.#endpoint = endpoint
    this.kind = this.#endpoint.kind
    this.crossOrigin = endpoint.crossOrigin === true
    this.#credit = this.kind === 'point' ? INITIAL_CREDIT : Number.POSITIVE_INFINITY
    this.#endpoint.listen(
      (message) => this.#receive(message),
      (reason) => this.refuse(`a frame: ${reason}`),
    )
  }

  /**
   * Does some context behind this link want `topic`? Cached until routes
   * change; a miss costs one walk of the pattern index, whatever the number
   * of patterns behind the link.
   */
  wants(topic: string, tokens?: readonly string[]): boolean {
    let wanted = this.#wants.get(topic)
    if (wanted === undefined) {
      this.#wantIndex ??= this.#index((record) => record.patternTokens)
      wanted = this.#wantIndex.matches(tokens ?? topic.split('.'))
      if (this.#wants.size >= 4096) this.#wants.clear()
      this.#wants.set(topic, wanted)
    }
    return wanted
  }

  /** Does some context behind this link answer requests on these tokens? */
  answers(tokens: readonly string[]): boolean {
    this.#answerIndex ??= this.#index((record) => record.replyTokens)
    return this.#answerIndex.matches(tokens)
  }

  /** Does context `id`, reached through this link, answer requests on these tokens? */
  answersFrom(id: string, tokens: readonly string[]): boolean {
    const record = this.records().get(id)
    return record?.replyTokens.some((pattern) => matchTokens(pattern, tokens)) === true
  }

  /** Every context reachable through this link, with the preferred record of each (see preferred()). */
  records(): ReadonlyMap<string, KnownRecord> {
    if (this.#reach !== undefined) return this.#reach
    const now = Date.now()
    const all = new Map<string, KnownRecord>()
    for (const neighbor of this.neighbors.values()) {
      for (const record of neighbor.records.values()) {
        const known = all.get(record.id)
        if (known === undefined || preferred(record, known, now)) all.set(record.id, record)
      }
    }
    this.#reach = all
    return all
  }

  #index(select: (record: KnownRecord) => readonly (readonly string[])[]): PatternIndex {
    const index = new PatternIndex()
    for (const neighbor of this.neighbors.values()) {
      for (const record of neighbor.records.values()) for (const tokens of select(record)) index.add(tokens)
    }
    return index
  }

  /**
   * Queues an event to send: 'queued'; 'evicted' when it is queued but an older
   * one was dropped for it (drop-oldest); 'refused' when it is dropped itself.
   */
  enqueue(event: BusEvent): 'queued' | 'evicted' | 'refused' {
    if (this.#closed) return 'refused'
    const queue = this.queue
    // A full batch (or a full queue) goes now, while the receiver has credit: only a
    // receiver that stops granting makes this queue overflow.
    if (queue.size >= this.#sendAt && this.#credit > 0) this.flush()
    let result: 'queued' | 'evicted' = 'queued'
    if (queue.full) {
      if (this.overflow === 'drop-newest') {
        this.#recordDrop(event)
        return 'refused'
      }
      this.#recordDrop(queue.shift() as BusEvent)
      this.#left++
      result = 'evicted'
    }
    queue.push(event)
    this.#entered++
    if (!this.#flushScheduled) {
      this.#flushScheduled = true
      queueMicrotask(() => {
        this.#flushScheduled = false
        this.flush()
      })
    }
    return result
  }

  /** Posts what is queued, in batches, as far as credit allows. */
  flush(): void {
    while (this.queue.size > 0 && this.#credit > 0 && !this.#closed) {
      const count = Math.min(this.queue.size, this.batch, this.#credit)
      const events: BusEvent[] = []
      for (let index = 0; index < count; index++) events.push(this.queue.shift() as BusEvent)
      this.#credit -= count
      this.#left += count
      this.#postEvents(events)
    }
    this.#settleDrained()
  }

  /**
   * Resolves once every event queued so far has left the queue (posted, or
   * evicted by overflow), or no peer is left to send to. While a point link's
   * receiver grants no credit, this waits: a publisher can await it to keep a
   * slow worker's link from overflowing.
   */
  drained(): Promise<void> {
    const target = this.#entered
    if (this.#left >= target || this.neighbors.size === 0 || this.#closed) return Promise.resolve()
    return new Promise((resolve) => this.#drainWaiters.push({ target, resolve }))
  }

  #settleDrained(): void {
    if (this.#drainWaiters.length === 0) return
    const gone = this.neighbors.size === 0 || this.#closed
    this.#drainWaiters = this.#drainWaiters.filter((waiter) => {
      if (!gone && this.#left < waiter.target) return true
      waiter.resolve()
      return false
    })
  }

  /** Posts now a hello this link owes (an answer or an ask held by the throttle): what follows must not overtake it. */
  helloFirst(): void {
    this.#answerAsk.flush()
    this.#askStrangers.flush()
  }

  /** Posts events answering a retained-state request (outside the queue: they are few), in frames of `batch`. */
  answer(to: string, events: readonly BusEvent[], ask: number): void {
    for (let start = 0; start < events.length; start += this.batch) this.#postEvents(events.slice(start, start + this.batch), { ask, to })
  }

  askRetained(patterns: readonly string[], ask: number): void {
    this.#post({ kind: 'retained', patterns, ask })
  }

  /**
   * Says hello with the routes through this link when they changed; `force`:
   * even if they did not; `ask`: asking the peers to say hello back;
   * `answering` a peer's ask (this context's record then gets a new version).
   */
  announce({ ask = false, force = false, answering = false }: { ask?: boolean; force?: boolean; answering?: boolean } = {}): void {
    // Gone into the back/forward cache: silent until rejoin().
    if (this.#away) return
    const routes = this.#host.routesFor(this, answering)
    if (!force && !ask && sameRoutes(this.#lastAnnounced, routes)) return
    this.#lastAnnounced = routes
    this.#post(ask ? { kind: 'hello', routes, ask: true } : { kind: 'hello', routes })
  }

  stats(): TransportStats {
    return {
      name: this.name,
      queued: this.queue.size,
      capacity: this.queue.capacity,
      sent: this.sent,
      received: this.received,
      dropped: this.drops.count,
      rejected: this.rejected,
      duplicates: this.duplicates,
      peers: this.neighbors.size,
    }
  }

  /** Node: whether this link's endpoint keeps the thread alive. */
  keepAlive(keep: boolean): void {
    try {
      this.#endpoint.keepAlive?.(keep)
    } catch {
      // A platform object that cannot: nothing to hold.
    }
  }

  /** Sends what is queued and says goodbye. */
  close(): void {
    if (this.#closed) return
    this.flush()
    this.#post({ kind: 'bye' })
    this.#closed = true
    this.#settleDrained()
    // What credit did not let go is lost with the link: counted and reported, never silently.
    const left = this.queue.drain()
    if (left.length > 0) {
      this.drops.count += left.length
      this.#host.count('dropped', left.length)
      this.#host.report({
        type: 'drop',
        transport: this.name,
        topic: (left[0] as BusEvent).topic,
        eventId: (left[0] as BusEvent).id,
        count: left.length,
        message: `crossbus: link ${this.name} closed with ${left.length} event(s) its peer had no credit for`,
      })
    }
    for (const neighbor of this.neighbors.values()) neighbor.watch?.abort()
    this.neighbors.clear()
    this.#askStrangers.cancel()
    this.#answerAsk.cancel()
    try {
      this.#endpoint.close()
    } catch {
      // Already closed by the platform.
    }
  }

  /**
   * Forgets direct neighbors silent for longer than PEER_TIMEOUT_MS (crashed,
   * killed, frozen without a goodbye), except those whose Web Lock shows they
   * live; asks the ones silent for half of it to say hello.
   */
  expire(now: number): void {
    // Which copy of a record is live changes with time, not only with hellos.
    this.#reach = undefined
    let probe = false
    for (const [id, neighbor] of this.neighbors) {
      const silent = now - neighbor.lastSeen
      if (silent > PEER_TIMEOUT_MS && !neighbor.alive) this.forget(id, TIMED_OUT)
      // Half the timeout without a word: ask. A hidden tab's timers may run once a minute, but
      // its message handlers do not wait, so a live one answers at once.
      else if (silent > PEER_TIMEOUT_MS / 2) probe = true
    }
    if (probe) this.announce({ ask: true, force: true })
  }

  /** Removes a direct neighbor (bye, timeout, its lock released). */
  forget(id: string, why: string): void {
    const neighbor = this.neighbors.get(id)
    if (neighbor === undefined) return
    this.neighbors.delete(id)
    neighbor.watch?.abort()
    this.#countPatterns()
    this.#host.report({ type: 'peer-leave', transport: this.name, message: `crossbus: peer ${id} ${why} (${this.name})` })
    this.#routesChanged()
    if (this.neighbors.size === 0) {
      this.#settleDrained()
      // A peer that went silent (frozen, suspended) may come back: the link asks after it on every beat.
      this.silentSince = why === TIMED_OUT ? Date.now() : undefined
      this.#host.deserted(this, why === TIMED_OUT)
    }
  }

  /** Says goodbye without closing (the page is hidden, maybe into the back/forward cache). */
  leave(): void {
    this.flush()
    this.#post({ kind: 'bye' })
    this.#away = true
    for (const id of [...this.neighbors.keys()]) this.forget(id, 'was left')
  }

  /** Back from the back/forward cache: say hello again, asking peers to answer. */
  rejoin(): void {
    this.#away = false
    this.announce({ ask: true, force: true })
  }

  /** Drops relayed records of a context known to be gone. */
  purge(id: string): void {
    let changed = false
    for (const neighbor of this.neighbors.values()) changed = neighbor.records.delete(id) || changed
    if (changed) {
      this.#forgetRoutes()
      this.#countPatterns()
    }
  }

  #routesChanged(): void {
    this.#forgetRoutes()
    this.#host.routesChanged()
  }

  /** What was derived from the neighbors' records is rebuilt when next needed. */
  #forgetRoutes(): void {
    this.#wants.clear()
    this.#wantIndex = undefined
    this.#answerIndex = undefined
    this.#reach = undefined
  }

  #countPatterns(): void {
    let records = 0
    let patterns = 0
    for (const neighbor of this.neighbors.values()) {
      const weight = weigh(neighbor.records)
      records += weight.records
      patterns += weight.patterns
    }
    this.#records = records
    this.#patterns = patterns
  }

  /** Posts a frame of ours; `body` is a Frame without the envelope fields. */
  #post(body: { kind: Frame['kind']; to?: string; [field: string]: unknown }): void {
    if (this.#closed) return
    try {
      this.#endpoint.post({ crossbus: WIRE_VERSION, bus: this.#host.name, from: this.#host.id, ...body })
    } catch (error) {
      this.#host.report({ type: 'transport-error', transport: this.name, error, message: `crossbus: ${this.name} could not post: ${errorMessage(error)}` })
    }
  }

  /**
   * Posts a batch (or, with `answer`, the events answering a retained-state
   * request: all of them retained); if one event cannot be cloned, the others
   * still go and that one is reported.
   */
  #postEvents(events: readonly BusEvent[], answer?: { readonly ask: number; readonly to: string }): void {
    if (this.#closed) return
    const flags = (index: number): number => Envelope.flags(events[index] as BusEvent)
    const frame = {
      crossbus: WIRE_VERSION,
      bus: this.#host.name,
      from: this.#host.id,
      ...(answer === undefined ? {} : { to: answer.to, answers: answer.ask }),
      ...encodeEvents(
        events,
        answer === undefined ? (index) => (flags(index) & RETAINED) !== 0 : () => true,
        (index) => (flags(index) & DURABLE) !== 0,
        (index) => Envelope.assigned(events[index] as BusEvent),
      ),
    }
    try {
      this.#endpoint.post(frame)
      this.sent += events.length
      return
    } catch (error) {
      if (events.length === 1 || !(error instanceof Error) || error.name !== 'DataCloneError') {
        this.#lose(events, error)
        return
      }
    }
    for (const event of events) this.#postEvents([event], answer)
  }

  #lose(events: readonly BusEvent[], error: unknown): void {
    const cloneError = error instanceof Error && error.name === 'DataCloneError'
    // They never arrive, so they will never be granted back.
    if (this.kind === 'point') this.#credit += events.length
    for (const event of events) {
      this.drops.count++
      this.#host.count('dropped')
      this.#host.report({
        type: cloneError ? 'not-cloneable' : 'transport-error',
        transport: this.name,
        topic: event.topic,
        eventId: event.id,
        error,
        message: `crossbus: ${this.name} could not send ${event.id} on ${quote(event.topic)}: ${errorMessage(error)}`,
      })
    }
  }

  #recordDrop(event: BusEvent): void {
    this.drops.record(event.topic, event.id)
    this.#host.count('dropped')
  }

  /** Counts `count` refused frames or events and reports them once, with `reason`. */
  refuse(reason: string, count = 1, error?: unknown): void {
    this.rejected += count
    this.#host.count('rejected', count)
    this.#host.report({
      type: 'bad-frame',
      transport: this.name,
      ...(count === 1 ? {} : { count }),
      ...(error === undefined ? {} : { error }),
      message: `crossbus: ${this.name} refused ${reason}${count === 1 ? '' : ` (${count})`}`,
    })
  }

  /**
   * Every message from the endpoint comes through here: whatever it is, it
   * never throws into the platform's message handler (in Node an exception
   * there ends the process). Anything unexpected is a refused frame.
   */
  #receive(message: unknown): void {
    try {
      this.#handle(message)
    } catch (error) {
      this.refuse(`a frame it could not handle (${errorMessage(error)})`, 1, error)
    }
  }

  /** A hello: the neighbor's records replace what it said before, within this link's bounds and its trust. */
  #hello(frame: Extract<Frame, { kind: 'hello' }>, known: Neighbor | undefined): void {
    const from = frame.from
    // Every hello carries its sender's own record: one without it would make a live context vanish.
    const own = frame.routes.find((record) => record.id === from)
    let refusal: string | undefined
    if (own === undefined) refusal = `a hello from ${from} without its own record`
    else if (known === undefined && this.neighbors.size >= MAX_NEIGHBORS) refusal = `a hello from ${from}: this link has ${MAX_NEIGHBORS} peers already`
    else if (known === undefined && this.crossOrigin && !this.#host.claimable(this, from))
      refusal = `a hello in the name of ${from}, which another link reaches`
    if (refusal !== undefined) {
      this.refuse(refusal)
      return
    }
    const neighbor = known ?? { lastSeen: Date.now(), records: new Map<string, KnownRecord>(), alive: false, lockLookups: 0 }
    if (known !== undefined && !known.alive) this.#host.unwatched(this, from, known)
    neighbor.saidBye = false
    const now = Date.now()
    const records = new Map<string, KnownRecord>()
    // What the link holds for its other neighbors: this one's records are replaced.
    const before = weigh(neighbor.records)
    const held = this.#records - before.records
    let patterns = this.#patterns - before.patterns
    let refused = 0
    // The sender's own record first: if it is not taken, nothing of the hello is.
    for (const record of [own as RouteRecord, ...frame.routes]) {
      if (record.id === this.#host.id || records.has(record.id) || (record !== own && record.id === from)) continue
      // A cross-origin peer speaks for itself and what is behind it, never for contexts reached another way.
      if (this.crossOrigin && record.id !== from && !this.#host.claimable(this, record.id)) {
        refused++
        continue
      }
      const previous = neighbor.records.get(record.id)
      const observed =
        held + records.size >= MAX_LINK_RECORDS ? 'full' : this.#host.observe(record, previous === undefined || previous.version !== record.version)
      if (observed !== true) {
        // The sender's own record not taken: the hello is refused whole (what it said before stays).
        if (record === own) {
          if (observed !== false)
            this.refuse(`a hello from ${from} whose own record is not taken (${observed === 'full' ? 'a table is full' : 'an absurd version'})`)
          return
        }
        refused++
        continue
      }
      const size = record.patterns.length + record.replies.length
      // Past this link's budget, a record counts as wanting (and answering) everything.
      const bounded = patterns + size > MAX_LINK_PATTERNS ? { ...record, patterns: EVERYTHING, replies: EVERYTHING } : record
      const sane = { ...bounded, patterns: interest(bounded.patterns, this.crossOrigin), replies: interest(bounded.replies, true) }
      patterns += sane.patterns.length + sane.replies.length
      records.set(record.id, know(sane, previous, now))
    }
    if (refused > 0) this.refuse(`records in a hello from ${from} it may not send (another link reaches them, or a table is full)`, refused)
    const changed = known === undefined || !sameRoutes([...neighbor.records.values()], [...records.values()])
    neighbor.records = records
    this.#records = held + records.size
    this.#patterns = patterns
    if (known === undefined) {
      this.neighbors.set(from, neighbor)
      this.silentSince = undefined
      // Its peers answer its first hello at once: from the first answer on, interest decides.
      this.discovering = false
      this.#host.report({ type: 'peer-join', transport: this.name, message: `crossbus: peer ${from} joined on ${this.name}` })
      // A new context on a point link (a restarted service worker) grants from scratch:
      // credit lost with its predecessor must not stall this link for good.
      if (this.kind === 'point') {
        this.#credit = INITIAL_CREDIT
        this.flush()
      }
    }
    if (changed) this.#routesChanged()
    else this.#reach = undefined
    if (known === undefined) this.#host.peerJoined(this, from)
    if (frame.ask === true || known === undefined) this.#answerAsk()
  }

  #handle(message: unknown): void {
    if (this.#closed) return
    const frame = decodeFrame(message)
    if (typeof frame === 'string') {
      this.refuse(`a frame: ${frame}`)
      return
    }
    // Same channel, other bus name, or addressed to another context: not for us, not an error.
    if (frame.bus !== this.#host.name || frame.from === this.#host.id) return
    if (frame.to !== undefined && frame.to !== this.#host.id) return
    const known = this.neighbors.get(frame.from)
    if (known !== undefined) known.lastSeen = Date.now()
    else if (frame.kind !== 'hello' && frame.kind !== 'bye' && !this.#asked.has(frame.from)) {
      // A stranger talking before its hello (we restarted, as a woken service worker does): ask who it is.
      if (this.#asked.size >= 1024) this.#asked.clear()
      this.#asked.add(frame.from)
      this.#askStrangers()
    }
    switch (frame.kind) {
      case 'hello':
        this.#hello(frame, known)
        return
      case 'bye':
        // A neighbor whose Web Lock is held lives, whatever a frame says: its lock's release says when it goes.
        if (known?.alive !== true) this.forget(frame.from, 'left')
        else known.saidBye = true
        return
      case 'credit':
        // Never more than a receiver starts with: a bogus grant cannot switch flow control off.
        this.#credit = Math.min(this.#credit + frame.credit, Math.max(this.#credit, INITIAL_CREDIT))
        this.flush()
        return
      case 'retained':
        this.#host.answerRetained(this, frame.from, frame.patterns, frame.ask)
        return
      case 'events':
        this.received += frame.data.length
        this.#host.receive(this, frame)
        if (this.#endpoint.kind === 'point' && frame.answers === undefined) this.#grantLater(frame.data.length)
        return
    }
  }

  /** Grants credit for accepted events once per task. */
  #grantLater(count: number): void {
    if (this.#grant === 0) {
      queueMicrotask(() => {
        const credit = this.#grant
        this.#grant = 0
        this.#post({ kind: 'credit', credit })
      })
    }
    this.#grant += count
  }
}

/** Records and patterns of one neighbor, for a link's bounds. */
function weigh(records: ReadonlyMap<string, KnownRecord>): { records: number; patterns: number } {
  let patterns = 0
  for (const record of records.values()) patterns += record.patterns.length + record.replies.length
  return { records: records.size, patterns }
}
