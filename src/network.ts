import { DEDUPE_WINDOW, DUPLICATE, SeenSources, type SourceSeqs, STALE } from './dedupe.js'
import { DURABLE, EMPTY_HEADERS, Envelope, REPLY_TO, RETAINED } from './envelope.js'
import { addressee } from './groups.js'
import { type KnownRecord, Link, type LinkHost, type Neighbor, preferred } from './link.js'
import { holdLock, lockManager } from './locks.js'
import { BoundedQueue } from './queue.js'
import { DISCOVERY_MS, type EndpointSource, HEARTBEAT_MS, PEER_TIMEOUT_MS, type Transport } from './seams.js'
import { isReserved, matchTokens, parsePatterns, parseTopic } from './topic.js'
import type { BusEvent, Diagnostic, PeerInfo, TransportStats } from './types.js'
import type { EventsFrame, RouteRecord } from './wire.js'

/** Contexts known at once (route records of distinct ids), at most: records of more are refused. */
export const MAX_PEERS = 1024
/** Topics whose queue group members are cached, at most. */
const MAX_CACHED_MEMBERS = 4096

/** A queue group and the other contexts that are members of it for some topic, with what each can hold. */
export interface RemoteGroup {
  readonly key: string
  readonly members: readonly string[]
  readonly capacities: readonly number[]
}
const NO_GROUPS: readonly RemoteGroup[] = Object.freeze([])
/** A record's version more than this beyond the highest believed for its context is not believed (about 12 days of beats). */
export const MAX_VERSION_STEP: number = 2 ** 20
/** The durable log's announcements: the one reserved topic a (same-origin) peer may publish. */
const LOG_TOPIC = '$log.appended'
/** Replies go to `$reply.<asker>.<n>`, and only along the way their request went. */
const REPLY_PREFIX = '$reply.'

/** What the network needs from its bus. */
export interface NetworkHost {
  readonly id: string
  readonly name: string
  report(diagnostic: Diagnostic): void
  count(field: 'dropped' | 'rejected' | 'received', amount?: number): void
  /** This context's own interest: subscription patterns, reply patterns, and queue group memberships (record entries). */
  interest(): { patterns: string[]; replies: string[]; groups: string[] }
  /** Delivers an event from another context (retained if flagged so) to local subscriptions; false when its topic is invalid. */
  deliver(event: BusEvent): boolean
  /** Retained events of this context matching one of the patterns. */
  retained(patterns: readonly (readonly string[])[]): BusEvent[]
  /** Delivers an answer to a retained-state request; false when its topic is invalid. */
  answered(ask: number, event: BusEvent): boolean
  /** A peer joined some link. */
  peerJoined(): void
  /** Contexts no longer reachable through any link (gone, or cut off). */
  contextsGone(ids: readonly string[]): void
  /** Queue group members may have changed (routes changed), or the links know their peers now. */
  groupsChanged(): void
  /** Node: whether the links may keep the thread alive while this context has reachable subscriptions. */
  readonly keepAlive: boolean
}

/** Where an event can be handed: a link, or the startup backlog of the links a source will accept. */
export interface Outlet {
  enqueue(event: BusEvent): 'queued' | 'evicted' | 'refused'
}

const NO_LINKS: readonly Outlet[] = Object.freeze([])

/** Events a source's startup backlog holds at most (for the pages that have not connected yet). */
const BACKLOG_CAPACITY = 1024

/**
 * What a shared or service worker publishes before any page has connected
 * (its script runs before the first connection arrives), held for
 * PEER_TIMEOUT_MS and handed to each link accepted meanwhile. Full: the oldest
 * goes (nobody asked for these yet, so it is not counted as a loss).
 */
class StartupBacklog implements Outlet {
  readonly events = new BoundedQueue<BusEvent>(BACKLOG_CAPACITY)

  enqueue(event: BusEvent): 'queued' {
    if (this.events.full) this.events.shift()
    this.events.push(event)
    return 'queued'
  }
}

/** Requests whose way back (or, asked here, whose links) are remembered, at most: the oldest is forgotten. */
const MAX_REPLY_PATHS = 1024

/**
 * A request that went through this context: the link it came by (none when
 * it was asked here), the links it went out on, and its topic's tokens. A
 * reply is taken only from one of those links, from a context behind it that
 * answers that topic; the first one goes back, later ones are dropped.
 */
interface ReplyRoute {
  readonly back: Link | undefined
  out: readonly Outlet[]
  readonly tokens: readonly string[]
  answered: boolean
}

const isReply = (topic: string): boolean => topic.charCodeAt(0) === 36 /* $ */ && topic.startsWith(REPLY_PREFIX)

/** An accepted link (a shared worker's port to one tab) whose tab has been silent this long is closed. */
const ABANDONED_MS = 5 * 60_000

/**
 * Links on which a neighbor's released lock means it is gone: BroadcastChannel
 * (same-origin tabs and workers) and the links a shared or service worker
 * accepts (one per page). Not a page's link to its service worker: a stopped
 * service worker lets go of its lock but is woken by the next message.
 */
const watchesLocks = (link: Link): boolean => link.kind === 'broadcast' || link.fromSource

/** Lookups of a neighbor's Web Lock before giving up on it (a context without locks: the heartbeat timeout applies). */
const MAX_LOCK_LOOKUPS = 5

/** Contexts remembered as gone, so their stale records circulating in a cycle of links are refused. */
const MAX_DEAD = 1024

/**
 * The bus's side of every link: announces what this context (and what it
 * relays for) wants, sends each event only on links where someone wants it,
 * relays between links, and drops events that arrive twice.
 */
export class Network implements LinkHost {
  readonly id: string
  readonly name: string
  readonly links: Link[] = []
  readonly #host: NetworkHost
  #version = 0
  #own: RouteRecord
  #announceScheduled = false
  /** Local subscriptions changed since the record was last built (it is rebuilt once per task). */
  #interestDirty = false
  readonly #seen = new SeenSources()
  #asks = 0
  /** Each known context: the version its record had when it last changed on some path, and when; the highest believed. */
  #fresh = new Map<string, { version: number; high: number; since: number }>()
  /** Contexts found gone, with the last version seen: older copies are refused. */
  #dead = new Map<string, number>()
  #timer: ReturnType<typeof setInterval> | undefined
  readonly #closed = new AbortController()
  readonly #locks = lockManager()
  #lock: AbortController | undefined
  readonly #transports: readonly Transport[]
  readonly #sources: EndpointSource[] = []
  /** Prefix of this context's inbox topics. */
  readonly #inbox: string
  /** Inbox topic of a request that went through here → its route. */
  #replies = new Map<string, ReplyRoute>()
  /** Set while a source may still accept its first links (DISCOVERY_MS from start). */
  #backlog: StartupBacklog | undefined
  #startedAt = 0
  /** Node: whether the links keep the thread alive (this context has subscriptions others can reach). */
  #kept = false
  readonly #keepAlive: boolean
  /** Set by closing(): remote events are refused from then on. */
  #closing = false
  #refusedWhileClosing = 0

  /** Nothing is opened until start(): the bus first builds every part the network calls back into. */
  constructor(host: NetworkHost, transports: readonly Transport[]) {
    this.#host = host
    this.id = host.id
    this.name = host.name
    this.#transports = transports
    this.#inbox = `${REPLY_PREFIX}${host.id}.`
    this.#keepAlive = host.keepAlive
    this.#own = { id: this.id, version: 0, patterns: [], replies: [] }
  }

  /** Opens the transports, says hello on each, and starts the heartbeat. */
  start(): void {
    this.#own = this.#record()
    this.#holdLock()
    this.#startedAt = Date.now()
    const context = { name: this.name, id: this.id }
    for (const transport of this.#transports) {
      const opened = transport.open(context)
      if (opened.kind === 'source') {
        this.#sources.push(opened)
        this.#backlog ??= new StartupBacklog()
        opened.accept((endpoint) => {
          const link = new Link(this, transport, endpoint, { fromSource: true })
          this.links.push(link)
          link.announce({ ask: true })
          if (this.#kept) link.keepAlive(true)
          // What this context published before the link existed, if it is still starting (a request among them goes out there too).
          if (this.#backlog !== undefined) {
            for (const event of this.#backlog.events.drain()) {
              link.enqueue(event)
              this.#routed(event, [link])
            }
          }
        })
      } else {
        this.links.push(new Link(this, transport, opened))
      }
    }
    // The first hello waits for the end of the task, so it carries the subscriptions an app makes
    // right after createBus(): a peer that hears it knows this context's interest (and replies).
    const opened = [...this.links]
    queueMicrotask(() => {
      this.#refreshOwn()
      for (const link of opened) link.announce({ ask: true })
    })
    this.#listenToPage()
    const discovery = setTimeout(() => this.#endDiscovery(Date.now()), DISCOVERY_MS)
    ;(discovery as { unref?: () => void }).unref?.()
    this.#timer = setInterval(() => this.#beat(), HEARTBEAT_MS)
    // Node: an idle bus must not keep the process alive.
    ;(this.#timer as { unref?: () => void }).unref?.()
  }

  // ---- LinkHost ----

  report(diagnostic: Diagnostic): void {
    this.#host.report(diagnostic)
  }

  count(field: 'dropped' | 'rejected', amount = 1): void {
    this.#host.count(field, amount)
  }

  routesFor(link: Link, answering: boolean): RouteRecord[] {
    if (answering) this.#own = this.#record()
    // Of several copies of a context's record, the preferred one (live, then the highest version).
    const now = Date.now()
    const chosen = new Map<string, KnownRecord>()
    for (const other of this.links) {
      if (other === link) continue
      for (const [id, record] of other.records()) {
        const known = chosen.get(id)
        if (id !== this.id && (known === undefined || preferred(record, known, now))) chosen.set(id, record)
      }
    }
    const routes: RouteRecord[] = [this.#own]
    for (const { id, version, patterns, replies, groups } of chosen.values()) {
      routes.push(groups === undefined ? { id, version, patterns, replies } : { id, version, patterns, replies, groups })
    }
    return routes.sort((a, b) => (a.id < b.id ? -1 : 1))
  }

  routesChanged(): void {
    this.#scheduleAnnounce()
  }

  peerJoined(link: Link, id: string): void {
    this.#host.peerJoined()
    if (this.discovering && !link.discovering) this.#endDiscovery(Date.now())
    if (watchesLocks(link)) void this.#watchLock(link, id)
  }

  unwatched(link: Link, id: string, neighbor: Neighbor): void {
    if (watchesLocks(link) && neighbor.lockLookups < MAX_LOCK_LOOKUPS) void this.#watchLock(link, id)
  }

  deserted(link: Link, timedOut: boolean): void {
    // A link accepted from a source (a SharedWorker port) ends with its only peer, unless that peer
    // only went silent: a frozen tab comes back on the same port (see #beat).
    if (link.fromSource && !timedOut) this.#drop(link)
  }

  #drop(link: Link): void {
    link.close()
    const index = this.links.indexOf(link)
    if (index >= 0) this.links.splice(index, 1)
  }

  observe(record: RouteRecord, changed: boolean): boolean | 'full' | 'absurd' {
    const dead = this.#dead.get(record.id)
    if (dead !== undefined) {
      if (record.version <= dead) return false
      this.#dead.delete(record.id)
    }
    const fresh = this.#fresh.get(record.id)
    if (fresh === undefined) {
      if (this.#fresh.size >= MAX_PEERS) return 'full'
      this.#fresh.set(record.id, { version: record.version, high: record.version, since: Date.now() })
    } else {
      // A version grows by one a beat or a change: one far beyond the highest believed is not believed.
      if (record.version > fresh.high + MAX_VERSION_STEP) return 'absurd'
      if (record.version > fresh.high) fresh.high = record.version
      if (changed) {
        // A version that changes is a sign of life, whatever its size: a copy that stops changing cannot outlive the real ones.
        fresh.version = record.version
        fresh.since = Date.now()
      }
    }
    return true
  }

  claimable(link: Link, id: string): boolean {
    if (id === this.id) return false
    for (const other of this.links) if (other !== link && (other.neighbors.has(id) || other.records().has(id))) return false
    return true
  }

  /**
   * Events from a link: each one checked (who may send it, what topic, seen
   * before?), delivered here, and relayed to the links that want it. What is
   * refused is counted and reported once per frame and reason.
   */
  receive(link: Link, frame: EventsFrame): void {
    if (this.#closing) {
      // The bus is closing: it takes no more remote events (they would keep its close waiting). Counted, reported once.
      const count = frame.data.length
      this.#host.count('dropped', count)
      if (this.#refusedWhileClosing === 0) {
        queueMicrotask(() =>
          this.#host.report({
            type: 'drop',
            transport: link.name,
            count: this.#refusedWhileClosing,
            message: `crossbus: ${this.#refusedWhileClosing} event(s) arrived while the bus was closing; they were not delivered`,
          }),
        )
      }
      this.#refusedWhileClosing += count
      return
    }
    const { sources, topics, src, seq, topic, time, data, headers, retained, durable, answers } = frame
    const refused = new Map<string, number>()
    const refuse = (reason: string): void => void refused.set(reason, (refused.get(reason) ?? 0) + 1)
    // Per entry of the source table: null when this link may not speak for it (a cross-origin
    // link, for a context not behind it), else its de-duplication windows.
    const windows = new Array<SourceSeqs | null>(sources.length)
    for (let index = 0; index < sources.length; index++) {
      const source = sources[index] as string
      windows[index] = link.crossOrigin && !link.records().has(source) ? null : this.#seen.of(source, this.#fresh.has(source))
    }
    for (let index = 0; index < data.length; index++) {
      const at = src[index] as number
      const source = sources[at] as string
      // Our own events, back through another path (two links to one peer, a cycle): delivered here already.
      if (source === this.id) continue
      const seqs = windows[at] as SourceSeqs | null
      if (seqs === null) {
        refuse(`events in the name of a context not behind this ${link.name} link`)
        continue
      }
      const eventSeq = seq[index] as number
      if (answers !== undefined) {
        // An answer to a retained-state request is an old event by design: one already taken (it came
        // live too) is dropped, but an answer marks nothing, so it cannot hide a later live copy.
        if (seqs.seen(eventSeq)) {
          link.duplicates++
          continue
        }
      } else {
        const seen = seqs.accept(eventSeq)
        if (seen === DUPLICATE) {
          link.duplicates++
          continue
        }
        if (seen === STALE) {
          refuse(`events older than the last ${DEDUPE_WINDOW} seen of their source (replayed, or far behind)`)
          continue
        }
      }
      const eventTopic = topics[topic[index] as number] as string
      const eventHeaders = headers?.[index] ?? EMPTY_HEADERS
      const reply = isReply(eventTopic)
      const to = addressee(eventTopic)
      if (
        isReserved(eventTopic) &&
        !reply &&
        to === undefined &&
        (eventTopic !== LOG_TOPIC || link.crossOrigin || !this.#fresh.has(source) || answers !== undefined)
      ) {
        refuse('events on a reserved topic')
        continue
      }
      if (to !== undefined && (answers !== undefined || (to !== this.id && this.linkTo(to) === undefined))) {
        refuse('events addressed to a context not reached from here')
        continue
      }
      const replyTo = eventHeaders[REPLY_TO]
      if (replyTo !== undefined && !isInboxOf(replyTo, source)) {
        refuse('a request whose reply would go to an inbox not its sender’s')
        continue
      }
      let route: ReplyRoute | undefined
      if (reply) {
        route = this.#replies.get(eventTopic)
        if (answers !== undefined || route === undefined || route.answered || !route.out.includes(link) || !link.answersFrom(source, route.tokens)) {
          // Not dropped as hostile: a reply after the first (its request has its answer), or one
          // overheard on a channel where this context is a bystander (another's request, another's reply).
          const overheard = link.kind === 'broadcast' && !eventTopic.startsWith(this.#inbox) && (route === undefined || route.back === link)
          if (route?.answered !== true && !overheard && !(route === undefined && this.#settledHere(eventTopic)))
            refuse('replies to no request that went that way')
          route = undefined
          continue
        }
      }
      const event = new Envelope(
        {
          id: `${source}:${eventSeq}`,
          topic: eventTopic,
          data: data[index],
          source,
          seq: eventSeq,
          time: time[index] as number,
          headers: eventHeaders,
          redelivered: false,
        },
        (retained?.has(index) === true ? RETAINED : 0) | (durable?.has(index) === true ? DURABLE : 0),
        frame.assigned?.[index] ?? undefined,
      )
      if (route !== undefined) {
        // Asked here: delivered to the inbox. Relayed: back the way the request came, and nowhere else.
        route.answered = true
        this.#host.count('received')
        if (route.back === undefined) this.#host.deliver(event)
        else route.back.enqueue(event)
        continue
      }
      if (answers !== undefined ? !this.#host.answered(answers, event) : !this.#host.deliver(event)) {
        refuse('events with an invalid topic')
        continue
      }
      if (answers !== undefined) continue
      this.#host.count('received')
      if (replyTo !== undefined) this.#rememberReply(replyTo, { back: link, out: NO_LINKS, tokens: eventTopic.split('.'), answered: false })
      const onward = this.linksFor(eventTopic, undefined, link, Envelope.assigned(event))
      if (onward.length > 0) this.send(event, onward)
    }
    for (const [reason, count] of refused) link.refuse(reason, count)
  }

  answerRetained(link: Link, from: string, patterns: readonly string[], ask: number): void {
    const events = this.#host.retained(parsePatterns(patterns))
    if (events.length > 0) link.answer(from, events, ask)
  }

  // ---- bus side ----

  /**
   * The links an event on `topic` goes to (never `except`): those behind which
   * someone wants it, and the way back of a reply, even before the asker's
   * interest is known (a service worker woken by the request has not heard the
   * page's hello yet). Empty (and shared) when none: the common local case.
   */
  linksFor(topic: string, tokens?: readonly string[], except?: Link, assigned?: readonly string[]): readonly Outlet[] {
    // A reply goes back the way its request came, once, and nowhere else.
    if (isReply(topic)) {
      const back = this.#replies.get(topic)
      return back?.back === undefined || back.answered || back.back === except ? NO_LINKS : [back.back]
    }
    // Addressed to one context: toward it, and nowhere else.
    const to = addressee(topic)
    if (to !== undefined) {
      const link = to === this.id ? undefined : this.linkTo(to)
      return link === undefined || link === except ? NO_LINKS : [link]
    }
    let found: Outlet[] | undefined
    for (const link of this.links) {
      if (link === except) continue
      if (link.neighbors.size === 0 || !link.wants(topic, tokens)) continue
      ;(found ??= []).push(link)
    }
    // Toward the queue group members it was assigned to, wherever they are.
    if (assigned !== undefined) {
      for (let index = 1; index < assigned.length; index += 2) {
        const member = assigned[index] as string
        if (member === this.id) continue
        const link = this.linkTo(member)
        if (link !== undefined && link !== except && !(found?.includes(link) ?? false)) (found ??= []).push(link)
      }
    }
    return found ?? NO_LINKS
  }

  /**
   * While discovering (see `discovering`): the outlets an event this context
   * publishes goes to beside `wanted` (what linksFor() chose): every link that
   * does not know its peers' interest yet, and the startup backlog of a source
   * whose first links may still come.
   */
  discoveryOutlets(wanted: readonly Outlet[]): readonly Outlet[] {
    let found: Outlet[] | undefined
    for (const link of this.links) if (link.discovering && !wanted.includes(link)) (found ??= [...wanted]).push(link)
    if (this.#backlog !== undefined) (found ??= [...wanted]).push(this.#backlog)
    return found ?? wanted
  }

  /** True while some link does not know its peers' interest yet, or a source may still accept its first links. */
  discovering = true
  /** True while some link does not know its peers yet (queue group members elsewhere are not known). */
  linksDiscovering = true

  /**
   * Hands an event to the outlets linksFor() or discoveryOutlets() chose; a
   * reply's way back is used once, and a request's outlets are remembered.
   * `queued` counts the links that took it because someone behind them wants
   * it, not those that took it only while discovering.
   */
  send(event: BusEvent, links: readonly Outlet[]): { queued: number; dropped: number } {
    let queued = 0
    let dropped = 0
    const reply = isReply(event.topic)
    for (const link of links) {
      // A reply never overtakes this context's own hello to the asker (held by the throttle): the asker takes replies only from contexts it knows.
      if (reply && link instanceof Link) link.helloFirst()
      const result = link.enqueue(event)
      if (result !== 'refused' && (!(link instanceof Link) || !link.discovering || link.neighbors.size > 0)) queued++
      if (result !== 'queued') dropped++
    }
    if (this.#replies.size > 0 || event.source === this.id) this.#routed(event, links)
    return { queued, dropped }
  }

  /** Remembers where a request went (asked here, or relayed; more outlets add to them), and that a reply went back. */
  #routed(event: BusEvent, links: readonly Outlet[]): void {
    if (isReply(event.topic)) {
      const route = this.#replies.get(event.topic)
      if (route !== undefined) route.answered = true
      return
    }
    const replyTo = event.headers[REPLY_TO]
    if (replyTo === undefined) return
    const route = this.#replies.get(replyTo)
    if (route !== undefined) route.out = route.out.length === 0 ? links : [...route.out, ...links]
    else if (event.source === this.id) {
      this.#rememberReply(replyTo, { back: undefined, out: links, tokens: event.topic.split('.'), answered: false })
      const asked = Number(replyTo.slice(this.#inbox.length))
      if (asked > this.#asked) this.#asked = asked
    }
  }

  /** The highest request number this context asked (`$reply.<id>.<n>`). */
  #asked = 0

  /**
   * A reply to a request asked here that has settled: a later one (several
   * repliers ran it while its asker was discovering, or it came after the
   * timeout), not taken and not hostile.
   */
  #settledHere(topic: string): boolean {
    if (!topic.startsWith(this.#inbox)) return false
    const asked = Number(topic.slice(this.#inbox.length))
    return Number.isSafeInteger(asked) && asked >= 1 && asked <= this.#asked
  }

  /** A request asked here has settled (answered, timed out, aborted): its replies are no longer taken. */
  settled(replyTo: string): void {
    if (this.#replies.get(replyTo)?.back === undefined) this.#replies.delete(replyTo)
  }

  #rememberReply(replyTo: string, route: ReplyRoute): void {
    if (this.#replies.size >= MAX_REPLY_PATHS) this.#replies.delete(this.#replies.keys().next().value as string)
    this.#replies.set(replyTo, route)
  }

  /** Local subscriptions changed: re-announce at the end of the task. */
  interestChanged(): void {
    this.#interestDirty = true
    this.#scheduleAnnounce()
  }

  /** Does a context behind some link answer requests on this topic? */
  hasResponder(tokens: readonly string[]): boolean {
    return this.links.some((link) => link.answers(tokens))
  }

  /** Asks every peer for its retained events matching `patterns`; answers go to `answered(ask, …)`. */
  askRetained(patterns: readonly string[]): number {
    const ask = ++this.#asks
    for (const link of this.links) if (link.neighbors.size > 0) link.askRetained(patterns, ask)
    return ask
  }

  /** Every context reachable through some link, with the link it is reached by. */
  peers(): PeerInfo[] {
    const peers = new Map<string, PeerInfo>()
    for (const link of this.links) {
      for (const neighbor of link.neighbors.values()) {
        for (const id of neighbor.records.keys()) {
          if (id !== this.id && !peers.has(id)) peers.set(id, { id, transport: link.name, lastSeen: neighbor.lastSeen })
        }
      }
    }
    return [...peers.values()]
  }

  stats(): TransportStats[] {
    return this.links.map((link) => link.stats())
  }

  /** Posts what the links hold; resolves when each has posted what it held (see Link.drained). */
  flush(): Promise<void> {
    for (const link of this.links) link.flush()
    return Promise.all(this.links.map((link) => link.drained())).then(() => undefined)
  }

  /** The bus is closing: remote events are no longer taken (what this context sends still goes, until close()). */
  closing(): void {
    this.#closing = true
  }

  close(): void {
    this.#holdThread(false)
    if (this.#timer !== undefined) clearInterval(this.#timer)
    this.#endDiscovery(Number.POSITIVE_INFINITY)
    for (const link of this.links) link.close()
    for (const source of this.#sources) source.close()
    this.#closed.abort()
  }

  /**
   * In a page: say goodbye on pagehide (closed, navigated, or frozen into the
   * back/forward cache) and hello again on pageshow, asking peers for what is
   * retained, so a restored page starts from the current state.
   */
  #listenToPage(): void {
    const page = globalThis as {
      addEventListener?: (type: string, listener: (event: { persisted?: boolean }) => void, options: { signal: AbortSignal }) => void
      document?: unknown
    }
    if (typeof page.addEventListener !== 'function' || page.document === undefined) return
    const signal = this.#closed.signal
    page.addEventListener(
      'pagehide',
      () => {
        for (const link of this.links) link.leave()
        // A held Web Lock keeps a page out of the back/forward cache: let it go while hidden.
        this.#lock?.abort()
        this.#lock = undefined
      },
      { signal },
    )
    page.addEventListener(
      'pageshow',
      (event) => {
        if (event.persisted !== true) return
        this.#holdLock()
        for (const link of this.links) link.rejoin()
      },
      { signal },
    )
  }

  /**
   * Every HEARTBEAT_MS: a new version of this context's record on every link;
   * direct neighbors silent too long are gone; and a context whose record has
   * not grown for PEER_TIMEOUT_MS is gone too, even while copies of its record
   * still circulate through a cycle of links (no count-to-infinity).
   */
  #beat(): void {
    const now = Date.now()
    this.#own = this.#record()
    if (this.discovering) this.#endDiscovery(now)
    for (const link of this.links) link.expire(now)
    let purged = false
    for (const [id, fresh] of this.#fresh) {
      if (now - fresh.since <= PEER_TIMEOUT_MS || this.#isNeighbor(id)) continue
      this.#fresh.delete(id)
      this.#seen.forget(id)
      if (this.#dead.size >= MAX_DEAD) this.#dead.delete(this.#dead.keys().next().value as string)
      this.#dead.set(id, fresh.version)
      for (const link of this.links) link.purge(id)
      purged = true
    }
    // Routes changed: the caches built from them go, and those contexts are gone (queue groups, requests).
    if (purged) this.#scheduleAnnounce()
    // Discovery is the ask-hello at open; a link nobody has answered stays quiet. One whose peer went
    // silent asks after it, so a tab back from a freeze and its shared worker find each other again;
    // an accepted link silent for ABANDONED_MS is given up (its tab crashed).
    for (const link of [...this.links]) {
      if (link.neighbors.size > 0) link.announce({ force: true })
      else if (link.silentSince !== undefined) {
        if (link.fromSource && now - link.silentSince > ABANDONED_MS) this.#drop(link)
        else link.announce({ ask: true, force: true })
      }
    }
  }

  /** Holds a lock while this context lives (not while in the back/forward cache): same-origin peers wait on it and learn at once when it dies. */
  #holdLock(): void {
    if (this.#locks === undefined || this.#lock !== undefined) return
    const hold = new AbortController()
    this.#lock = hold
    holdLock(this.#lockName(this.id), AbortSignal.any([hold.signal, this.#closed.signal])).catch(() => {})
  }

  #isNeighbor(id: string): boolean {
    return this.links.some((link) => link.neighbors.has(id))
  }

  #lockName(id: string): string {
    return `crossbus:${this.name}:${id}`
  }

  /** Waits on a same-origin neighbor's lock: granted means it died (crash, kill, closed tab). */
  async #watchLock(link: Link, id: string): Promise<void> {
    const locks = this.#locks
    if (locks === undefined) return
    const name = this.#lockName(id)
    const neighbor = link.neighbors.get(id)
    if (neighbor === undefined || neighbor.alive) return
    neighbor.lockLookups++
    try {
      const { held = [], pending = [] } = await locks.query()
      // Not there yet: its hello overtook its lock request. Its next hellos look again.
      if (!held.some((lock) => lock.name === name) && !pending.some((lock) => lock.name === name)) return
      if (neighbor.alive || link.neighbors.get(id) !== neighbor) return
      neighbor.alive = true
      // One request per neighbor, ended when it is forgotten: hellos and byes cannot pile requests up.
      const watch = new AbortController()
      neighbor.watch = watch
      await locks.request(name, { signal: AbortSignal.any([this.#closed.signal, watch.signal]) }, () => {
        link.forget(id, neighbor.saidBye === true ? 'left' : 'is gone (its lock was released)')
      })
    } catch {
      // Aborted by close, or locks unavailable here (opaque origin): the heartbeat timeout still applies.
    }
  }

  /** Ends discovery where its time is up: DISCOVERY_MS for broadcast links and sources, PEER_TIMEOUT_MS for a silent point link. */
  #endDiscovery(now: number): void {
    let discovering = false
    for (const link of this.links) {
      if (link.discovering && now - link.openedAt >= DISCOVERY_MS) link.discovering = false
      discovering ||= link.discovering
    }
    if (this.#backlog !== undefined && now - this.#startedAt >= PEER_TIMEOUT_MS) this.#backlog = undefined
    this.discovering = discovering || this.#backlog !== undefined
    if (this.linksDiscovering && !discovering) {
      this.linksDiscovering = false
      // Often inside the last link's first hello: the caches built from routes before it are stale already.
      this.#members.clear()
      this.#routes.clear()
      this.#host.groupsChanged()
    }
    if (!this.discovering) {
      const waiters = this.#discovered
      this.#discovered = []
      for (const resolve of waiters) resolve()
    }
  }

  #discovered: (() => void)[] = []

  /** Resolves once discovery is over (see `discovering`). */
  discovered(): Promise<void> {
    this.#endDiscovery(Date.now())
    if (!this.discovering) return Promise.resolve()
    return new Promise((resolve) => this.#discovered.push(resolve))
  }

  /** This context's record, rebuilt from its interest; the thread is held while the interest is not empty. */
  #refreshOwn(): void {
    this.#interestDirty = false
    this.#own = this.#record()
    this.#holdThread(this.#own.patterns.length + this.#own.replies.length > 0)
  }

  #record(): RouteRecord {
    const { patterns, replies, groups } = this.#host.interest()
    const version = ++this.#version
    return groups.length === 0 ? { id: this.id, version, patterns, replies } : { id: this.id, version, patterns, replies, groups }
  }

  #scheduleAnnounce(): void {
    if (this.#announceScheduled) return
    this.#announceScheduled = true
    queueMicrotask(() => {
      this.#announceScheduled = false
      if (this.#interestDirty) this.#refreshOwn()
      this.#members.clear()
      this.#routes.clear()
      this.#noticeGone()
      for (const link of this.links) link.announce()
      this.#host.groupsChanged()
    })
  }

  /** Contexts reachable at the last look; those that are no longer are reported gone once. */
  #reachable = new Set<string>()

  #noticeGone(): void {
    const now = new Set<string>()
    for (const link of this.links) for (const id of link.records().keys()) if (id !== this.id) now.add(id)
    let gone: string[] | undefined
    for (const id of this.#reachable) if (!now.has(id)) (gone ??= []).push(id)
    this.#reachable = now
    if (gone !== undefined) this.#host.contextsGone(gone)
  }

  /** Topic → the queue groups other contexts are members of for it, until routes change. */
  readonly #members = new Map<string, readonly RemoteGroup[]>()
  /** Context id → the link that reaches it, until routes change. */
  readonly #routes = new Map<string, Link | null>()

  /**
   * The queue groups that other contexts are members of for this topic (their
   * record says so, and its pattern matches), each with its member contexts.
   * Cached until routes change: a publish pays one lookup.
   */
  groupsFor(topic: string, tokens: readonly string[]): readonly RemoteGroup[] {
    const cached = this.#members.get(topic)
    if (cached !== undefined) return cached
    let groups: RemoteGroup[] | undefined
    for (const link of this.links) {
      for (const record of link.records().values()) {
        if (record.id === this.id) continue
        for (const membership of record.memberships) {
          if (!matchTokens(membership.tokens, tokens)) continue
          groups ??= []
          let group = groups.find((candidate) => candidate.key === membership.key)
          if (group === undefined) groups.push((group = { key: membership.key, members: [], capacities: [] }))
          const at = group.members.indexOf(record.id)
          if (at < 0) {
            ;(group.members as string[]).push(record.id)
            ;(group.capacities as number[]).push(membership.capacity)
          } else (group.capacities as number[])[at] = (group.capacities[at] as number) + membership.capacity
        }
      }
    }
    const found = groups ?? NO_GROUPS
    if (this.#members.size >= MAX_CACHED_MEMBERS) this.#members.clear()
    this.#members.set(topic, found)
    return found
  }

  /** The link through which context `id` is reached (the first that knows it), if any. */
  linkTo(id: string): Link | undefined {
    let link = this.#routes.get(id)
    if (link === undefined) {
      link = this.links.find((candidate) => candidate.records().has(id)) ?? null
      if (this.#routes.size >= MAX_PEERS) this.#routes.clear()
      this.#routes.set(id, link)
    }
    return link ?? undefined
  }

  /**
   * Node: the links keep the thread alive while this context has
   * subscriptions or repliers other contexts can reach (a worker that
   * processes jobs must not exit), and let go when it has none.
   */
  #holdThread(keep: boolean): void {
    keep &&= this.#keepAlive
    if (keep === this.#kept) return
    this.#kept = keep
    for (const link of this.links) link.keepAlive(keep)
    const timer = this.#timer as { ref?: () => void; unref?: () => void } | undefined
    if (keep) timer?.ref?.()
    else timer?.unref?.()
  }
}

/** Is `topic` an inbox of `source` (`$reply.<source>.<…>`), and a valid topic? */
function isInboxOf(topic: string, source: string): boolean {
  if (!topic.startsWith(`${REPLY_PREFIX}${source}.`)) return false
  try {
    parseTopic(topic)
    return true
  } catch {
    return false
  }
}
