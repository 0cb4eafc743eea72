// In-process benchmarks of the crossbus core against peer emitters. Each
// export measures one case and returns plain numbers; run.mjs runs every case
// in its own process (through case.mjs), prints and saves the results.

import Emittery from 'emittery'
import { EventEmitter } from 'eventemitter3'
import mitt from 'mitt'
import { createNanoEvents } from 'nanoevents'
import { Bench } from 'tinybench'
import { createBus } from '../dist/index.js'
import { memoryStore } from '../dist/memory.js'

const TOPIC = 'bench.tick'
/** Events per burst: below the default capacity (1024), so a subscriber that keeps up never drops. */
export const BURST = 1000
/** Default queue capacity of a crossbus subscription. */
export const CAPACITY = 1024

const quiet = () => {}
const nextTask = () => new Promise((resolve) => setImmediate(resolve))

/**
 * A burst through any emitter with `on(topic, handler)` and `emit(topic, data)`:
 * emit the whole burst without awaiting each call, then wait for the last delivery.
 */
function burstOf(emitter, subs, sink) {
  for (let index = 0; index < subs; index++) {
    emitter.on(TOPIC, (data) => {
      sink.sum += data
      sink.hit()
    })
  }
  const burst = async () => {
    const done = sink.arm(BURST * subs)
    for (let index = 0; index < BURST; index++) emitter.emit(TOPIC, index)
    await done
  }
  return { burst }
}

/**
 * The work every handler does, whatever the library: add the payload to a sum
 * and count the delivery. `arm(n)` returns a promise that the handler itself
 * resolves on the n-th delivery from now, so waiting for a burst needs no polling.
 */
class Sink {
  count = 0
  sum = 0
  #target = 0
  #resolve = quiet

  arm(deliveries) {
    this.#target = this.count + deliveries
    return new Promise((resolve) => {
      this.#resolve = resolve
    })
  }

  hit() {
    if (++this.count === this.#target) this.#resolve()
  }
}

// One factory per library: subscribe `subs` handlers, return an async burst
// function that publishes BURST events and resolves once all BURST × subs
// deliveries happened. Every burst pays the same fixed overhead: one promise
// from arm() and one await.
const libraries = {
  // Delivery is asynchronous: the handlers run in the bus's microtask after the
  // publishing loop, so the await is where the deliveries happen.
  crossbus: (subs, sink) => crossbusBurst(subs, sink, 'subscribe'),

  // Synchronous emitters: every delivery happens inside emit(), so `done` is
  // already resolved when the loop ends; the await keeps the per-burst overhead equal.
  eventemitter3: (subs, sink) => burstOf(new EventEmitter(), subs, sink),
  mitt: (subs, sink) => burstOf(mitt(), subs, sink),
  nanoevents: (subs, sink) => burstOf(createNanoEvents(), subs, sink),

  // emittery is asynchronous like crossbus, so it gets the same pattern: fire
  // the whole burst without awaiting each emit(), then wait for the last
  // delivery. Awaiting each emit would serialise the burst into promise round
  // trips (unfair to emittery); `await Promise.all(emits)` would add an array
  // and a combinator that crossbus does not pay. emit() cannot reject here:
  // the handlers never throw.
  emittery: (subs, sink) => burstOf(new Emittery(), subs, sink),
}

/** Rows of crossbus itself beside the peers: the same burst through `process` (one attempt per event, default options). */
export const VARIANTS = { 'crossbus, process()': (subs, sink) => crossbusBurst(subs, sink, 'process') }

/** The crossbus burst, its handlers attached with `method` ('subscribe' or 'process'). */
function crossbusBurst(subs, sink, method) {
  const bus = createBus({ transports: [], onDiagnostic: quiet })
  for (let index = 0; index < subs; index++) {
    bus[method](TOPIC, (event) => {
      sink.sum += event.data
      sink.hit()
    })
  }
  const burst = async () => {
    const done = sink.arm(BURST * subs)
    for (let index = 0; index < BURST; index++) bus.publish(TOPIC, index)
    await done
  }
  return { burst, bus }
}

export const LIBRARIES = Object.keys(libraries)

/**
 * 1. publish→deliver throughput of one library with `subs` subscribers; one
 * timed iteration is one burst of BURST events, fully delivered.
 */
export async function throughput({ library, subs, time, warmupTime }) {
  const sink = new Sink()
  const { burst, bus } = (libraries[library] ?? VARIANTS[library])(subs, sink)
  const bench = new Bench({ time, warmupTime, throws: true })
  bench.add(library, burst)
  await bench.run()
  const { latency } = bench.getTask(library).result
  if (sink.count % (BURST * subs) !== 0) throw new Error(`${library}: ${sink.count} deliveries is not a whole number of bursts`)
  // Mean time per burst, so the rate includes the garbage collection each library causes.
  const seconds = latency.mean / 1000
  const result = {
    library,
    subscribers: subs,
    publishesPerSecond: BURST / seconds,
    deliveriesPerSecond: (BURST * subs) / seconds,
    rme: latency.rme,
    bursts: latency.samples.length,
  }
  if (bus === undefined) return result
  const { published, delivered, dropped, failed } = bus.stats()
  return { ...result, published, delivered, dropped, failed }
}

/** A bus whose one subscriber is stuck in its first event's handler, with a full queue. */
async function stalledBus(overflow) {
  const bus = createBus({ transports: [], onDiagnostic: quiet, overflow })
  const subscription = bus.subscribe(TOPIC, () => new Promise(quiet))
  bus.publish(TOPIC, -1)
  await nextTask() // the handler has taken event -1 and never settles
  for (let index = 0; index < CAPACITY; index++) bus.publish(TOPIC, index)
  await nextTask()
  const { queued } = subscription.stats()
  if (queued !== CAPACITY) throw new Error(`stalled subscriber should hold ${CAPACITY} events, holds ${queued}`)
  return { bus, subscription }
}

/**
 * The publish-cost cases: a bus, and a promise for "the loop just timed has
 * been dealt with" that tinybench awaits after each timed loop, untimed.
 */
const publishCases = {
  none: async () => ({ bus: createBus({ transports: [], onDiagnostic: quiet }), settled: nextTask }),
  // Waits for the loop's BURST deliveries: tinybench's own loop yields only to
  // microtasks, and a delivery slice cut short (by a descheduled process, say)
  // continues in a macrotask, which would otherwise starve and drop events.
  keepingUp: async () => {
    const bus = createBus({ transports: [], onDiagnostic: quiet })
    const sink = new Sink()
    bus.subscribe(TOPIC, (event) => {
      sink.sum += event.data
      sink.hit()
    })
    let delivered
    return {
      bus,
      // A statement body: tinybench awaits what beforeEach returns.
      armed: () => {
        delivered = sink.arm(BURST)
      },
      settled: () => delivered,
    }
  },
  stalledDropNewest: async () => ({ bus: (await stalledBus('drop-newest')).bus, settled: nextTask }),
  stalledDropOldest: async () => ({ bus: (await stalledBus('drop-oldest')).bus, settled: nextTask }),
}

export const PUBLISH_CASES = Object.keys(publishCases)

/**
 * 2. Cost of one publish() call. A timed iteration is a synchronous loop of
 * BURST publishes (one call is too short to time alone); between loops, and
 * outside the timed part, the bus's microtasks and macrotasks run (delivery
 * to the keeping-up subscriber, drop reports).
 */
export async function publishCost({ scenario, time, warmupTime }) {
  const { bus, armed = quiet, settled } = await publishCases[scenario]()
  const publishMany = () => {
    for (let index = 0; index < BURST; index++) bus.publish(TOPIC, index)
  }
  const bench = new Bench({ time, warmupTime, throws: true })
  bench.add(scenario, publishMany, { beforeEach: armed, afterEach: settled })
  await bench.run()
  const { latency } = bench.getTask(scenario).result
  const { published, dropped, subscriptions } = bus.stats()
  return {
    scenario,
    nsPerPublish: (latency.mean * 1e6) / BURST,
    rme: latency.rme,
    published,
    dropped,
    queued: subscriptions[0]?.queued ?? 0,
  }
}

function heapUsed() {
  globalThis.gc()
  globalThis.gc()
  return process.memoryUsage().heapUsed
}

/**
 * 3. Heap growth while publishing to a stalled subscriber (capacity 1024):
 * deltas after each of `checkpoints` publishes, from one baseline taken with
 * the queue already full. Publishes go in chunks with a macrotask between
 * them so the bus's microtasks (drop reports, scheduling) run as in an app.
 */
export async function heap({ overflow, checkpoints, chunk }) {
  const { bus, subscription } = await stalledBus(overflow)
  const before = heapUsed()
  const publishedBefore = bus.stats().published
  const deltas = []
  let published = 0
  for (const target of checkpoints) {
    while (published < target) {
      // An object payload: a leaked event would keep it alive and show in the heap.
      for (let index = 0; index < chunk; index++) bus.publish(TOPIC, { n: published + index })
      published += chunk
      await nextTask()
    }
    deltas.push({ publishes: published, heapDeltaBytes: heapUsed() - before })
  }
  const stats = bus.stats()
  const { queued } = subscription.stats()
  // Every event ever published is running (the first), queued or dropped.
  if (1 + queued + stats.dropped !== stats.published) {
    throw new Error(`heap ${overflow}: published ${stats.published} ≠ 1 running + ${queued} queued + ${stats.dropped} dropped`)
  }
  return { overflow, capacity: CAPACITY, deltas, published: stats.published - publishedBefore, dropped: stats.dropped, queued }
}

/**
 * 4. A live durable consumer on memoryStore(): `count` durable events published
 * `perTask` per task (a macrotask between tasks, so each task is one commit and
 * one read), timed until the consumer has handled the last one. `laggard`
 * registers a second consumer that never acks, so compaction keeps every event
 * and the log grows to `count`: a read that scanned the log from its start
 * would cost O(log size) per commit.
 */
export async function durableConsume({ count, perTask, laggard }) {
  const store = memoryStore()
  const bus = createBus({ transports: [], onDiagnostic: quiet, store })
  if (laggard) await store.register('laggard', TOPIC)
  const sink = new Sink()
  bus.subscribe(
    TOPIC,
    (event) => {
      sink.sum += event.data
      sink.hit()
    },
    { durable: 'bench' },
  )
  // Live once the subscription has its cursor (it takes its lock and registers first).
  while (bus.stats().subscriptions[0]?.standby !== false) await nextTask()
  const done = sink.arm(count)
  const started = performance.now()
  for (let index = 0; index < count; index += perTask) {
    for (let offset = 0; offset < perTask; offset++) bus.publish(TOPIC, index + offset, { durable: true })
    await nextTask()
  }
  await done
  const ms = performance.now() - started
  const { published, delivered, stored } = bus.stats()
  const logged = (await store.read(0, count + 1)).length
  await bus.close()
  return { count, perTask, laggard, ms, eventsPerSecond: (count / ms) * 1000, published, delivered, stored, logged }
}
