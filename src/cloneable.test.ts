import fc from 'fast-check'
import { expect, test } from 'vitest'
import { cloneError, plainCloneable } from './cloneable.js'

test('plain data is recognised without cloning; functions and symbols are refused', () => {
  expect(plainCloneable({ a: [1, 'x', null, undefined, true, 2n], d: new Date(), r: /x/, b: new Uint8Array(3) })).toBe('yes')
  expect(plainCloneable({ nested: { f: () => 1 } })).toBe('no')
  expect(plainCloneable([Symbol('s')])).toBe('no')
  expect(plainCloneable(new Map([[1, 2]]))).toBe('unknown')
  const cycle: Record<string, unknown> = {}
  cycle.self = cycle
  expect(plainCloneable(cycle)).toBe('unknown')
})

test('cloneError agrees with structuredClone on any value', () => {
  const values = fc.oneof(
    fc.anything({ withMap: true, withSet: true, withDate: true, withTypedArray: true, withBigInt: true, withNullPrototype: true }),
    fc.constant(() => 1),
    fc.record({ f: fc.func(fc.integer()) }),
    fc.constant({ s: Symbol('x') }),
    fc.constant(
      new (class Point {
        x = 1
      })(),
    ),
  )
  fc.assert(
    fc.property(values, (value) => {
      let expected: boolean
      try {
        structuredClone(value)
        expected = true
      } catch {
        expected = false
      }
      return (cloneError(value) === undefined) === expected
    }),
    { numRuns: 2000 },
  )
})
