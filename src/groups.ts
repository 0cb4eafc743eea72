/**
 * Queue groups, as in NATS: the subscriptions with the same queue name and
 * pattern, in every context, share the events; each goes to exactly one of
 * them. Repliers are grouped by queue name alone (a request runs one replier
 * of each queue name, by default one in all). The context that publishes
 * chooses the member: the least loaded of those that keep up (its own
 * members by their queues, other contexts' by what it sent them that they
 * have not yet said they handled), taking turns on a tie.
 */
import type { Subscriber } from './subscriber.js'

/** The key of a subscription's queue group: its queue name and pattern (neither has whitespace). */
export const groupKey = (queue: string, pattern: string): string => `q ${queue} ${pattern}`

/** The key of a replier's group: its queue name ('' for none), whatever its pattern. */
export const replyGroupKey = (queue: string): string => `r ${queue}`

/** Events this context may have sent to one member context and not heard it handled, before that member counts as full. */
export const REMOTE_IN_FLIGHT = 1024

/** Group keys this context tracks members of, at most (each a small map). */
const MAX_GROUPS = 4096

/** The publisher's side of every queue group: whom to give an event, and what each member context still has of ours. */
export class Groups {
  /** Group key → member context id → events sent there and not yet reported handled. */
  readonly #inFlight = new Map<string, Map<string, number>>()
  /** Group key → how many choices were made (ties take turns by it). */
  readonly #turns = new Map<string, number>()

  /**
   * The member that gets the next event of a group: a local subscription, a
   * member context's id, or undefined when every member is full.
   */
  choose<S extends Subscriber>(key: string, locals: readonly S[], remotes: readonly string[], capacities?: readonly number[]): S | string | undefined {
    const count = locals.length + remotes.length
    if (count === 0) return undefined
    // A request runs nearest first: an idle replier in this context takes it before any elsewhere.
    if (key.startsWith('r ')) for (const member of locals) if (member.active && member.load === 0) return member
    const turn = this.#turns.get(key) ?? 0
    if (this.#turns.size >= MAX_GROUPS && !this.#turns.has(key)) this.#turns.clear()
    this.#turns.set(key, turn + 1)
    const inFlight = this.#inFlight.get(key)
    let best: S | string | undefined
    let bestLoad = Number.POSITIVE_INFINITY
    for (let offset = 0; offset < count; offset++) {
      const index = (turn + offset) % count
      if (index < locals.length) {
        const member = locals[index] as S
        if (!member.active || member.queue.full) continue
        const load = member.load
        if (load < bestLoad) {
          best = member
          bestLoad = load
        }
      } else {
        const member = remotes[index - locals.length] as string
        const load = inFlight?.get(member) ?? 0
        if (load >= Math.min(REMOTE_IN_FLIGHT, capacities?.[index - locals.length] ?? REMOTE_IN_FLIGHT)) continue
        if (load < bestLoad) {
          best = member
          bestLoad = load
        }
      }
      if (bestLoad === 0) break
    }
    return best
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

/** The context an addressed reserved topic goes to, or undefined for any other topic. */
export function addressee(topic: string): string | undefined {
  if (topic.startsWith(DONE_PREFIX)) return topic.slice(DONE_PREFIX.length)
  if (topic.startsWith(ABORT_PREFIX)) return topic.slice(ABORT_PREFIX.length)
  return undefined
}
