/**
 * Queue groups, as in NATS: the subscriptions with the same queue name and
 * pattern, in every context, share the events; each goes to exactly one of
 * them. Repliers are grouped by queue name alone (a request runs one replier
 * of each queue name, by default one in all). The context that publishes
 * chooses the member: they take turns, skipping those that do not keep up
 * (its own members by their queues, other contexts' by what it sent them
 * that they have not yet said they handled).
 */
import type { Subscriber } from './subscriber.js'
import type { BusEvent } from './types.js'

/** The key of a subscription's queue group: its queue name and pattern (neither has whitespace). */
export const groupKey = (queue: string, pattern: string): string => `q ${queue} ${pattern}`

/** The key of a replier's group: its queue name ('' for none), whatever its pattern. */
export const replyGroupKey = (queue: string): string => `r ${queue}`

/** Events this context may have sent to one member context and not heard it handled, before that member counts as full. */
export const REMOTE_IN_FLIGHT = 1024

/** Group keys this context tracks members of, at most (each a small map). */
const MAX_GROUPS = 4096

/**
 * Events this context holds, at most, for queue groups whose members are all
 * full (or that it does not know yet: published while it discovers its peers);
 * past that each is dropped, counted.
 */
export const MAX_WAITING = 8192

/** An event of this context's that waits for a member of group `key` to have room (or to be known). */
export interface Waiting {
  readonly key: string
  readonly event: BusEvent
  readonly tokens: readonly string[]
}

/** The publisher's side of every queue group: whom to give an event, and what each member context still has of ours. */
export class Groups {
  /** Group key → member context id → events sent there and not yet reported handled. */
  readonly #inFlight = new Map<string, Map<string, number>>()
  /** Group key → whose turn it is next (an index into its members, locals first). */
  readonly #turns = new Map<string, number>()

  /**
   * The member that gets the next event of a group: a local subscription, a
   * member context's id, or undefined when every member is full. Members take
   * turns (round-robin), skipping one that is full: a local member whose queue
   * is full, or a member context that has as many of this context's events as
   * it can hold (its capacity, at most REMOTE_IN_FLIGHT) and has not yet said
   * it handled them. So a stalled member stops getting work, and the others
   * share it evenly.
   */
  choose<S extends Subscriber>(key: string, locals: readonly S[], remotes: readonly string[], capacities?: readonly number[]): S | string | undefined {
    const count = locals.length + remotes.length
    if (count === 0) return undefined
    // A request runs nearest first: an idle replier in this context takes it before any elsewhere.
    if (key.startsWith('r ')) for (const member of locals) if (member.active && member.load === 0) return member
    const turn = this.#turns.get(key) ?? 0
    const inFlight = this.#inFlight.get(key)
    for (let offset = 0; offset < count; offset++) {
      const index = (turn + offset) % count
      if (index < locals.length) {
        const member = locals[index] as S
        if (!member.active || member.queue.full) continue
        this.#turn(key, index + 1)
        return member
      }
      const at = index - locals.length
      const member = remotes[at] as string
      if ((inFlight?.get(member) ?? 0) >= Math.min(REMOTE_IN_FLIGHT, capacities?.[at] ?? REMOTE_IN_FLIGHT)) continue
      this.#turn(key, index + 1)
      return member
    }
    return undefined
  }

  #turn(key: string, next: number): void {
    if (this.#turns.size >= MAX_GROUPS && !this.#turns.has(key)) this.#turns.clear()
    this.#turns.set(key, next)
  }

  /** Assignment pairs, interned: a frame of events given to one member carries one array (structured clone keeps identity). */
  readonly #pairs = new Map<string, readonly string[]>()

  /** The assignment [key, member], the same array each time. */
  pair(key: string, member: string): readonly string[] {
    const id = `${key}\u0000${member}`
    let pair = this.#pairs.get(id)
    if (pair === undefined) {
      if (this.#pairs.size >= MAX_GROUPS) this.#pairs.clear()
      pair = Object.freeze([key, member])
      this.#pairs.set(id, pair)
    }
    return pair
  }

  /** An event of group `key` went to member context `member`. */
  sent(key: string, member: string): void {
    let inFlight = this.#inFlight.get(key)
    if (inFlight === undefined) {
      if (this.#inFlight.size >= MAX_GROUPS) return
      this.#inFlight.set(key, (inFlight = new Map()))
    }
    inFlight.set(member, (inFlight.get(member) ?? 0) + 1)
  }

  /** Member context `member` handled `count` events of group `key` that this context sent it. */
  handled(key: string, member: string, count: number): void {
    const inFlight = this.#inFlight.get(key)
    const left = (inFlight?.get(member) ?? 0) - count
    if (left > 0) inFlight?.set(member, left)
    else inFlight?.delete(member)
  }

  /** Events waiting for a member with room, oldest first, per group (MAX_WAITING in all). */
  readonly #waiting = new Map<string, Waiting[]>()
  #waitingCount = 0

  get waitingCount(): number {
    return this.#waitingCount
  }

  /** Does something of group `key` wait already (then a new event of it waits behind, in order)? */
  waits(key: string): boolean {
    return this.#waiting.has(key)
  }

  /** Holds an event for group `key` until a member has room; false when MAX_WAITING are held already (it is dropped). */
  wait(entry: Waiting): boolean {
    if (this.#waitingCount >= MAX_WAITING) return false
    const queue = this.#waiting.get(entry.key)
    if (queue === undefined) this.#waiting.set(entry.key, [entry])
    else queue.push(entry)
    this.#waitingCount++
    return true
  }

  /**
   * Hands out what waits, in order per group: `give` places one event (true) or
   * finds every member full (false: the rest of that group waits on).
   */
  release(give: (entry: Waiting) => boolean): void {
    for (const [key, queue] of this.#waiting) {
      let given = 0
      while (given < queue.length && give(queue[given] as Waiting)) given++
      if (given === 0) continue
      this.#waitingCount -= given
      if (given === queue.length) this.#waiting.delete(key)
      else queue.splice(0, given)
    }
  }

  /** Everything still waiting, taken out (the bus closes: each is dropped, counted). */
  drain(): number {
    const count = this.#waitingCount
    this.#waiting.clear()
    this.#waitingCount = 0
    return count
  }

  /** Member context `member` is gone: how many events sent to it it never said it handled (they are lost). */
  gone(member: string): number {
    let lost = 0
    for (const inFlight of this.#inFlight.values()) {
      lost += inFlight.get(member) ?? 0
      inFlight.delete(member)
    }
    return lost
  }
}

/** A context's membership of one queue group, as its record says (`q <queue> <pattern> <capacity>`, `r <queue> <pattern> <capacity>`). */
export interface Membership {
  readonly key: string
  readonly tokens: readonly string[]
  /** Events its members there can hold: a publisher gives it no more than that before it says it handled some. */
  readonly capacity: number
}

/**
 * A membership as a record entry: a subscription's is `q <queue> <pattern>
 * <capacity>`, a replier's `r <queue> <pattern> <capacity>` (capacity: what
 * this context's members of the group can hold, together).
 */
export const membershipEntry = (key: string, pattern: string, capacity: number): string =>
  key.startsWith('q ') ? `${key} ${capacity}` : `${key} ${pattern} ${capacity}`

/** Reads one membership entry from a peer's record; undefined when it is not one (never thrown: wire input). */
export function readMembership(entry: string, parse: (pattern: string) => readonly string[]): Membership | undefined {
  const parts = entry.split(' ')
  if (parts.length !== 4) return undefined
  const [kind, queue, pattern, size] = parts as [string, string, string, string]
  const capacity = Number(size)
  if ((kind !== 'q' && kind !== 'r') || (kind === 'q' && queue.length === 0) || pattern.length === 0 || pattern.charCodeAt(0) === 36 /* $ */) return undefined
  if (!Number.isSafeInteger(capacity) || capacity < 1) return undefined
  try {
    return { key: kind === 'q' ? groupKey(queue, pattern) : replyGroupKey(queue), tokens: parse(pattern), capacity }
  } catch {
    return undefined
  }
}

/**
 * Reserved topics addressed to one context, routed toward it rather than by
 * interest: `$group.done.<publisher>` (a member says what it handled of the
 * publisher's events) and `$abort.<replier>` (an asker gave up a request).
 */
export const DONE_PREFIX = '$group.done.'
export const ABORT_PREFIX = '$abort.'
/**
 * `$group.assign.<member>`: a publisher gives one of its events to a member
 * context after publishing it (it waited for room, or for the publisher to
 * learn the group's members); data `[key, topic, seq, time, headers, data]`.
 */
export const ASSIGN_PREFIX = '$group.assign.'

/** The context an addressed reserved topic goes to, or undefined for any other topic. */
export function addressee(topic: string): string | undefined {
  if (topic.startsWith(DONE_PREFIX)) return topic.slice(DONE_PREFIX.length)
  if (topic.startsWith(ABORT_PREFIX)) return topic.slice(ABORT_PREFIX.length)
  if (topic.startsWith(ASSIGN_PREFIX)) return topic.slice(ASSIGN_PREFIX.length)
  return undefined
}
