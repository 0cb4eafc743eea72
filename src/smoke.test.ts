import { test, expect } from 'vitest'
import { createBus } from './index.js'
test('smoke', async () => {
  const bus = createBus()
  const got: unknown[] = []
  bus.subscribe('a.*', (e) => { got.push(e.data) })
  bus.subscribe('a.>', async (e) => { await new Promise(r => setTimeout(r, 5)); got.push(['async', e.data]) })
  const r = bus.publish('a.b', 1)
  expect(got).toEqual([])
  await bus.close()
  expect(got).toEqual([1, ['async', 1]])
  console.log(r.id, bus.stats())
})
