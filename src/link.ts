import { DropCounter } from './diagnostics.js'
import { DURABLE, Envelope, RETAINED } from './envelope.js'
import { errorMessage, quote } from './errors.js'
import { overflowPolicy, positiveInteger } from './options.js'
import { BoundedQueue, type Overflow } from './queue.js'
import { DEFAULT_BATCH, DEFAULT_LINK_CAPACITY, type Endpoint, INITIAL_CREDIT, PEER_TIMEOUT_MS, type Transport } from './seams.js'
import { matchTokens, parsePatterns } from './topic.js'
import type { BusEvent, Diagnostic, TransportStats } from './types.js'
import { decodeFrame, encodeEvents, type EventsFrame, type Frame, type RouteRecord, WIRE_VERSION } from './wire.js'

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
  /** A record arrived; false when it is stale (its context is known to be gone). */
  observe(record: RouteRecord): boolean
  /** The last neighbor of this link left. */
  deserted(link: Link, timedOut: boolean): void
}

export interface KnownRecord extends RouteRecord {
  readonly patternTokens: readonly (readonly string[])[]
  readonly replyTokens: readonly (readonly string[])[]
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
}

const sameList = (a: readonly string[], b: readonly string[]): boolean => a.length === b.length && a.every((item, index) => item === b[index])

/** Parses a record's patterns once: a heartbeat that only bumps the version reuses the parse. */
function know(record: RouteRecord, previous: KnownRecord | undefined): KnownRecord {
  if (previous !== undefined && sameList(previous.patterns, record.patterns) && sameList(previous.replies, record.replies)) {
    return previous.version === record.version ? previous : { ...previous, version: record.version }
  }
  return { ...record, patternTokens: parsePatterns(record.patterns), replyTokens: parsePatterns(record.replies) }
}

const sameRoutes = (a: readonly RouteRecord[] | undefined, b: readonly RouteRecord[]): boolean =>
  a !== undefined &&
  a.length === b.length &&
  a.every((record, index) => {
    const other = b[index] as RouteRecord
    return record.id === other.id && record.patterns.join('\n') === other.patterns.join('\n') && record.replies.join('\n') === other.replies.join('\n')
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
  #lastAnnounced: RouteRecord[] | undefined
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
    this.#credit = this.kind === 'point' ? INITIAL_CREDIT : Number.POSITIVE_INFINITY
    this.#endpoint.listen(
      (message) => this.#handle(message),
      (reason) => this.#refuse(reason),
    )
  }

  /** Does some context behind this link want `topic`? Cached until routes change. */
  wants(topic: string, tokens?: readonly string[]): boolean {
    let wanted = this.#wants.get(topic)
    if (wanted === undefined) {
      wanted = false
      tokens ??= topic.split('.')
      search: for (const neighbor of this.neighbors.values()) {
        for (const record of neighbor.records.values()) {
          for (const pattern of record.patternTokens) {
            if (matchTokens(pattern, tokens as readonly string[])) {
              wanted = true
              break search
            }
          }
        }
      }
      if (this.#wants.size >= 4096) this.#wants.clear()
      this.#wants.set(topic, wanted)
    }
    return wanted
  }

  /** Does some context behind this link answer requests on these tokens? */
  answers(tokens: readonly string[]): boolean {
    for (const neighbor of this.neighbors.values()) {
      for (const record of neighbor.records.values()) {
        if (record.replyTokens.some((pattern) => matchTokens(pattern, tokens))) return true
      }
    }
    return false
  }

  /** Every context reachable through this link, with the newest record of each. */
  records(): Map<string, KnownRecord> {
    const all = new Map<string, KnownRecord>()
    for (const neighbor of this.neighbors.values()) {
      for (const record of neighbor.records.values()) {
        const known = all.get(record.id)
        if (known === undefined || known.version < record.version) all.set(record.id, record)
      }
    }
    return all
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

  /** Posts events answering a retained-state request (outside the queue: they are few). */
  answer(to: string, events: readonly BusEvent[], ask: number): void {
    this.#postEvents(events, { ask, to })
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
    this.neighbors.clear()
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
    if (!this.neighbors.delete(id)) return
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
    if (changed) this.#wants.clear()
  }

  #routesChanged(): void {
    this.#wants.clear()
    this.#host.routesChanged()
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
      ...encodeEvents(events, answer === undefined ? (index) => (flags(index) & RETAINED) !== 0 : () => true, (index) => (flags(index) & DURABLE) !== 0),
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

  #refuse(reason: string): void {
    this.rejected++
    this.#host.count('rejected')
    this.#host.report({ type: 'bad-frame', transport: this.name, message: `crossbus: ${this.name} refused a frame: ${reason}` })
  }

  #handle(message: unknown): void {
    if (this.#closed) return
    const frame = decodeFrame(message)
    if (typeof frame === 'string') {
      this.#refuse(frame)
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
      this.announce({ ask: true, force: true })
    }
    switch (frame.kind) {
      case 'hello': {
        const neighbor = known ?? { lastSeen: Date.now(), records: new Map<string, KnownRecord>(), alive: false, lockLookups: 0 }
        if (known !== undefined && !known.alive) this.#host.unwatched(this, frame.from, known)
        const records = new Map<string, KnownRecord>()
        for (const record of frame.routes) {
          if (record.id !== this.#host.id && this.#host.observe(record)) records.set(record.id, know(record, neighbor.records.get(record.id)))
        }
        const changed = known === undefined || !sameRoutes([...neighbor.records.values()], [...records.values()])
        neighbor.records = records
        if (known === undefined) {
          this.neighbors.set(frame.from, neighbor)
          this.silentSince = undefined
          // Its peers answer its first hello at once: from the first answer on, interest decides.
          this.discovering = false
          this.#host.report({ type: 'peer-join', transport: this.name, message: `crossbus: peer ${frame.from} joined on ${this.name}` })
          // A new context on a point link (a restarted service worker) grants from scratch:
          // credit lost with its predecessor must not stall this link for good.
          if (this.kind === 'point') {
            this.#credit = INITIAL_CREDIT
            this.flush()
          }
        }
        if (changed) this.#routesChanged()
        if (known === undefined) this.#host.peerJoined(this, frame.from)
        if (frame.ask === true || known === undefined) this.announce({ force: true, answering: true })
        return
      }
      case 'bye':
        this.forget(frame.from, 'left')
        return
      case 'credit':
        this.#credit += frame.credit
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
