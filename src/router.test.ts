import fc from 'fast-check'
import { expect, test } from 'vitest'
import { PatternIndex, Router } from './router.js'
import { matchTokens, parsePattern, parseTopic } from './topic.js'

const token = fc.constantFrom('a', 'b', 'c', '$r')
const pattern = fc
  .array(fc.oneof(token, fc.constant('*')), { minLength: 1, maxLength: 4 })
  .chain((tokens) => fc.oneof(fc.constant(tokens), fc.constant([...tokens.slice(0, -1), '>'])))
  .map((tokens) => tokens.join('.'))
const topic = fc.array(token, { minLength: 1, maxLength: 5 }).map((tokens) => tokens.join('.'))

test('PatternIndex matches exactly what matchTokens matches, reserved first tokens included', () => {
  fc.assert(
    fc.property(fc.array(pattern, { maxLength: 30 }), fc.array(topic, { minLength: 1, maxLength: 20 }), (patterns, topics) => {
      const index = new PatternIndex()
      const parsed = patterns.map((entry) => parsePattern(entry))
      for (const tokens of parsed) index.add(tokens)
      for (const entry of topics) {
        const tokens = parseTopic(entry)
        expect(index.matches(tokens)).toBe(parsed.some((tokens_) => matchTokens(tokens_, tokens)))
      }
    }),
    { numRuns: 1000 },
  )
})

test('PatternIndex: a topic of many tokens against patterns of stars and literals stays cheap', () => {
  const index = new PatternIndex()
  // Every mix of `a` and `*` over 10 tokens: 1,024 patterns, none of which ends where the topic does.
  for (let mask = 0; mask < 1024; mask++) index.add([...Array.from({ length: 10 }, (_, bit): string => ((mask >> bit) & 1 ? '*' : 'a')), 'end'])
  const tokens = Array.from({ length: 11 }, () => 'a')
  expect(index.matches(tokens)).toBe(false)
  expect(index.size).toBe(1024)
})

test('Router: a route cached before a subscription change is never reused for another topic', () => {
  const router = new Router<{ pattern: string; tokens: readonly string[] }>()
  const secret = { pattern: 'secret.*', tokens: ['secret', '*'] }
  router.add(secret)
  expect(router.route('secret.a').targets).toEqual([secret])
  router.add({ pattern: 'other', tokens: ['other'] })
  expect(() => router.route(undefined as unknown as string)).toThrow(TypeError)
})
