// Scenarios for e2e/core.spec.ts, run in a real Chromium tab. Each returns
// plain data recorded inside the page; the spec asserts on it.
import { createBus, type BusEvent, type Diagnostic } from '../../src/index.ts'

/** (a) publish returns before any delivery; each subscription sees its events in order. */
export interface OrderingResult {
  published: number
  /** Handler calls observed right after the publishing loop, still in the same task. */
  deliveredAfterPublishSameTask: number
  /** Did a handler ever run inside a publish call? */
  deliveredInsidePublish: boolean
  exact: number[]
  wildcard: { topic: string; n: number; seq: number }[]
  /** Events an async handler (awaited between events) saw, in order. */
  asyncOrder: number[]
  /** Max handler calls of the async subscription running at once. */
  asyncMaxInFlight: number
}

/** (b) a stalled subscriber (capacity 10) loses exactly the overflow; another gets all. */
export interface StalledResult {
  firstBurst: number
  secondBurst: number
  healthyReceived: number[]
  stalledStarted: number[]
  receiptDropped: number
  stats: { published: number; delivered: number; dropped: number }
  stalledSub: { queued: number; capacity: number; dropped: number; delivered: number }
  healthySub: { queued: number; capacity: number; dropped: number; delivered: number }
  /** Sum of `count` over `drop` diagnostics. */
  dropDiagnostics: number
}

/** (c) a long burst is delivered in several tasks: timers and frames run in between. */
export interface BurstResult {
  events: number
  delivered: number
  /** Tasks (or microtask turns) in which the handler ran. */
  slices: number
  longestSliceMs: number
  totalMs: number
  /** Events delivered when the setTimeout(0) scheduled before the burst ran; null if it ran after. */
  timeoutRanAt: number | null
  /** Same for a requestAnimationFrame callback requested before the burst. */
  frameRanAt: number | null
  inOrder: boolean
}

/** Resolves in a later task (a MessageChannel message: not clamped like nested timers). */
function nextTask(): Promise<void> {
  return new Promise((resolve) => {
    const channel = new MessageChannel()
    channel.port1.onmessage = () => {
      channel.port1.close()
      resolve()
    }
    channel.port2.postMessage(null)
  })
}

const api = {
  async ordering(count = 1000): Promise<OrderingResult> {
    const bus = createBus({ name: 'e2e-ordering' })
    const exact: number[] = []
    const wildcard: { topic: string; n: number; seq: number }[] = []
    const asyncOrder: number[] = []
    let inFlight = 0
    let asyncMaxInFlight = 0
    let insidePublish = false
    let deliveredInsidePublish = false
    let handlerCalls = 0
    const note = (): void => {
      handlerCalls++
      if (insidePublish) deliveredInsidePublish = true
    }
    // Capacities hold the whole burst: it is published in one task (see the stalled scenario for overflow).
    bus.subscribe(
      'order.a',
      (event: BusEvent<number>) => {
        note()
        exact.push(event.data)
      },
      { capacity: count },
    )
    bus.subscribe(
      'order.*',
      (event: BusEvent<number>) => {
        note()
        wildcard.push({ topic: event.topic, n: event.data, seq: event.seq })
      },
      { capacity: 2 * count },
    )
    const asyncDone = new Promise<void>((resolve) => {
      bus.subscribe(
        'order.a',
        async (event: BusEvent<number>) => {
          note()
          inFlight++
          asyncMaxInFlight = Math.max(asyncMaxInFlight, inFlight)
          await nextTask()
          asyncOrder.push(event.data)
          inFlight--
          if (asyncOrder.length === count) resolve()
        },
        { capacity: count },
      )
    })
    for (let n = 0; n < count; n++) {
      insidePublish = true
      bus.publish('order.a', n)
      bus.publish('order.b', n)
      insidePublish = false
    }
    const deliveredAfterPublishSameTask = handlerCalls
    await asyncDone
    await bus.close()
    return {
      published: bus.stats().published,
      deliveredAfterPublishSameTask,
      deliveredInsidePublish,
      exact,
      wildcard,
      asyncOrder,
      asyncMaxInFlight,
    }
  },

  async stalled(firstBurst = 1000, secondBurst = 50): Promise<StalledResult> {
    let dropDiagnostics = 0
    const bus = createBus({
      name: 'e2e-stalled',
      onDiagnostic: (diagnostic: Diagnostic) => {
        if (diagnostic.type === 'drop') dropDiagnostics += diagnostic.count ?? 1
      },
    })
    const stalledStarted: number[] = []
    const stalled = bus.subscribe(
      'load.>',
      (event: BusEvent<number>) => {
        stalledStarted.push(event.data)
        return new Promise<void>(() => {}) // never settles
      },
      { capacity: 10 },
    )
    const healthyReceived: number[] = []
    let wake: (() => void) | undefined
    const healthy = bus.subscribe(
      'load.>',
      (event: BusEvent<number>) => {
        healthyReceived.push(event.data)
        if (healthyReceived.length === firstBurst || healthyReceived.length === firstBurst + secondBurst) wake?.()
      },
      { capacity: firstBurst + secondBurst },
    )
    const received = (total: number): Promise<void> => (healthyReceived.length >= total ? Promise.resolve() : new Promise<void>((resolve) => (wake = resolve)))

    let receiptDropped = 0
    for (let n = 0; n < firstBurst; n++) receiptDropped += bus.publish('load.x', n).dropped
    await received(firstBurst)
    // A later task: the stalled handler holds one event and its queue has one free slot.
    for (let n = firstBurst; n < firstBurst + secondBurst; n++) receiptDropped += bus.publish('load.x', n).dropped
    await received(firstBurst + secondBurst)
    // Let the coalesced drop reports (queued as microtasks) go out.
    await new Promise((resolve) => setTimeout(resolve, 0))

    const stats = bus.stats()
    const pick = (s: { queued: number; capacity: number; dropped: number; delivered: number }) => ({
      queued: s.queued,
      capacity: s.capacity,
      dropped: s.dropped,
      delivered: s.delivered,
    })
    const result: StalledResult = {
      firstBurst,
      secondBurst,
      healthyReceived,
      stalledStarted,
      receiptDropped,
      stats: { published: stats.published, delivered: stats.delivered, dropped: stats.dropped },
      stalledSub: pick(stalled.stats()),
      healthySub: pick(healthy.stats()),
      dropDiagnostics,
    }
    stalled.unsubscribe()
    healthy.unsubscribe()
    return result
  },

  async burst(events = 200_000, work = 200): Promise<BurstResult> {
    const bus = createBus({ name: 'e2e-burst' })
    let delivered = 0
    let inOrder = true
    let sink = 0
    let slices = 0
    let sliceStart = -1
    let longestSliceMs = 0
    const endSlice = (): void => {
      longestSliceMs = Math.max(longestSliceMs, performance.now() - sliceStart)
      sliceStart = -1
    }
    let finish: () => void = () => {}
    const done = new Promise<void>((resolve) => (finish = resolve))
    bus.subscribe(
      'burst.x',
      (event: BusEvent<number>) => {
        if (sliceStart < 0) {
          // First call in this task: runs until the microtask checkpoint ending it.
          slices++
          sliceStart = performance.now()
          queueMicrotask(endSlice)
        }
        if (event.data !== delivered) inOrder = false
        for (let i = 0; i < work; i++) sink += Math.sqrt(i + event.data)
        delivered++
        if (delivered === events) finish()
      },
      { capacity: events },
    )
    let timeoutRanAt: number | null = null
    let frameRanAt: number | null = null
    const ticked = new Promise<void>((resolve) =>
      setTimeout(() => {
        timeoutRanAt = delivered
        resolve()
      }, 0),
    )
    const framed = new Promise<void>((resolve) =>
      requestAnimationFrame(() => {
        frameRanAt = delivered
        resolve()
      }),
    )
    const start = performance.now()
    for (let n = 0; n < events; n++) bus.publish('burst.x', n)
    await done
    const totalMs = performance.now() - start
    await Promise.all([ticked, framed])
    await bus.close()
    if (sink < 0) console.log(sink) // keep the work observable
    return { events, delivered, slices, longestSliceMs, totalMs, timeoutRanAt, frameRanAt, inOrder }
  },
}

export type CoreApi = typeof api

declare global {
  interface Window {
    crossbusE2E: CoreApi
  }
}

window.crossbusE2E = api
document.getElementById('status')!.textContent = 'ready'
