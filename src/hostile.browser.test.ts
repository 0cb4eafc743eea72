// Forged goodbyes against a context whose Web Lock shows it lives (issue 11).
// Browser only: Node 20 and workerd have no Web Locks, so there a bye is all a
// context can go by.
import { afterEach, expect, test, vi } from 'vitest'
import { reaches } from '../test/hostile.js'
import { createBus } from './bus.js'
import { broadcastChannel } from './transports/broadcast-channel.js'
import type { Bus } from './types.js'
import { WIRE_VERSION } from './wire.js'

const buses: Bus[] = []
const channels: BroadcastChannel[] = []
afterEach(async () => {
  await Promise.all(buses.splice(0).map((bus) => bus.close()))
  for (const channel of channels.splice(0)) channel.close()
})

let names = 0
const uniqueName = (): string => `locks-${Date.now()}-${++names}`

async function pendingRequests(name: string): Promise<number> {
  const { pending = [] } = await navigator.locks.query()
  return pending.filter((lock) => lock.name === name).length
}

/** A publisher and a live subscriber on one BroadcastChannel, the publisher watching the subscriber's lock; and a raw channel. */
async function pair(): Promise<{ name: string; publisher: Bus; subscriber: Bus; attacker: BroadcastChannel; lock: string; got: unknown[] }> {
  const name = uniqueName()
  const channel = `${name}-bc`
  const publisher = createBus({ name, transports: [broadcastChannel({ channel })], onDiagnostic: () => {} })
  const subscriber = createBus({ name, transports: [broadcastChannel({ channel })], onDiagnostic: () => {} })
  buses.push(publisher, subscriber)
  const got: unknown[] = []
  subscriber.subscribe('live.x', (event) => void got.push(event.data), { capacity: 10_000 })
  const lock = `crossbus:${name}:${subscriber.id}`
  await vi.waitFor(() => expect(reaches(publisher, 'live.x')).toBe(true), { interval: 5 })
  // Both watch each other's lock: one pending request each.
  await vi.waitFor(async () => expect(await pendingRequests(lock)).toBe(1), { interval: 5 })
  const attacker = new BroadcastChannel(channel)
  channels.push(attacker)
  return { name, publisher, subscriber, attacker, lock, got }
}

test('forged byes for a context whose lock is held do not make it vanish: every event still reaches it', async () => {
  const { name, publisher, subscriber, attacker, got } = await pair()
  for (let n = 0; n < 100; n++) {
    attacker.postMessage({ crossbus: WIRE_VERSION, bus: name, from: subscriber.id, kind: 'bye' })
    // Let the bye arrive before the next publish.
    await new Promise((resolve) => setTimeout(resolve, 1))
    expect(publisher.publish('live.x', n).queued).toBe(1)
  }
  await vi.waitFor(() => expect(got.filter((value) => typeof value === 'number')).toHaveLength(100), { interval: 5 })
  expect(publisher.peers().map((entry) => entry.id)).toEqual([subscriber.id])
})

test('forged byes and hellos in turn queue no more lock requests than one per neighbor', async () => {
  const { name, subscriber, attacker, lock } = await pair()
  const record = { id: subscriber.id, version: 1, patterns: ['live.x'], replies: [] }
  for (let n = 0; n < 100; n++) {
    attacker.postMessage({ crossbus: WIRE_VERSION, bus: name, from: subscriber.id, kind: 'bye' })
    attacker.postMessage({ crossbus: WIRE_VERSION, bus: name, from: subscriber.id, kind: 'hello', routes: [{ ...record, version: 1e6 + n }] })
  }
  await new Promise((resolve) => setTimeout(resolve, 100))
  expect(await pendingRequests(lock)).toBe(1)
})

test('a context that really leaves is gone at once: its lock is released', async () => {
  const { publisher, subscriber } = await pair()
  await subscriber.close()
  await vi.waitFor(() => expect(publisher.peers()).toEqual([]), { interval: 5, timeout: 2000 })
})
