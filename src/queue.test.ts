import fc from 'fast-check'
import { describe, expect, test } from 'vitest'
import { BoundedQueue } from './queue.js'

describe('BoundedQueue', () => {
  test('is FIFO and refuses items beyond its capacity', () => {
    const queue = new BoundedQueue<number>(3)
    expect([queue.push(1), queue.push(2), queue.push(3), queue.push(4)]).toEqual([true, true, true, false])
    expect(queue.full).toBe(true)
    expect(queue.size).toBe(3)
    expect(queue.drain()).toEqual([1, 2, 3])
    expect(queue.shift()).toBeUndefined()
  })

  test('wraps around and grows without reordering', () => {
    const queue = new BoundedQueue<number>(100)
    const expected: number[] = []
    for (let round = 0; round < 45; round++) {
      for (let index = 0; index < 3; index++) {
        queue.push(round * 10 + index)
        expected.push(round * 10 + index)
      }
      expect(queue.shift()).toBe(expected.shift())
    }
    expect(queue.drain()).toEqual(expected)
  })

  test('behaves like a capped array under any sequence of pushes and shifts', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 40 }), fc.array(fc.oneof(fc.nat(), fc.constant(-1)), { maxLength: 300 }), (capacity, ops) => {
        const queue = new BoundedQueue<number>(capacity)
        const model: number[] = []
        for (const op of ops) {
          if (op === -1) {
            expect(queue.shift()).toBe(model.shift())
          } else {
            const accepted = model.length < capacity
            if (accepted) model.push(op)
            expect(queue.push(op)).toBe(accepted)
          }
          expect(queue.size).toBe(model.length)
        }
        expect(queue.drain()).toEqual(model)
      }),
    )
  })
})
