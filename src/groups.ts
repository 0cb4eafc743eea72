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
  choose<S extends Subscriber>(key: string, locals: readonly S[], remotes: readonly string[]): S | string | undefined {
    const count = locals.length + remotes.length
    if (count === 0) return undefined
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
        if (load >= REMOTE_IN_FLIGHT) continue
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
