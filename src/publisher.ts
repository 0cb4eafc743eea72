import { cloneError } from './cloneable.js'
import type { Counters } from './counters.js'
import type { DurableEngine } from './engine.js'
import { assignedTo, DURABLE, EMPTY_HEADERS, Envelope, LOCAL, REPLY_TO, RETAINED } from './envelope.js'
import { CrossbusError, quote } from './errors.js'
import { createEventIds } from './ids.js'
import type { Network, Outlet, RemoteGroup } from './network.js'
import { headersOption, knownOptions } from './options.js'
import type { RetainedState } from './retained.js'
import { ASSIGN_PREFIX, addressee, DONE_PREFIX, type Groups, MAX_WAITING, type Waiting } from './groups.js'
import type { GroupRoute, Route, Router } from './router.js'
import { DROPPED, EVICTED, type Subscriber } from './subscriber.js'
import { checkPublishable, isReserved } from './topic.js'
import type { BusEvent, Diagnostic, PublishOptions, Receipt } from './types.js'
import { readHeaders } from './wire.js'

/** Reserved topic on which a context says its durable log grew (data: the last position). */
export const LOG_TOPIC = '$log.appended'

/**
 * How an event is emitted, as bits: RETAINED and DURABLE (they travel with
 * the envelope), LOCAL (never handed to a link), UNCHECKED (the bus's own
 * events, which skip the cloneable check).
 */
export const UNCHECKED = 8
const ENVELOPE_FLAGS = RETAINED | DURABLE | LOCAL
const PUBLISH_OPTIONS = ['durable', 'retain', 'headers', 'local']

/** Publishes that may share one Date.now() reading within a task (a few microseconds at most). */
const CLOCK_READS_SHARED = 128
const RESOLVED: Promise<void> = Promise.resolve()
const NO_MEMBERS: readonly string[] = Object.freeze([])
const NO_SUBSCRIBERS: readonly Subscriber[] = Object.freeze([])
const NO_REMOTE_GROUPS: readonly RemoteGroup[] = Object.freeze([])

interface Assignment {
  readonly local: readonly Subscriber[]
  readonly full: readonly Subscriber[]
  readonly remote: string[] | undefined
  /** Queue groups with members elsewhere, all full (or with events waiting already): the event waits for room. */
  readonly wait: string[] | undefined
}

/** An event published while this context's links were still discovering their peers: its queue groups are chosen once they know them. */
interface Deferred {
  readonly event: BusEvent
  readonly tokens: readonly string[]
  /** Groups whose idle member here took it at once. */
  readonly taken: readonly string[] | undefined
}

/** What publishing needs from its bus. */
export interface PublisherHost {
  /** This context's id: the source of its events. */
  readonly id: string
  readonly counters: Counters
  readonly router: Router<Subscriber>
  readonly network: Network | undefined
  readonly durable: DurableEngine | undefined
  readonly retained: RetainedState
  /** Queue groups: which member gets an event. */
  readonly groups: Groups
  report(diagnostic: Diagnostic): void
  /** The asker of `replyTo` gave up (it said so from another context): its replier here, if any, is told. */
  cancel(replyTo: string, reason: unknown): void
  /** true: check every publish; undefined: those a link takes or the store keeps; false: none. */
  readonly validate: boolean | undefined
}

/**
 * The receipt; `id` is built only when asked for, which most publishers never
 * do. Its fields are assigned, not defined as class fields (a definition each
 * costs more than the assignment, on every publish).
 */
class PublishReceipt implements Receipt {
  declare readonly queued: number
  declare readonly dropped: number
  /** @internal */
  declare readonly ids: (seq: number) => string
  /** @internal */
  declare readonly seq: number
  /** @internal The append transaction of a durable event. */
  declare readonly append: { readonly promise: Promise<void> } | undefined

  constructor(ids: (seq: number) => string, seq: number, queued: number, dropped: number, append: { readonly promise: Promise<void> } | undefined) {
    const self = this as { -readonly [K in 'ids' | 'seq' | 'queued' | 'dropped' | 'append']: PublishReceipt[K] }
    self.ids = ids
    self.seq = seq
    self.queued = queued
    self.dropped = dropped
    self.append = append
  }

  get id(): string {
    return this.ids(this.seq)
  }

  get persisted(): Promise<void> {
    return this.append === undefined ? RESOLVED : this.append.promise
  }
}

/**
 * Where events enter this context's queues: its own publishes (sequence,
 * clock, ids, the receipt; the links and the store that take them) and the
 * events that arrive from other contexts.
 */
export class Publisher {
  readonly #host: PublisherHost
  readonly #ids: (seq: number) => string
  #seq = 0
  #closed = false
  // Date.now() costs as much as the rest of a publish; a burst in one task shares a reading.
  #time = 0
  #timeReadsLeft = 0
  readonly #resetClock = (): void => {
    this.#timeReadsLeft = 0
  }

  constructor(host: PublisherHost) {
    this.#host = host
    this.#ids = createEventIds(host.id)
  }

  /** publish(): checked options, then the one publish path. */
  publish(topic: string, data: unknown, options?: PublishOptions): Receipt {
    if (this.#closed) throw new CrossbusError('CLOSED', 'the bus is closed')
    checkPublishable(topic)
    if (options === undefined) return this.emit(topic, data, EMPTY_HEADERS, 0)
    knownOptions('publish', options, PUBLISH_OPTIONS)
    const durable = options.durable === true
    if (durable && this.#host.durable === undefined) {
      this.#host.router.route(topic)
      throw new CrossbusError('NO_STORE', 'durable publish needs a store: pass createBus({ store })')
    }
    // The store is shared by every context of the origin: a durable event cannot stay in this one.
    if (durable && options.local === true) throw new TypeError('crossbus: a publish cannot be both durable and local')
    const headers = options.headers === undefined ? EMPTY_HEADERS : headersOption(options.headers)
    const flags = (options.retain === true ? RETAINED : 0) | (options.local === true ? LOCAL : 0) | (durable ? DURABLE : 0)
    return this.emit(topic, data, headers, flags)
  }

  /** The one publish path: validated topic, bounded queues, never a handler call. `flags`: RETAINED, DURABLE, LOCAL, UNCHECKED. */
  emit(topic: string, data: unknown, headers: Readonly<Record<string, string>>, flags: number): Receipt {
    const host = this.#host
    const { targets, tokens, groups } = host.router.route(topic)
    const network = host.network
    const remoteGroups = network === undefined || (flags & LOCAL) !== 0 ? NO_REMOTE_GROUPS : network.groupsFor(topic, tokens)
    // While the links still discover their peers, members elsewhere are not known yet: an event that crosses
    // has its queue groups chosen once they are (see #assignDeferred). A request runs one replier by its own rule.
    const deferring =
      network?.linksDiscovering === true && (flags & (LOCAL | UNCHECKED)) === 0 && headers[REPLY_TO] === undefined && this.#deferred.length < MAX_WAITING
    // Queue groups, here and elsewhere: each gets one member, chosen now (the choice decides the links too).
    const assignment = deferring || (groups.length === 0 && remoteGroups.length === 0) ? undefined : this.#assign(groups, remoteGroups)
    const assigned = assignment?.remote
    // Links are chosen once: the choice decides validation, and the same links then get the event.
    let links = network === undefined || (flags & LOCAL) !== 0 ? undefined : network.linksFor(topic, tokens, undefined, assigned)
    const durable = (flags & DURABLE) !== 0
    const checked =
      (flags & UNCHECKED) === 0 &&
      (host.validate === true || (host.validate === undefined && ((links !== undefined && links.length > 0) || durable || assignment?.wait !== undefined)))
    if (checked) checkCloneable(topic, data)
    // Starting up: links that do not know their peers' interest yet take it too (if it can cross: nobody asked for it).
    if (links !== undefined && (network as Network).discovering && (checked || cloneError(data) === undefined))
      links = (network as Network).discoveryOutlets(links)
    const crossing = links !== undefined && links.length > 0
    // Not crossing (it cannot be cloned, or no link is discovering): only the members here can have it, chosen now.
    const deferred = deferring && crossing
    const assignedNow = deferring && !crossing && groups.length > 0 ? this.#assign(groups, NO_REMOTE_GROUPS) : assignment
    const seq = ++this.#seq
    host.counters.published++
    let event: BusEvent | undefined
    let queued = 0
    let dropped = 0
    // Only a bus with a store has durable subscriptions.
    const engine = host.durable
    for (let index = 0; index < targets.length; index++) {
      const target = targets[index] as Subscriber
      // Durable subscriptions take durable events from the store; a plain one may wait behind them (FIFO per source).
      if (engine !== undefined && target.durable !== undefined) {
        event ??= this.#envelope(topic, data, seq, headers, flags, assigned)
        const offered = engine.live(target, event, durable)
        if (durable) continue
        if (offered !== DROPPED) queued++
        if (offered === EVICTED || (offered === DROPPED && target.active)) dropped++
        continue
      }
      if (target.refuses()) {
        dropped++
        // Only the first drop of a report needs its event id.
        target.drops.record(topic, target.drops.reporting ? this.#ids(seq) : '')
        continue
      }
      event ??= this.#envelope(topic, data, seq, headers, flags, assigned)
      const offered = target.offer(event)
      if (offered !== DROPPED) queued++
      if (offered === EVICTED) dropped++
    }
    if (deferred) {
      event ??= this.#envelope(topic, data, seq, headers, flags)
      // A member here with nothing to do takes it at once (a lone tab's jobs do not wait for discovery to end).
      let taken: string[] | undefined
      for (const group of groups) {
        const idle = group.members.find((member) => member.active && member.load === 0)
        if (idle === undefined) continue
        ;(taken ??= []).push(group.key)
        idle.offer(event)
      }
      this.#deferred.push({ event, tokens, taken })
      if (groups.length > 0) queued++
    }
    if (assignedNow !== undefined) {
      const assignment = assignedNow
      for (const member of assignment.local) {
        event ??= this.#envelope(topic, data, seq, headers, flags, assigned)
        const offered = member.offer(event)
        if (offered !== DROPPED) queued++
        if (offered === EVICTED) dropped++
      }
      // Every member of these groups is full: each loses it, counted on its first local member.
      for (const first of assignment.full) {
        dropped++
        first.drops.record(topic, first.drops.reporting ? this.#ids(seq) : '')
      }
      if (assigned !== undefined)
        for (let index = 0; index < assigned.length; index += 2) host.groups.sent(assigned[index] as string, assigned[index + 1] as string)
      if (assignment.wait !== undefined) {
        event ??= this.#envelope(topic, data, seq, headers, flags, assigned)
        for (const key of assignment.wait) {
          if (host.groups.wait({ key, event, tokens })) queued++
          else {
            dropped++
            this.#waitDropped(key, topic, 1)
          }
        }
      }
      this.assigned = assigned
    }
    const retain = (flags & RETAINED) !== 0
    if (crossing || retain || durable) event ??= this.#envelope(topic, data, seq, headers, flags, assigned)
    if (retain) host.retained.keep(event as BusEvent, tokens, (flags & LOCAL) !== 0)
    if (crossing) {
      const sent = (network as Network).send(event as BusEvent, links as readonly Outlet[])
      queued += sent.queued
      dropped += sent.dropped
    }
    const persisted = durable ? (host.durable as DurableEngine).append(event as BusEvent, retain) : undefined
    return new PublishReceipt(this.#ids, seq, queued, dropped, persisted)
  }

  /**
   * An event from another context: to local subscriptions (not `local: true`
   * ones), kept if retained; false for an invalid topic (wire input).
   */
  deliverRemote(event: BusEvent): boolean {
    const host = this.#host
    if (event.topic === LOG_TOPIC) {
      host.durable?.grew(event.data)
      return true
    }
    const to = addressee(event.topic)
    if (to !== undefined) {
      // Addressed to a context: relayed by the network when it is another; here, taken by what it is for.
      if (to === host.id) {
        if (event.topic.startsWith(DONE_PREFIX)) this.#membersHandled(event)
        else if (event.topic.startsWith(ASSIGN_PREFIX)) this.#assignedHere(event)
        else if (typeof event.data === 'string' && event.data.startsWith(`$reply.${event.source}.`)) {
          // Only the asker can give up its request: the inbox is its own.
          host.cancel(event.data, new CrossbusError('ABORTED', `the asker ${event.source} gave up its request`))
        }
      }
      return true
    }
    let route: Route<Subscriber>
    try {
      route = host.router.route(event.topic)
    } catch {
      return false
    }
    const flags = Envelope.flags(event)
    const durable = (flags & DURABLE) !== 0
    for (const target of route.targets) {
      if (target.local) continue
      // A durable subscription reads durable events from the store, where they are in order and acked; a plain one may wait behind them.
      if (host.durable !== undefined && target.durable !== undefined) host.durable.live(target, event, durable)
      else target.offer(event)
    }
    // A queue group's member here gets it only when its publisher gave it to this context; but a request whose
    // asker knew no replier (it was still discovering its peers) is run here too: the first reply wins.
    const request = event.headers[REPLY_TO] !== undefined
    for (const group of route.groups) {
      if (!assignedTo(event, group.key, host.id) && !(request && group.key.startsWith('r ') && this.#orphaned(event, group.key))) continue
      const members = group.members.filter((member) => !member.local)
      const member = host.groups.choose(group.key, members, NO_MEMBERS)
      if (typeof member === 'object') member.offer(event)
      else {
        // Every member here is full: lost here, counted, and said handled so its publisher gives this context less.
        const first = members[0]
        first?.drops.record(event.topic, event.id)
        this.groupHandled(event, group.key)
      }
    }
    if ((flags & RETAINED) !== 0) host.retained.keep(event, route.tokens, false)
    return true
  }

  /** Tells the links that want it that the durable log grew: not app traffic, so straight to them. */
  announceLog(position: number): void {
    const network = this.#host.network
    if (network === undefined) return
    const wanted = network.linksFor(LOG_TOPIC, this.#host.router.tokens(LOG_TOPIC))
    const links = network.discovering ? network.discoveryOutlets(wanted) : wanted
    if (links.length === 0) return
    const seq = ++this.#seq
    network.send(this.#envelope(LOG_TOPIC, position, seq, EMPTY_HEADERS, 0), links)
  }

  /** publish() throws CLOSED from now on; what waits for a queue group member is dropped, counted. */
  close(): void {
    this.#closed = true
    let waiting = this.#host.groups.drain()
    // Deferred events are in a queue group's hands only where one matches them (most match none).
    for (const entry of this.#deferred.splice(0)) {
      const { groups, remoteGroups } = this.#groupsOf(entry)
      if (groups.length > 0 || remoteGroups.length > 0) waiting++
    }
    if (waiting === 0) return
    this.#host.counters.dropped += waiting
    this.#host.report({
      type: 'drop',
      count: waiting,
      message: `crossbus: ${waiting} event(s) waiting for a queue group member with room were dropped: the bus closed`,
    })
  }

  #envelope(topic: string, data: unknown, seq: number, headers: Readonly<Record<string, string>>, flags: number, assigned?: readonly string[]): BusEvent {
    const time = this.#timestamp()
    return new Envelope({ id: this.#ids(seq), topic, data, source: this.#host.id, seq, time, headers, redelivered: false }, flags & ENVELOPE_FLAGS, assigned)
  }

  /**
   * The member of each queue group that gets an event: this context's own
   * (`local`), another context (`remote`, pairs of group key and context id,
   * which travel with the event), or none, every member being full (`full`:
   * a local member of each such group, to count the drop on).
   */
  #assign(groups: readonly GroupRoute<Subscriber>[], remoteGroups: readonly RemoteGroup[]): Assignment {
    const choices = this.#host.groups
    const local: Subscriber[] = []
    const full: Subscriber[] = []
    let remote: string[] | undefined
    let wait: string[] | undefined
    for (const group of groups) {
      const others = remoteGroups.find((candidate) => candidate.key === group.key)
      // A group with members elsewhere keeps its order: behind what waits already, or waiting for room.
      const waits = others !== undefined && group.key.startsWith('q ')
      const member = waits && choices.waits(group.key) ? undefined : choices.choose(group.key, group.members, others?.members ?? NO_MEMBERS, others?.capacities)
      if (member === undefined) {
        if (waits) (wait ??= []).push(group.key)
        else full.push(group.members[0] as Subscriber)
      } else if (typeof member === 'string') (remote ??= []).push(group.key, member)
      else local.push(member)
    }
    for (const group of remoteGroups) {
      if (groups.some((candidate) => candidate.key === group.key)) continue
      const waits = group.key.startsWith('q ')
      const member = waits && choices.waits(group.key) ? undefined : choices.choose(group.key, NO_SUBSCRIBERS, group.members, group.capacities)
      if (typeof member === 'string') (remote ??= []).push(group.key, member)
      // Every member elsewhere is full: a queue group's event waits here for room (a replier group's request finds no one).
      else if (waits) (wait ??= []).push(group.key)
    }
    // One group given to another context, the common case: the same pair each time (it clones once per frame).
    if (remote?.length === 2) remote = choices.pair(remote[0] as string, remote[1] as string) as string[]
    return { local, full, remote, wait }
  }

  /** Events published while the links discovered their peers, in order (MAX_WAITING at most). */
  readonly #deferred: Deferred[] = []

  /**
   * The links know their peers now, or a member found room, or the members
   * changed: deferred events get their queue groups' members, then what waits
   * for room goes, in order.
   */
  groupsChanged(): void {
    if (this.#closed) return
    if (this.#deferred.length > 0 && this.#host.network?.linksDiscovering === false) this.#assignDeferred()
    if (this.#host.groups.waitingCount > 0) this.#release()
  }

  #assignDeferred(): void {
    const host = this.#host
    for (const entry of this.#deferred.splice(0)) {
      const { groups, remoteGroups } = this.#groupsOf(entry)
      if (groups.length === 0 && remoteGroups.length === 0) continue
      const { event, tokens } = entry
      const assignment = this.#assign(groups, remoteGroups)
      for (const member of assignment.local) member.offer(event)
      // Every member of these groups here is full: each loses it, counted on its first member.
      for (const first of assignment.full) first.drops.record(event.topic, event.id)
      const remote = assignment.remote
      if (remote !== undefined)
        for (let index = 0; index < remote.length; index += 2) this.#handOver(remote[index] as string, event, remote[index + 1] as string)
      for (const key of assignment.wait ?? NO_MEMBERS) if (!host.groups.wait({ key, event, tokens })) this.#waitDropped(key, event.topic, 1)
    }
  }

  /** The queue groups, here and elsewhere, that match a deferred event and have not taken it. */
  #groupsOf({ event, tokens, taken }: Deferred): { groups: readonly GroupRoute<Subscriber>[]; remoteGroups: readonly RemoteGroup[] } {
    // Its own topic: valid, so route() does not throw.
    let groups = this.#host.router.route(event.topic).groups
    let remoteGroups = this.#host.network?.groupsFor(event.topic, tokens) ?? NO_REMOTE_GROUPS
    if (taken !== undefined) {
      groups = groups.filter((group) => !taken.includes(group.key))
      remoteGroups = remoteGroups.filter((group) => !taken.includes(group.key))
    }
    return { groups, remoteGroups }
  }

  /** What waits for room goes to the members that have it, in order per group. */
  #release(): void {
    const host = this.#host
    host.groups.release((entry: Waiting) => {
      const { key, event, tokens } = entry
      // Its own topic: valid, so route() does not throw.
      const locals = host.router.route(event.topic).groups.find((group) => group.key === key)?.members ?? NO_SUBSCRIBERS
      const others = host.network?.groupsFor(event.topic, tokens).find((group) => group.key === key)
      const member = host.groups.choose(key, locals, others?.members ?? NO_MEMBERS, others?.capacities)
      if (member === undefined) return false
      if (typeof member === 'string') this.#handOver(key, event, member)
      else member.offer(event)
      return true
    })
  }

  /** Gives one of this context's events to member context `member` of group `key`, after its publish: addressed, relayed toward it. */
  #handOver(key: string, event: BusEvent, member: string): void {
    this.#host.groups.sent(key, member)
    const headers = event.headers === EMPTY_HEADERS ? null : event.headers
    this.emit(`${ASSIGN_PREFIX}${member}`, [key, event.topic, event.seq, event.time, headers, event.data], EMPTY_HEADERS, UNCHECKED)
  }

  /** More than MAX_WAITING events wait for queue group members with room: this one is dropped, counted and reported. */
  #waitDropped(key: string, topic: string, count: number): void {
    this.#host.counters.dropped += count
    this.#host.report({
      type: 'drop',
      topic,
      count,
      message: `crossbus: every member of queue group ${quote(key.split(' ')[1] as string)} is full and ${MAX_WAITING} events wait for room already; an event on ${quote(topic)} was dropped`,
    })
  }

  /**
   * An event of another context's, given to this one as a member of queue
   * group `key` after it was published (wire input, checked): to the member
   * here, as if it had come assigned.
   */
  #assignedHere(given: BusEvent): void {
    const host = this.#host
    const handOver = readHandOver(given.data)
    let route: Route<Subscriber> | undefined
    try {
      if (handOver !== undefined) route = host.router.route(handOver.topic)
    } catch {
      // A malformed topic: refused below.
    }
    if (handOver === undefined || route === undefined) {
      host.counters.rejected++
      host.report({ type: 'bad-frame', message: `crossbus: a malformed queue group hand-over from ${given.source} was refused` })
      return
    }
    const { key, topic, seq, time, headers, data } = handOver
    const source = given.source
    const event = new Envelope({ id: `${source}:${seq}`, topic, data, source, seq, time, headers, redelivered: false }, 0, host.groups.pair(key, host.id))
    const members = route.groups.find((group) => group.key === key)?.members.filter((member) => !member.local) ?? NO_SUBSCRIBERS
    const member = members.length === 0 ? undefined : host.groups.choose(key, members, NO_MEMBERS)
    if (typeof member === 'object') {
      member.offer(event)
      return
    }
    // No member here with room (or none left): lost here, counted, and said handled so its publisher gives this context less.
    const first = members[0]
    if (first !== undefined) first.drops.record(topic, event.id)
    else {
      host.counters.dropped++
      host.report({
        type: 'drop',
        topic,
        count: 1,
        message: `crossbus: an event on ${quote(topic)} given to this context's member of a queue group found none left here`,
      })
    }
    this.groupHandled(event, key)
  }

  /**
   * A request that no replier of group `key` will run unless this context
   * does: its asker knew none yet (still discovering), or the one it chose is
   * not reached from here (a service worker restarted under a new id, a
   * context gone meanwhile). The first reply wins.
   */
  #orphaned(event: BusEvent, key: string): boolean {
    const pairs = Envelope.assigned(event)
    if (pairs === undefined) return true
    const network = this.#host.network
    for (let index = 0; index < pairs.length; index += 2) {
      if (pairs[index] !== key) continue
      const member = pairs[index + 1] as string
      if (member === this.#host.id || network?.linkTo(member) !== undefined) return false
    }
    return true
  }

  /** Member-side: events of queue groups handled here, per publisher and group, said in one event per publisher and task. */
  readonly #handled = new Map<string, Map<string, number>>()

  /** A member here handled an event its publisher (another context) assigned to this context: the publisher is told, once per task. */
  groupHandled(event: BusEvent, key: string): void {
    const source = event.source
    if (source === this.#host.id || !key.startsWith('q ') || !assignedTo(event, key, this.#host.id)) return
    if (this.#handled.size === 0) queueMicrotask(() => this.#sayHandled())
    let counts = this.#handled.get(source)
    if (counts === undefined) this.#handled.set(source, (counts = new Map()))
    counts.set(key, (counts.get(key) ?? 0) + 1)
  }

  #sayHandled(): void {
    for (const [source, counts] of this.#handled) {
      if (this.#closed) break
      this.emit(`${DONE_PREFIX}${source}`, [...counts], EMPTY_HEADERS, UNCHECKED)
    }
    this.#handled.clear()
  }

  /** A member context says what it handled of this context's events: [group key, count][] (wire input, checked). */
  #membersHandled(event: BusEvent): void {
    const counts = event.data
    if (!Array.isArray(counts) || counts.length > 256) return
    for (const entry of counts) {
      if (!Array.isArray(entry) || typeof entry[0] !== 'string' || !Number.isSafeInteger(entry[1]) || (entry[1] as number) < 1) continue
      this.#host.groups.handled(entry[0], event.source, entry[1] as number)
    }
    // Room again: what waits for it goes.
    if (this.#host.groups.waitingCount > 0) this.#release()
  }

  /**
   * The queue group assignments of the last event this context published
   * (pairs: group key, member context id), for request(): which replier
   * elsewhere is running it.
   */
  assigned: readonly string[] | undefined = undefined

  /** Contexts that are gone: what this context sent them as queue group members and was not handled is lost, counted. */
  contextsGone(ids: readonly string[]): void {
    for (const id of ids) {
      const lost = this.#host.groups.gone(id)
      if (lost === 0) continue
      this.#host.counters.dropped += lost
      this.#host.report({
        type: 'drop',
        count: lost,
        message: `crossbus: ${lost} event(s) given to queue group member ${id} were not handled: it is gone`,
      })
    }
  }

  #timestamp(): number {
    if (this.#timeReadsLeft <= 0) {
      this.#time = Date.now()
      this.#timeReadsLeft = CLOCK_READS_SHARED
      queueMicrotask(this.#resetClock)
    }
    this.#timeReadsLeft--
    return this.#time
  }
}

/** A queue group hand-over's data, `[key, topic, seq, time, headers, data]` (wire input: checked, never thrown). */
function readHandOver(
  parts: unknown,
): { key: string; topic: string; seq: number; time: number; headers: Readonly<Record<string, string>>; data: unknown } | undefined {
  if (!Array.isArray(parts) || parts.length !== 6) return undefined
  const [key, topic, seq, time, rawHeaders, data] = parts as unknown[]
  if (typeof key !== 'string' || !key.startsWith('q ') || typeof topic !== 'string' || isReserved(topic)) return undefined
  if (typeof seq !== 'number' || !Number.isSafeInteger(seq) || seq < 1 || typeof time !== 'number' || !Number.isFinite(time)) return undefined
  const headers = rawHeaders === null ? EMPTY_HEADERS : readHeaders(rawHeaders)
  if (headers === undefined || headers === null) return undefined
  return { key, topic, seq, time, headers, data }
}

function checkCloneable(topic: string, data: unknown): void {
  const error = cloneError(data)
  if (error !== undefined) {
    throw new CrossbusError('NOT_CLONEABLE', `the data published on ${quote(topic)} cannot be structured-cloned`, { cause: error })
  }
}
