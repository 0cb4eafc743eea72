// Queue groups and request routing within one context (issue 12). Across
// contexts: src/groups.node.test.ts and e2e/groups.spec.ts.
import { describe, expect, test } from 'vitest'
import { deferred, localBus, recorder } from '../test/helpers.js'
import { createBus } from './bus.js'
import { memoryStore } from './store/memory.js'
import type { HandlerContext } from './types.js'

describe('a queue group', () => {
  test('gives each event to exactly one member, spread evenly, while a subscription outside the group gets them all', async () => {
    const bus = localBus()
    const members = [recorder(), recorder(), recorder()]
    for (const member of members) bus.subscribe('jobs.*', member.handler, { queue: 'workers' })
    const everyone = recorder()
    bus.subscribe('jobs.*', everyone.handler)
    for (let index = 0; index < 300; index++) bus.publish('jobs.add', index)
    await everyone.until(300)
    await expect.poll(() => members.reduce((sum, member) => sum + member.events.length, 0)).toBe(300)
    const ids = members.flatMap((member) => member.events.map((event) => event.id))
    expect(new Set(ids).size).toBe(300)
    for (const member of members) expect(member.events.length).toBe(100)
    await bus.close()
  })

  test('members of other queue names, or of another pattern, are other groups: each gets every event once', async () => {
    const bus = localBus()
    const a = [recorder(), recorder()] as const
    const b = [recorder(), recorder()] as const
    const other = recorder()
    for (const member of a) bus.subscribe('jobs.*', member.handler, { queue: 'a' })
    for (const member of b) bus.subscribe('jobs.*', member.handler, { queue: 'b' })
    bus.subscribe('jobs.add', other.handler, { queue: 'a' })
    for (let index = 0; index < 40; index++) bus.publish('jobs.add', index)
    await other.until(40)
    await expect.poll(() => a[0].events.length + a[1].events.length).toBe(40)
    await expect.poll(() => b[0].events.length + b[1].events.length).toBe(40)
    await bus.close()
  })

  test('a stalled member stops receiving once its queue is full, while the others keep up: nothing is dropped', async () => {
    const bus = localBus({ onDiagnostic: () => {} })
    const stalled: number[] = []
    bus.subscribe(
      'jobs.run',
      (event) => {
        stalled.push(event.data as number)
        return new Promise(() => {})
      },
      { queue: 'pool', capacity: 4 },
    )
    const quick = [recorder(), recorder()] as const
    for (const member of quick) bus.subscribe('jobs.run', member.handler, { queue: 'pool' })
    for (let chunk = 0; chunk < 10; chunk++) {
      for (let index = 0; index < 100; index++) bus.publish('jobs.run', chunk * 100 + index)
      await expect.poll(() => bus.stats().subscriptions.reduce((sum, sub) => sum + sub.queued, 0)).toBeLessThanOrEqual(4)
    }
    await expect.poll(() => stalled.length + quick[0].events.length + quick[1].events.length + (bus.stats().subscriptions[0]?.queued ?? 0)).toBe(1000)
    expect(stalled.length + (bus.stats().subscriptions[0]?.queued ?? 0)).toBeLessThanOrEqual(5)
    expect(bus.stats().dropped).toBe(0)
    await bus.close({ timeout: 0 })
  })

  test('a member that leaves gets nothing more', async () => {
    const bus = localBus()
    const leaving = recorder()
    const staying = recorder()
    const subscription = bus.subscribe('jobs.run', leaving.handler, { queue: 'pool' })
    bus.subscribe('jobs.run', staying.handler, { queue: 'pool' })
    for (let index = 0; index < 10; index++) bus.publish('jobs.run', index)
    await expect.poll(() => leaving.events.length + staying.events.length).toBe(10)
    subscription.unsubscribe()
    for (let index = 10; index < 20; index++) bus.publish('jobs.run', index)
    await expect.poll(() => staying.events.length).toBe(20 - leaving.events.length)
    await bus.close()
  })

  test('processors share a queue group the same way', async () => {
    const bus = localBus()
    const handled = [0, 0]
    for (const index of [0, 1]) {
      bus.process(
        'jobs.run',
        async () => {
          handled[index] = (handled[index] ?? 0) + 1
          await Promise.resolve()
        },
        { queue: 'pool' },
      )
    }
    for (let index = 0; index < 200; index++) bus.publish('jobs.run', index)
    await expect.poll(() => (handled[0] ?? 0) + (handled[1] ?? 0)).toBe(200)
    expect(handled[0]).toBeGreaterThan(50)
    expect(handled[1]).toBeGreaterThan(50)
    await bus.close()
  })

  test('a queue name must be a non-empty name, and a durable subscription cannot join a queue', () => {
    const bus = createBus({ transports: [], store: memoryStore() })
    expect(() => bus.subscribe('a', () => {}, { queue: '' })).toThrow(TypeError)
    expect(() => bus.subscribe('a', () => {}, { queue: 'two words' })).toThrow(/queue must be a non-empty name/)
    expect(() => bus.subscribe('a', () => {}, { queue: 'q', durable: 'd' })).toThrow(/cannot join queue "q"/)
  })
})

describe('request and reply', () => {
  test('a request runs one replier, not all of them', async () => {
    const bus = localBus()
    const ran: string[] = []
    bus.reply('math.*', () => {
      ran.push('wild')
      return 1
    })
    bus.reply('math.double', () => {
      ran.push('exact')
      return 2
    })
    for (let index = 0; index < 10; index++) await bus.request('math.double', index)
    expect(ran).toHaveLength(10)
    await bus.close()
  })

  test('repliers of another queue name run it too (one per name); the first reply wins', async () => {
    const bus = localBus()
    const ran: string[] = []
    bus.reply('math.double', () => ran.push('default'))
    bus.reply('math.double', () => ran.push('audit'), { queue: 'audit' })
    await bus.request('math.double', 1)
    await expect.poll(() => ran.sort()).toEqual(['audit', 'default'])
    await bus.close()
  })

  test('concurrency lets a replier run that many requests at once', async () => {
    const bus = localBus()
    let running = 0
    let most = 0
    const release = deferred()
    bus.reply(
      'slow',
      async () => {
        most = Math.max(most, ++running)
        await release.promise
        running--
        return 'done'
      },
      { concurrency: 3 },
    )
    const answers = Promise.all([0, 1, 2, 3].map(() => bus.request('slow', null)))
    await expect.poll(() => most).toBe(3)
    release.resolve()
    await expect(answers).resolves.toEqual(['done', 'done', 'done', 'done'])
    expect(most).toBe(3)
    await bus.close()
  })

  test('a request that times out aborts its replier’s signal and frees its slot: the next request is answered at once', async () => {
    const bus = localBus({ onDiagnostic: () => {} })
    const reasons: unknown[] = []
    bus.reply('work', (event, { signal }: HandlerContext) => {
      if (event.data === 'fast') return 'fast'
      signal.addEventListener('abort', () => reasons.push(signal.reason))
      return new Promise(() => {})
    })
    await expect(bus.request('work', 'hang', { timeout: 20 })).rejects.toMatchObject({ code: 'TIMEOUT' })
    expect(reasons).toEqual([expect.objectContaining({ code: 'TIMEOUT' })])
    await expect(bus.request('work', 'fast', { timeout: 1000 })).resolves.toBe('fast')
    await bus.close()
  })

  test('the asker’s signal aborting aborts the replier’s signal with the same reason', async () => {
    const bus = localBus({ onDiagnostic: () => {} })
    const reason = deferred<unknown>()
    bus.reply('work', (_event, { signal }: HandlerContext) => {
      signal.addEventListener('abort', () => reason.resolve(signal.reason))
      return new Promise(() => {})
    })
    const controller = new AbortController()
    const asked = bus.request('work', 1, { signal: controller.signal }).catch((error: unknown) => error)
    await expect.poll(() => bus.stats().published).toBe(1)
    controller.abort(new Error('user left'))
    await expect(asked).resolves.toMatchObject({ code: 'ABORTED' })
    await expect(reason.promise).resolves.toMatchObject({ code: 'ABORTED' })
    await bus.close()
  })
})
