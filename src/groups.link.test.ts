// Queue groups and request routing across contexts (issue 12): buses linked by
// MessagePorts (a star around a hub, and a chain through a relay), in Node and Chromium.
import { afterEach, describe, expect, test, vi } from 'vitest'
import { deferred, recorder } from '../test/helpers.js'
import { createBus } from './bus.js'
import { messagePort } from './transports/message-port.js'
import type { Bus, Diagnostic, HandlerContext } from './types.js'

const buses: Bus[] = []
const ports: MessagePort[] = []
afterEach(async () => {
  vi.useRealTimers()
  await Promise.all(buses.splice(0).map((bus) => bus.close({ timeout: 0 })))
  for (const port of ports.splice(0)) port.close()
})

let names = 0
/** A hub and `count` spokes, each spoke linked to the hub only. */
function star(count: number, diagnostics?: Diagnostic[]): { hub: Bus; spokes: Bus[] } {
  const name = `groups-${Date.now()}-${++names}`
  const hubLinks = []
  const spokes: Bus[] = []
  for (let index = 0; index < count; index++) {
    const { port1, port2 } = new MessageChannel()
    ports.push(port1, port2)
    hubLinks.push(messagePort(port1))
    spokes.push(createBus({ name, transports: [messagePort(port2)], onDiagnostic: () => {} }))
  }
  const hub = createBus({ name, transports: hubLinks, onDiagnostic: (diagnostic) => diagnostics?.push(diagnostic) })
  buses.push(hub, ...spokes)
  return { hub, spokes }
}

/** Resolves once `bus` knows `count` queue group members elsewhere for `topic` (their records arrived). */
async function members(bus: Bus, count: number): Promise<void> {
  await expect.poll(() => bus.peers().length, { timeout: 5000 }).toBeGreaterThanOrEqual(count)
}

describe('a queue group across contexts', () => {
  test('a pool of this context and three others shares the jobs: each once, spread among them, the local member not taking them all', async () => {
    const { hub, spokes } = star(3)
    const handled = new Map<string, string>()
    const counts = new Map<string, number>()
    const member = (bus: Bus): void => {
      bus.process(
        'jobs.run',
        async (event) => {
          expect(handled.has(event.id)).toBe(false)
          handled.set(event.id, bus.id)
          counts.set(bus.id, (counts.get(bus.id) ?? 0) + 1)
          await new Promise((resolve) => setTimeout(resolve, 0))
        },
        { queue: 'pool' },
      )
    }
    for (const bus of [hub, ...spokes]) member(bus)
    await members(hub, 3)
    // Once the spokes' records (their memberships) have reached the hub, each member gets work.
    await expect
      .poll(
        () => {
          hub.publish('jobs.run', 'probe')
          return new Set(handled.values()).size
        },
        { timeout: 5000 },
      )
      .toBe(4)
    await expect.poll(() => hub.stats().subscriptions[0]?.queued).toBe(0)
    const before = handled.size
    for (let chunk = 0; chunk < 10; chunk++) {
      for (let index = 0; index < 100; index++) hub.publish('jobs.run', chunk * 100 + index)
      await new Promise((resolve) => setTimeout(resolve, 0))
    }
    await expect.poll(() => handled.size, { timeout: 10_000 }).toBe(before + 1000)
    for (const bus of [hub, ...spokes]) expect(counts.get(bus.id) ?? 0, `jobs handled by ${bus.id}`).toBeGreaterThan(100)
    expect(counts.get(hub.id)).toBeLessThan(700)
    expect(hub.stats().dropped).toBe(0)
  })

  test('a stalled member elsewhere stops getting jobs while the others keep up; when it leaves, what it had is counted lost', async () => {
    const diagnostics: Diagnostic[] = []
    const { hub, spokes } = star(2, diagnostics)
    const [stalled, quick] = spokes as [Bus, Bus]
    let stuck = 0
    stalled.subscribe(
      'jobs.run',
      () => {
        stuck++
        return new Promise(() => {})
      },
      { queue: 'pool', capacity: 2048 },
    )
    const done = recorder()
    quick.subscribe('jobs.run', done.handler, { queue: 'pool' })
    await members(hub, 2)
    await expect.poll(() => hub.publish('jobs.run', 'probe').queued, { timeout: 5000 }).toBeGreaterThan(0)
    for (let chunk = 0; chunk < 30; chunk++) {
      for (let index = 0; index < 100; index++) hub.publish('jobs.run', index)
      await new Promise((resolve) => setTimeout(resolve, 0))
    }
    // The stalled member took a handful, then was given nothing while it kept them (at most REMOTE_IN_FLIGHT, 1024).
    await expect.poll(() => done.events.length + (stalled.stats().subscriptions[0]?.queued ?? 0) + stuck, { timeout: 10_000 }).toBeGreaterThanOrEqual(3000)
    expect(stuck + (stalled.stats().subscriptions[0]?.queued ?? 0)).toBeLessThanOrEqual(1025)
    expect(done.events.length).toBeGreaterThanOrEqual(3000 - 1025)
    const kept = stuck + (stalled.stats().subscriptions[0]?.queued ?? 0)
    await stalled.close({ timeout: 0 })
    await expect.poll(() => diagnostics.some((diagnostic) => diagnostic.type === 'drop' && /queue group member/.test(diagnostic.message))).toBe(true)
    const lost = diagnostics.find((diagnostic) => /queue group member/.test(diagnostic.message))
    expect(lost?.count).toBe(kept)
  })

  test('jobs published before the members exist (the links still discovering) are shared among all of them once they are known, each once', async () => {
    const name = `groups-early-${Date.now()}-${++names}`
    const channels = [0, 1, 2].map(() => new MessageChannel())
    for (const { port1, port2 } of channels) ports.push(port1, port2)
    const diagnostics: Diagnostic[] = []
    const hub = createBus({ name, transports: channels.map(({ port1 }) => messagePort(port1)), onDiagnostic: (diagnostic) => diagnostics.push(diagnostic) })
    buses.push(hub)
    // As the README's pool does: the page publishes at once, its workers start later.
    const receipts = Array.from({ length: 300 }, (_, index) => hub.publish('jobs.run', index))
    await new Promise((resolve) => setTimeout(resolve, 0))
    const handled = new Map<string, string>()
    const counts = new Map<string, number>()
    for (const { port2 } of channels) {
      const member = createBus({ name, transports: [messagePort(port2)], onDiagnostic: () => {} })
      buses.push(member)
      member.subscribe(
        'jobs.run',
        (event) => {
          expect(handled.has(event.id)).toBe(false)
          handled.set(event.id, member.id)
          counts.set(member.id, (counts.get(member.id) ?? 0) + 1)
        },
        { queue: 'pool' },
      )
    }
    await expect.poll(() => handled.size, { timeout: 5000 }).toBe(300)
    expect([...counts.values()].sort()).toEqual([100, 100, 100])
    expect(receipts.every((receipt) => receipt.dropped === 0)).toBe(true)
    expect(hub.stats().dropped).toBe(0)
    expect(diagnostics.filter((diagnostic) => diagnostic.type === 'drop' || diagnostic.type === 'bad-frame')).toEqual([])
  })

  test('one link: jobs published before its only member starts reach that member once it says hello', async () => {
    const name = `groups-one-${Date.now()}-${++names}`
    const { port1, port2 } = new MessageChannel()
    ports.push(port1, port2)
    const hub = createBus({ name, transports: [messagePort(port1)], onDiagnostic: () => {} })
    buses.push(hub)
    const ids = [1, 2, 3, 4, 5].map((index) => hub.publish('jobs.run', index).id)
    await new Promise((resolve) => setTimeout(resolve, 0))
    const member = createBus({ name, transports: [messagePort(port2)], onDiagnostic: () => {} })
    buses.push(member)
    const done = recorder()
    member.subscribe('jobs.run', done.handler, { queue: 'pool' })
    await expect.poll(() => done.events.map((event) => event.id), { timeout: 5000 }).toEqual(ids)
  })

  test('while its links still discover their peers, an idle member here takes a job at once; the rest wait until the members elsewhere are known', async () => {
    vi.useFakeTimers({ toFake: ['setInterval', 'clearInterval', 'Date'] })
    const { port1, port2 } = new MessageChannel()
    ports.push(port1, port2)
    // A link nobody answers (a worker that never starts its bus): discovery ends after DISCOVERY_MS.
    const alone = createBus({ name: `groups-alone-${Date.now()}-${++names}`, transports: [messagePort(port1)], onDiagnostic: () => {} })
    buses.push(alone)
    const done = recorder()
    alone.process('jobs.run', done.handler, { queue: 'pool' })
    const receipts = [1, 2, 3].map((index) => alone.publish('jobs.run', index))
    expect(receipts.map((receipt) => receipt.queued)).toEqual([1, 1, 1])
    await expect.poll(() => done.events.length).toBe(1)
    // Absence cannot be awaited: a few real tasks pass, and the other two still wait.
    await new Promise((resolve) => setTimeout(resolve, 20))
    expect(done.events.map((event) => event.data)).toEqual([1])
    // Discovery over: the others go to the member here, the only one, in order.
    await vi.advanceTimersByTimeAsync(2000)
    await expect.poll(() => done.events.map((event) => event.data)).toEqual([1, 2, 3])
    expect(alone.stats().dropped).toBe(0)
  })

  test('closed while its links still discover: the queue group events it held are dropped and counted, other events are not', async () => {
    const { port1, port2 } = new MessageChannel()
    ports.push(port1, port2)
    const diagnostics: Diagnostic[] = []
    const alone = createBus({
      name: `groups-closed-${Date.now()}-${++names}`,
      transports: [messagePort(port1)],
      onDiagnostic: (diagnostic) => diagnostics.push(diagnostic),
    })
    buses.push(alone)
    const busy = deferred()
    const started = deferred()
    alone.process(
      'jobs.run',
      () => {
        started.resolve()
        return busy.promise
      },
      { queue: 'pool' },
    )
    for (let index = 0; index < 10; index++) alone.publish('news.item', index)
    // The first job keeps the member busy; the other two wait for discovery to end.
    for (let index = 0; index < 3; index++) alone.publish('jobs.run', index)
    await started.promise
    busy.resolve()
    await alone.close({ timeout: 0 })
    expect(alone.stats().dropped).toBe(2)
    expect(diagnostics.filter((diagnostic) => diagnostic.type === 'drop').map((diagnostic) => diagnostic.count)).toEqual([2])
  })

  test('a burst larger than the members can hold waits at the publisher and goes as they handle theirs: nothing lost, spread among them', async () => {
    const { hub, spokes } = star(3)
    const handled = new Set<string>()
    const counts = new Map<string, number>()
    for (const spoke of spokes) {
      spoke.process(
        'jobs.run',
        async (event) => {
          expect(handled.has(event.id)).toBe(false)
          handled.add(event.id)
          counts.set(spoke.id, (counts.get(spoke.id) ?? 0) + 1)
          await null
        },
        { queue: 'pool', capacity: 16 },
      )
    }
    await members(hub, 3)
    // Each member says it holds 16: the hub gives each at most that many before it hears they were handled.
    const receipts = Array.from({ length: 3000 }, (_, index) => hub.publish('jobs.run', index))
    expect(receipts.every((receipt) => receipt.queued === 1 && receipt.dropped === 0)).toBe(true)
    await expect.poll(() => handled.size, { timeout: 20_000 }).toBe(3000)
    for (const spoke of spokes) expect(counts.get(spoke.id) ?? 0, `jobs handled by ${spoke.id}`).toBeGreaterThan(500)
    expect(hub.stats().dropped).toBe(0)
    for (const spoke of spokes) expect(spoke.stats().dropped).toBe(0)
  })

  test('past 8192 events waiting for room, each more is dropped: counted in its receipt and stats, and reported; close drops what waits, counted', async () => {
    const diagnostics: Diagnostic[] = []
    const { hub, spokes } = star(1, diagnostics)
    const stalled = spokes[0] as Bus
    stalled.subscribe('jobs.run', () => new Promise(() => {}), { queue: 'pool', capacity: 1 })
    await members(hub, 1)
    // One in flight to the member (its capacity), 8192 waiting, then 5 dropped.
    const receipts = Array.from({ length: 1 + 8192 + 5 }, (_, index) => hub.publish('jobs.run', index))
    expect(receipts.filter((receipt) => receipt.dropped === 1)).toHaveLength(5)
    expect(receipts.slice(0, 8193).every((receipt) => receipt.queued === 1)).toBe(true)
    expect(hub.stats().dropped).toBe(5)
    await expect.poll(() => diagnostics.filter((diagnostic) => diagnostic.type === 'drop').length).toBeGreaterThan(0)
    expect(diagnostics.find((diagnostic) => diagnostic.type === 'drop')?.message).toMatch(/every member of queue group "pool" is full and 8192 events wait/)
    await hub.close({ timeout: 0 })
    expect(hub.stats().dropped).toBe(5 + 8192)
  })

  test('through a relay: the publisher assigns a member it reaches only through another context, and only that member gets it', async () => {
    const name = `groups-relay-${Date.now()}`
    const a = new MessageChannel()
    const b = new MessageChannel()
    ports.push(a.port1, a.port2, b.port1, b.port2)
    const publisher = createBus({ name, transports: [messagePort(a.port1)] })
    const relay = createBus({ name, transports: [messagePort(a.port2), messagePort(b.port1)] })
    const far = createBus({ name, transports: [messagePort(b.port2)] })
    buses.push(publisher, relay, far)
    const relayed = recorder()
    const reached = recorder()
    relay.subscribe('jobs.run', relayed.handler, { queue: 'pool', capacity: 1 })
    far.subscribe('jobs.run', reached.handler, { queue: 'pool' })
    await expect.poll(() => publisher.peers().length, { timeout: 5000 }).toBe(2)
    for (let index = 0; index < 50; index++) publisher.publish('jobs.run', index)
    await expect.poll(() => relayed.events.length + reached.events.length, { timeout: 5000 }).toBe(50)
    expect(reached.events.length).toBeGreaterThan(0)
    expect(new Set([...relayed.events, ...reached.events].map((event) => event.id)).size).toBe(50)
  })

  test('through a relay: jobs that wait for room at the publisher are handed over to a member it reaches only through another context', async () => {
    const name = `groups-relay-wait-${Date.now()}-${++names}`
    const a = new MessageChannel()
    const b = new MessageChannel()
    ports.push(a.port1, a.port2, b.port1, b.port2)
    const publisher = createBus({ name, transports: [messagePort(a.port1)] })
    const relay = createBus({ name, transports: [messagePort(a.port2), messagePort(b.port1)] })
    const far = createBus({ name, transports: [messagePort(b.port2)] })
    buses.push(publisher, relay, far)
    const reached = new Set<string>()
    far.process(
      'jobs.run',
      async (event) => {
        reached.add(event.id)
        await null
      },
      { queue: 'pool', capacity: 4 },
    )
    await expect.poll(() => publisher.peers().length, { timeout: 5000 }).toBe(2)
    await expect.poll(() => publisher.publish('jobs.run', 'probe').queued, { timeout: 5000 }).toBe(1)
    // Far more than the member holds (4): most wait at the publisher, then cross the relay as hand-overs.
    const ids = Array.from({ length: 200 }, (_, index) => publisher.publish('jobs.run', index).id)
    await expect.poll(() => ids.filter((id) => reached.has(id)).length, { timeout: 10_000 }).toBe(200)
    expect(publisher.stats().dropped).toBe(0)
    expect(relay.stats().rejected).toBe(0)
  })
})

describe('a request across contexts', () => {
  test('runs one replier, spread among the contexts that reply: three at once in three contexts', async () => {
    const { hub, spokes } = star(3)
    let running = 0
    let most = 0
    const release = deferred()
    const ran: string[] = []
    for (const bus of spokes) {
      bus.reply('work.slow', async (event) => {
        if (event.data === 'probe') return 'ready'
        ran.push(bus.id)
        most = Math.max(most, ++running)
        await release.promise
        running--
        return bus.id
      })
    }
    await members(hub, 3)
    await expect.poll(() => hub.request('work.slow', 'probe', { timeout: 200 }).catch(() => 'none'), { timeout: 5000 }).toBe('ready')
    const answers = Promise.all([1, 2, 3].map((n) => hub.request('work.slow', n, { timeout: 5000 })))
    await expect.poll(() => most, { timeout: 5000 }).toBe(3)
    release.resolve()
    expect(new Set(await answers).size).toBe(3)
    expect(ran).toHaveLength(3)
  })

  test('a request asked before its repliers were known runs in each, the first reply wins, and the later ones are not reported as hostile', async () => {
    const name = `groups-early-request-${Date.now()}-${++names}`
    const channels = [0, 1].map(() => new MessageChannel())
    for (const { port1, port2 } of channels) ports.push(port1, port2)
    const diagnostics: Diagnostic[] = []
    const hub = createBus({ name, transports: channels.map(({ port1 }) => messagePort(port1)), onDiagnostic: (diagnostic) => diagnostics.push(diagnostic) })
    buses.push(hub)
    const answer = hub.request('svc.who', null, { timeout: 5000 })
    await new Promise((resolve) => setTimeout(resolve, 0))
    let ran = 0
    const repliers = channels.map(({ port2 }, index) => {
      const replier = createBus({ name, transports: [messagePort(port2)], onDiagnostic: () => {} })
      buses.push(replier)
      replier.reply('svc.who', () => {
        ran++
        return `replier ${index}`
      })
      replier.reply(`svc.ping.${index}`, () => 'pong')
      return replier
    })
    await expect(answer).resolves.toMatch(/^replier [01]$/)
    await expect.poll(() => ran).toBe(2)
    // Each replier's later reply went before its answer to this ping, on the same port: both have arrived.
    await Promise.all(repliers.map((_, index) => hub.request(`svc.ping.${index}`, null)))
    expect(hub.stats().rejected).toBe(0)
    expect(hub.stats().transports.map((transport) => transport.rejected)).toEqual([0, 0])
    expect(diagnostics.filter((diagnostic) => diagnostic.type === 'bad-frame')).toEqual([])
  })

  test('an asker that gives up aborts the replier’s signal in its context and frees its slot', async () => {
    const { hub, spokes } = star(1)
    const replier = spokes[0] as Bus
    const reasons: unknown[] = []
    replier.reply('work', (event, { signal }: HandlerContext) => {
      if (event.data === 'fast') return 'fast'
      signal.addEventListener('abort', () => reasons.push(signal.reason))
      return new Promise(() => {})
    })
    await members(hub, 1)
    await expect.poll(() => hub.request('work', 'fast', { timeout: 500 }).catch(() => 'none'), { timeout: 5000 }).toBe('fast')
    await expect(hub.request('work', 'hang', { timeout: 50 })).rejects.toMatchObject({ code: 'TIMEOUT' })
    await expect.poll(() => reasons.length).toBe(1)
    expect(reasons[0]).toMatchObject({ code: 'ABORTED' })
    await expect(hub.request('work', 'fast', { timeout: 1000 })).resolves.toBe('fast')
  })

  test('the replier’s context dying mid-request: the request goes to another replier, or fails at once when none is left', async () => {
    const { hub, spokes } = star(2)
    const [first, second] = spokes as [Bus, Bus]
    const started = deferred()
    first.reply('work', () => {
      started.resolve()
      return new Promise(() => {})
    })
    await members(hub, 2)
    await expect.poll(() => hub.request('work', 'probe', { timeout: 100 }).catch((error: { code?: string }) => error.code), { timeout: 5000 }).toBe('TIMEOUT')
    const alone = hub.request('work', 'alone', { timeout: 20_000 }).catch((error: unknown) => error)
    await started.promise
    const failedAt = Date.now()
    await first.close({ timeout: 0 })
    await expect(alone).resolves.toMatchObject({ code: 'NO_RESPONDERS' })
    expect(Date.now() - failedAt).toBeLessThan(5000)
    // With another replier there, it goes to that one.
    second.reply('work', (event) => `second: ${event.data as string}`)
    await expect.poll(() => hub.request('work', 'probe', { timeout: 200 }).catch(() => 'none'), { timeout: 5000 }).toBe('second: probe')
  })
})
