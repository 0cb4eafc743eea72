import { CrossbusError, quote } from './errors.js'

/** Longest topic or pattern accepted, in UTF-16 code units. */
export const MAX_TOPIC_LENGTH = 256

const WHITESPACE = /\s/

function invalid(kind: string, value: string, reason: string): CrossbusError {
  return new CrossbusError('INVALID_TOPIC', `invalid ${kind} ${quote(value)}: ${reason}`)
}

function checkShape(kind: string, value: unknown): string[] {
  if (typeof value !== 'string') throw new TypeError(`crossbus: ${kind} must be a string, got ${typeof value}`)
  if (value.length === 0) throw invalid(kind, value, 'it is empty')
  if (value.length > MAX_TOPIC_LENGTH) throw invalid(kind, value, `it is longer than ${MAX_TOPIC_LENGTH} characters`)
  const tokens = value.split('.')
  for (let index = 0; index < tokens.length; index++) {
    const token = tokens[index] as string
    if (token.length === 0) throw invalid(kind, value, `token ${index + 1} is empty`)
    if (WHITESPACE.test(token)) throw invalid(kind, value, `token ${index + 1} contains whitespace`)
  }
  return tokens
}

/**
 * Checks a concrete topic (what `publish` takes): NATS subject syntax without
 * wildcards. Returns its tokens. Throws INVALID_TOPIC.
 */
export function parseTopic(topic: unknown): string[] {
  const tokens = checkShape('topic', topic)
  for (const token of tokens) {
    if (token.includes('*') || token.includes('>')) {
      throw invalid('topic', topic as string, 'wildcards (* and >) belong in subscription patterns, not in published topics')
    }
  }
  return tokens
}

/**
 * Checks a subscription pattern: `*` matches exactly one token, `>` one or more
 * trailing tokens (last token only). Returns its tokens. Throws INVALID_TOPIC.
 */
export function parsePattern(pattern: unknown): string[] {
  const tokens = checkShape('pattern', pattern)
  for (let index = 0; index < tokens.length; index++) {
    const token = tokens[index] as string
    if (token === '*') continue
    if (token === '>') {
      if (index !== tokens.length - 1) throw invalid('pattern', pattern as string, '> may only be the last token')
      continue
    }
    if (token.includes('*') || token.includes('>')) {
      throw invalid('pattern', pattern as string, `token ${index + 1} mixes a wildcard with other characters`)
    }
  }
  return tokens
}

/** Parses patterns that came from elsewhere (a peer, a store): a malformed one is skipped, never thrown. */
export function parsePatterns(patterns: readonly string[]): string[][] {
  const parsed: string[][] = []
  for (const pattern of patterns) {
    try {
      parsed.push(parsePattern(pattern))
    } catch {
      // Skipped: the caller's input, not ours to throw.
    }
  }
  return parsed
}

/** True for topics whose first token starts with `$`: reserved for the bus itself. */
export function isReserved(topic: string): boolean {
  return topic.charCodeAt(0) === 36 /* $ */
}

/** Throws INVALID_TOPIC for a reserved topic: apps cannot publish (or request) on the bus's own topics. */
export function checkPublishable(topic: unknown): void {
  if (typeof topic === 'string' && isReserved(topic)) {
    throw invalid('topic', topic, 'a first token starting with $ is reserved for the bus')
  }
}

/** True when the pattern has no wildcard, so it matches exactly one topic. */
export function isExact(patternTokens: readonly string[]): boolean {
  return !patternTokens.includes('*') && !patternTokens.includes('>')
}

/**
 * Matches parsed pattern tokens against parsed topic tokens. As in NATS,
 * a wildcard in the first position does not match a reserved (`$…`) token.
 */
export function matchTokens(patternTokens: readonly string[], topicTokens: readonly string[]): boolean {
  const count = patternTokens.length
  for (let index = 0; index < count; index++) {
    const expected = patternTokens[index] as string
    const actual = topicTokens[index]
    if (expected === '>') return actual !== undefined && !(index === 0 && isReserved(actual))
    if (actual === undefined) return false
    if (expected === '*') {
      if (index === 0 && isReserved(actual)) return false
      continue
    }
    if (expected !== actual) return false
  }
  return count === topicTokens.length
}

/**
 * True when `topic` matches `pattern`. Both are validated.
 *
 * @example
 * matches('orders.>', 'orders.eu.created') // true
 * matches('cart.*', 'cart.a.b')           // false
 */
export function matches(pattern: string, topic: string): boolean {
  return matchTokens(parsePattern(pattern), parseTopic(topic))
}
