import fc from 'fast-check'
import { describe, expect, test } from 'vitest'
import { codeOf } from '../test/helpers.js'
import { MAX_TOPIC_LENGTH, matches, parsePattern, parseTopic } from './topic.js'

describe('parseTopic()', () => {
  test('accepts NATS subjects and returns their tokens', () => {
    expect(parseTopic('cart.updated')).toEqual(['cart', 'updated'])
    expect(parseTopic('a')).toEqual(['a'])
    expect(parseTopic('$reply.abc.1')).toEqual(['$reply', 'abc', '1'])
  })

  test.each([
    ['', 'empty'],
    ['a..b', 'empty token'],
    ['.a', 'leading dot'],
    ['a.', 'trailing dot'],
    ['a b', 'whitespace'],
    ['a.\tb', 'tab'],
    ['orders.*', 'wildcard *'],
    ['orders.>', 'wildcard >'],
    ['a*', 'star inside a token'],
    ['x'.repeat(MAX_TOPIC_LENGTH + 1), 'too long'],
  ])('rejects %j (%s) with INVALID_TOPIC', (topic) => {
    expect(codeOf(() => parseTopic(topic))).toBe('INVALID_TOPIC')
  })

  test('accepts a topic of exactly the maximum length', () => {
    expect(codeOf(() => parseTopic('x'.repeat(MAX_TOPIC_LENGTH)))).toBeUndefined()
  })

  test('throws TypeError for a non-string', () => {
    expect(() => parseTopic(42)).toThrow(TypeError)
  })
})

describe('parsePattern()', () => {
  test('accepts * anywhere and > last', () => {
    expect(parsePattern('cart.*')).toEqual(['cart', '*'])
    expect(parsePattern('*.updated')).toEqual(['*', 'updated'])
    expect(parsePattern('orders.>')).toEqual(['orders', '>'])
    expect(parsePattern('>')).toEqual(['>'])
  })

  test.each(['orders.>.x', 'a*', 'a.b>', '', 'a..b', 'a b'])('rejects %j with INVALID_TOPIC', (pattern) => {
    expect(codeOf(() => parsePattern(pattern))).toBe('INVALID_TOPIC')
  })
})

describe('matches()', () => {
  test.each([
    ['cart.*', 'cart.updated', true],
    ['cart.*', 'cart', false],
    ['cart.*', 'cart.a.b', false],
    ['orders.>', 'orders.eu', true],
    ['orders.>', 'orders.eu.created', true],
    ['orders.>', 'orders', false],
    ['>', 'anything.at.all', true],
    ['*.updated', 'cart.updated', true],
    ['*.updated', 'cart.created', false],
    ['a.b', 'a.b', true],
    ['a.b', 'a.c', false],
    ['>', '$reply.x.1', false],
    ['orders.>', 'orders.$x', true],
    ['*.x', '$reply.x', false],
    ['$reply.>', '$reply.x.1', true],
  ])('%s matches %s: %s', (pattern, topic, expected) => {
    expect(matches(pattern, topic)).toBe(expected)
  })

  const token = fc.stringMatching(/^[a-z0-9_-]{1,6}$/)
  const topic = fc.array(token, { minLength: 1, maxLength: 6 })

  test('a topic always matches itself, > and a pattern with one token replaced by *', () => {
    fc.assert(
      fc.property(topic, fc.nat(), (tokens, at) => {
        const star = [...tokens]
        star[at % tokens.length] = '*'
        const joined = tokens.join('.')
        return matches(joined, joined) && matches('>', joined) && matches(star.join('.'), joined)
      }),
    )
  })

  test('prefix.> matches exactly the topics with more tokens after the prefix', () => {
    fc.assert(
      fc.property(topic, topic, (prefix, other) => {
        const pattern = `${prefix.join('.')}.>`
        const longer = [...prefix, ...other].join('.')
        return matches(pattern, longer) && !matches(pattern, prefix.join('.'))
      }),
    )
  })
})
