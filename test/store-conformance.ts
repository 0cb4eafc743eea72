/**
 * One storage conformance suite, run over every Store (memoryStore in every
 * runtime, indexedDbStore on fake-indexeddb in Node and on real IndexedDB in
 * Chromium): the same assertions, so the two behave alike.
 */
import { describe, expect, test } from 'vitest'
import type { Store, StoredEvent } from '../src/types.js'

type Input = Omit<StoredEvent, 'position'>

export function event(seq: number, topic = 'orders.created', extra: Partial<Input> = {}): Input {
  return { id: `src:${seq}`, topic, data: { seq }, source: 'src', seq, time: 1_000 + seq, headers: {}, retain: false, ...extra }
}

export function describeStore(name: string, makeStore: (options?: { maxAge?: number; maxEvents?: number }) => Store): void {
  describe(`store conformance: ${name}`, () => {
    test('appends in order with growing positions and reads back after a position, oldest first', async () => {
      const store = makeStore()
      const first = await store.append([event(1), event(2)])
      const second = await store.append([event(3, 'cart.updated', { headers: { trace: 't' }, retain: true })])
      expect(first).toHaveLength(2)
      expect((first[1] as number) > (first[0] as number)).toBe(true)
      expect((second[0] as number) > (first[1] as number)).toBe(true)
      const all = await store.read(0, 100)
      expect(all.map((stored) => stored.seq)).toEqual([1, 2, 3])
      expect(all[2]).toMatchObject({ topic: 'cart.updated', headers: { trace: 't' }, retain: true, data: { seq: 3 }, position: second[0] })
      expect((await store.read(first[0] as number, 1)).map((stored) => stored.seq)).toEqual([2])
      expect(await store.read(second[0] as number, 10)).toEqual([])
      store.close()
    })

    test('keeps a copy: changing the appended object later changes nothing stored', async () => {
      const store = makeStore()
      const input = event(1)
      await store.append([input])
      ;(input.data as { seq: number }).seq = 99
      expect((await store.read(0, 1))[0]?.data).toEqual({ seq: 1 })
      store.close()
    })

    test('a new consumer starts from the oldest event; its cursor only moves forward', async () => {
      const store = makeStore()
      const [position] = await store.append([event(1)])
      expect(await store.register('mailer', 'orders.*')).toEqual({ pattern: 'orders.*', cursor: 0 })
      await store.ack('mailer', position as number)
      await store.ack('mailer', 0)
      expect(await store.register('mailer', 'orders.*')).toEqual({ pattern: 'orders.*', cursor: position })
      store.close()
    })

    test('an event leaves once every matching consumer has acked it, and not before; unclaimed ones stay', async () => {
      const store = makeStore()
      const [a, b, c] = await store.append([event(1, 'orders.created'), event(2, 'orders.paid'), event(3, 'nobody.cares')])
      await store.register('mailer', 'orders.*')
      await store.register('ledger', 'orders.paid')
      await store.ack('mailer', b as number)
      expect(await store.compact(2_000)).toEqual({ deleted: 1, evicted: 0 })
      // orders.created: only mailer matches and it acked → gone. orders.paid: ledger has not acked.
      expect((await store.read(0, 10)).map((stored) => stored.position)).toEqual([b, c])
      await store.ack('ledger', b as number)
      expect(await store.compact(2_000)).toEqual({ deleted: 1, evicted: 0 })
      expect((await store.read(0, 10)).map((stored) => stored.position)).toEqual([c])
      void a
      store.close()
    })

    test('maxAge and maxEvents evict, acked or not, and say how many', async () => {
      const aged = makeStore({ maxAge: 500 })
      await aged.append([event(1, 'a', { time: 0 }), event(2, 'a', { time: 900 })])
      expect(await aged.compact(1_000)).toEqual({ deleted: 0, evicted: 1 })
      expect((await aged.read(0, 10)).map((stored) => stored.seq)).toEqual([2])
      aged.close()
      const bounded = makeStore({ maxEvents: 2 })
      // A consumer that is gone for good (it never acks) cannot keep the log growing.
      await bounded.register('gone', '>')
      await bounded.append([event(1), event(2), event(3)])
      expect(await bounded.compact(2_000)).toEqual({ deleted: 0, evicted: 1 })
      expect((await bounded.read(0, 10)).map((stored) => stored.seq)).toEqual([2, 3])
      bounded.close()
    })

    test('appends from two handles on one log never share a position', async () => {
      const one = makeStore()
      const other = makeStore()
      const results = await Promise.all([one.append([event(1), event(2)]), other.append([event(3), event(4)]), one.append([event(5)])])
      const positions = results.flat()
      expect(new Set(positions).size).toBe(5)
      one.close()
      other.close()
    })

    test('keeps the last retained event of each topic, even after the event itself left the log', async () => {
      const store = makeStore({ maxEvents: 1 })
      await store.append([event(1, 'cart.state', { retain: true }), event(2, 'cart.state', { retain: true }), event(3, 'theme', { retain: true })])
      await store.append([event(4, 'cart.state')])
      await store.compact(2_000)
      expect((await store.read(0, 10)).map((stored) => stored.seq)).toEqual([4])
      const retained = await store.retained()
      expect(retained.map((stored) => [stored.topic, stored.seq]).sort()).toEqual([
        ['cart.state', 2],
        ['theme', 3],
      ])
      store.close()
    })

    test('an append is all or nothing: data that cannot be stored fails it with NOT_CLONEABLE and stores none of it', async () => {
      const store = makeStore()
      await expect(store.append([event(1), event(2, 'orders.created', { data: { run: () => {} } })])).rejects.toMatchObject({ code: 'NOT_CLONEABLE' })
      const [position] = await store.append([event(3)])
      expect((await store.read(0, 10)).map((stored) => [stored.seq, stored.position])).toEqual([[3, position]])
      store.close()
    })

    test('a read after a position the log never reached starts from its oldest event: positions cannot go back, so the log was replaced', async () => {
      const store = makeStore()
      const [first, last] = await store.append([event(1), event(2)])
      expect(await store.read(last as number, 10)).toEqual([])
      // A reader this far ahead has seen positions this log never handed out (another tab deleted the database):
      // it is shown the log from its start, and its positions going back tell it so.
      expect((await store.read((last as number) + 1, 10)).map((stored) => stored.position)).toEqual([first, last])
      expect((await store.read((last as number) + 1_000, 1)).map((stored) => stored.position)).toEqual([first])
      store.close()
    })

    test('a malformed event comes back as stored, at its position, and neither reading nor compaction stops at it', async () => {
      const store = makeStore()
      const [a] = await store.append([event(1)])
      // Written by something that is not crossbus (an old version, another library, a bug).
      const [bad] = await store.append([{ id: 7, topic: null, seq: 'x', headers: 3 } as unknown as Input])
      const [c] = await store.append([event(3)])
      const read = await store.read(0, 10)
      expect(read.map((stored) => stored.position)).toEqual([a, bad, c])
      expect(read[1]).toMatchObject({ id: 7, topic: null })
      await store.register('reader', 'orders.*')
      await store.ack('reader', c as number)
      expect(await store.compact(2_000)).toMatchObject({ evicted: 0 })
      expect((await store.read(0, 10)).map((stored) => stored.position)).toEqual([bad])
      store.close()
    })

    test('retained events used as state: compaction keeps the last one of each topic, plus what registered consumers still need', async () => {
      const state = makeStore()
      // 1,000 updates of one piece of state and no durable consumer: only the last is worth keeping.
      const updates = Array.from({ length: 1000 }, (_, index) => event(index + 1, 'settings.theme', { retain: true }))
      await state.append(updates.slice(0, 400))
      await state.append(updates.slice(400))
      expect(await state.compact(2_000)).toEqual({ deleted: 999, evicted: 0 })
      expect((await state.read(0, 2000)).map((stored) => stored.seq)).toEqual([1000])
      expect((await state.retained()).map((stored) => stored.seq)).toEqual([1000])
      state.close()

      const store = makeStore()
      await store.register('reader', 'a.*')
      const positions = await store.append([
        event(1, 'a.x', { retain: true }),
        event(2, 'a.x', { retain: true }),
        event(3, 'b.x', { retain: true }),
        event(4, 'b.x', { retain: true }),
        event(5, 'b.y'),
        event(6, 'b.y'),
      ])
      // b.x 3 is superseded and no consumer needs it; reader has not acked a.x 1 and 2; b.y is not retained state.
      expect(await store.compact(2_000)).toEqual({ deleted: 1, evicted: 0 })
      expect((await store.read(0, 10)).map((stored) => stored.seq)).toEqual([1, 2, 4, 5, 6])
      await store.ack('reader', positions[0] as number)
      expect(await store.compact(2_000)).toEqual({ deleted: 1, evicted: 0 })
      expect((await store.read(0, 10)).map((stored) => stored.seq)).toEqual([2, 4, 5, 6])
      store.close()
    })

    test('has a name: handles of one log share it', () => {
      expect(makeStore().name).toBe(makeStore().name)
      expect(typeof makeStore().name).toBe('string')
    })

    test('refuses nonsense retention options with a TypeError', () => {
      expect(() => makeStore({ maxAge: 0 })).toThrow(TypeError)
      expect(() => makeStore({ maxEvents: 0 })).toThrow(TypeError)
    })
  })
}
