import { isExact, isReserved, matchTokens, parseTopic } from './topic.js'

/** Anything routable by pattern. */
export interface Routable {
  readonly pattern: string
  readonly tokens: readonly string[]
  /** A queue group's key: the targets of one group share each event (one of them gets it). */
  readonly group?: string | undefined
}

/** The members of one queue group that match a topic. */
export interface GroupRoute<S> {
  readonly key: string
  readonly members: readonly S[]
}

/** A validated topic and the subscriptions matching it now: each of `targets` gets an event, one member of each group does. */
export interface Route<S> {
  readonly tokens: readonly string[]
  readonly targets: readonly S[]
  readonly groups: readonly GroupRoute<S>[]
}

/** Routes kept before the cache starts over: enough for any app's working set of topics. */
const MAX_CACHED_ROUTES = 4096

const EMPTY: readonly never[] = Object.freeze([])

/**
 * Finds the subscriptions matching a topic in O(matching) for topics seen
 * before: exact patterns sit in a map, wildcard patterns in a list, and each
 * topic's answer is cached until the set of subscriptions changes. A cached
 * route's array is never mutated, so a publish can iterate it while handlers
 * subscribe and unsubscribe (mitt's snapshot-before-dispatch).
 */
export class Router<S extends Routable> {
  #exact = new Map<string, S[]>()
  #wildcard: S[] = []
  #cache = new Map<string, Route<S>>()
  #topics = new Map<string, readonly string[]>()
  #lastTopic: string | undefined
  #lastRoute: Route<S> | undefined

  add(target: S): void {
    if (isExact(target.tokens)) {
      const list = this.#exact.get(target.pattern)
      if (list === undefined) this.#exact.set(target.pattern, [target])
      else list.push(target)
    } else {
      this.#wildcard.push(target)
    }
    this.#invalidate()
  }

  /** Takes a target out of routing; false when it was not in it. */
  remove(target: S): boolean {
    if (isExact(target.tokens)) {
      const list = this.#exact.get(target.pattern)
      const index = list === undefined ? -1 : list.indexOf(target)
      if (list === undefined || index < 0) return false
      list.splice(index, 1)
      if (list.length === 0) this.#exact.delete(target.pattern)
    } else {
      const index = this.#wildcard.indexOf(target)
      if (index < 0) return false
      this.#wildcard.splice(index, 1)
    }
    this.#invalidate()
    return true
  }

  /** Validates `topic` (INVALID_TOPIC) and returns its route. */
  route(topic: string): Route<S> {
    // A burst usually repeats one topic: one string comparison instead of a lookup.
    if (topic === this.#lastTopic && this.#lastRoute !== undefined) return this.#lastRoute
    const cached = this.#cache.get(topic)
    if (cached !== undefined) {
      this.#lastTopic = topic
      this.#lastRoute = cached
      return cached
    }
    const tokens = this.tokens(topic)
    const exact = this.#exact.get(topic)
    const matched: S[] = exact === undefined ? [] : exact.slice()
    for (const target of this.#wildcard) if (matchTokens(target.tokens, tokens)) matched.push(target)
    let targets = matched
    let groups: GroupRoute<S>[] | undefined
    if (matched.some((target) => target.group !== undefined)) {
      targets = []
      const byKey = new Map<string, S[]>()
      for (const target of matched) {
        if (target.group === undefined) targets.push(target)
        else {
          const members = byKey.get(target.group)
          if (members === undefined) byKey.set(target.group, [target])
          else members.push(target)
        }
      }
      groups = [...byKey].map(([key, members]) => ({ key, members }))
    }
    const route: Route<S> = { tokens, targets: targets.length === 0 ? EMPTY : targets, groups: groups ?? EMPTY }
    if (this.#cache.size >= MAX_CACHED_ROUTES) this.#cache.clear()
    this.#cache.set(topic, route)
    this.#lastTopic = topic
    this.#lastRoute = route
    return route
  }

  /** Validates `topic` (INVALID_TOPIC) and returns its tokens; kept across subscription changes. */
  tokens(topic: string): readonly string[] {
    let tokens = this.#topics.get(topic)
    if (tokens === undefined) {
      tokens = parseTopic(topic)
      if (this.#topics.size >= MAX_CACHED_ROUTES) this.#topics.clear()
      this.#topics.set(topic, tokens)
    }
    return tokens
  }

  /** Every routed target, in no particular order. */
  all(): S[] {
    const targets: S[] = []
    for (const list of this.#exact.values()) targets.push(...list)
    targets.push(...this.#wildcard)
    return targets
  }

  #invalidate(): void {
    this.#lastTopic = undefined
    this.#lastRoute = undefined
    if (this.#cache.size > 0) this.#cache = new Map()
  }
}

/** A node of a PatternIndex: one token position of the patterns that pass through it. */
interface PatternNode {
  /** Children by literal token. */
  literal: Map<string, PatternNode> | undefined
  /** Child for `*`. */
  star: PatternNode | undefined
  /** Some pattern ends here with `>`: any one or more further tokens match. */
  rest: boolean
  /** Some pattern ends exactly here. */
  end: boolean
}

const node = (): PatternNode => ({ literal: undefined, star: undefined, rest: false, end: false })

/**
 * Patterns indexed by token, as NATS's sublist does: whether some pattern
 * matches a topic costs one map lookup per token of the topic and pattern
 * branch, not one comparison per pattern, so a peer that advertises many
 * patterns does not make each publish slower. Matching walks the topic's
 * tokens level by level over the set of live branches (never recursing), so
 * no pattern set makes it exponential: at most the number of indexed patterns
 * per level. Built once per change of interest; patterns are not removed.
 */
export class PatternIndex {
  readonly #root = node()
  /** Patterns added. */
  size = 0

  add(tokens: readonly string[]): void {
    let at = this.#root
    this.size++
    for (let index = 0; index < tokens.length; index++) {
      const token = tokens[index] as string
      if (token === '>') {
        at.rest = true
        return
      }
      if (token === '*') at = at.star ??= node()
      else {
        const literal = (at.literal ??= new Map())
        let next = literal.get(token)
        if (next === undefined) literal.set(token, (next = node()))
        at = next
      }
    }
    at.end = true
  }

  /** Does some indexed pattern match these (valid) topic tokens? Same rules as matchTokens. */
  matches(topic: readonly string[]): boolean {
    let level: PatternNode[] = [this.#root]
    for (let index = 0; index < topic.length; index++) {
      const token = topic[index] as string
      // As in NATS, a wildcard in the first position does not match a reserved ($…) token.
      const wild = index > 0 || !isReserved(token)
      const next: PatternNode[] = []
      for (const at of level) {
        if (at.rest && wild) return true
        const literal = at.literal?.get(token)
        if (literal !== undefined) next.push(literal)
        if (at.star !== undefined && wild) next.push(at.star)
      }
      if (next.length === 0) return false
      level = next
    }
    for (const at of level) if (at.end) return true
    return false
  }
}
