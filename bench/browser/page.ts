// The bench page. bench/run-browser.mjs opens it in several tabs of one
// browser context and drives it through `window.crossbusBench`: a tab is a
// sender (publishing to other tabs over BroadcastChannel, or to a dedicated
// worker it starts) or a receiver (listening on BroadcastChannel). Every
// measurement is taken on the sender's clock, from its first publish to the
// arrival of the last receiver's `done` (sent over a separate control channel),
// so no two clocks are ever compared, except for one-way latency.
import { createBus, type Bus } from '../../src/index.ts'
import { messagePort } from '../../src/transports/index.ts'
import { runPool } from './pool.ts'
import { indexedDbStore } from '../../src/store/idb.ts'
import { BroadcastChannel as PackageChannel } from 'broadcast-channel'
import { createStore, set, setMany } from 'idb-keyval'
import {
  createYield,
  listen,
  PAYLOAD,
  RAW_BATCH,
  type Receiver,
  type ReceiverStats,
  recordDiagnostic,
  Sink,
  takeDiagnostics,
  TOPIC,
  type Tick,
  type Variant,
  wallClock,
  type Wire,
} from './common.ts'

const nextTask = createYield()

/** What a receiver reports when its round is complete. */
export interface Done {
  type: 'done'
  round: number
  index: number
  stats: ReceiverStats
  latencies: Float64Array | undefined
  diagnostics: string[]
}

const controlName = (name: string): string => `bench-control:${name}`

// ---- receivers (tabs) ----

interface TabReceiver {
  sink: Sink
  receiver: Receiver
  control: BroadcastChannel
  round: number
}
const receivers = new Map<string, TabReceiver>()

function receive(variant: Variant, name: string, index: number, capacity: number): void {
  const sink = new Sink()
  const receiver = listen(variant, 'tab', name, sink, capacity, `bench.ready.${index}`)
  const control = new BroadcastChannel(controlName(name))
  const entry: TabReceiver = { sink, receiver, control, round: 0 }
  control.onmessage = (event: MessageEvent<{ type: string; clock?: number }>) => {
    // Clock check: answer a ping with this context's clock (see clockOffset()).
    if (event.data.type === 'ping') control.postMessage({ type: 'pong', index, clock: wallClock() })
  }
  sink.done = () => {
    const done: Done = {
      type: 'done',
      round: entry.round,
      index,
      stats: receiver.stats(),
      latencies: sink.latencies,
      diagnostics: takeDiagnostics(),
    }
    control.postMessage(done)
  }
  receivers.set(name, entry)
}

function arm(name: string, target: number, round: number, latency: boolean): void {
  const entry = receivers.get(name) as TabReceiver
  entry.round = round
  entry.sink.arm(target, latency)
}

function closeReceiver(name: string): void {
  const entry = receivers.get(name)
  if (entry === undefined) return
  entry.receiver.close()
  entry.control.close()
  receivers.delete(name)
}

// ---- senders ----

interface Sender {
  send(tick: Tick): void
  /** End of the publishing task: what a variant buffers goes now (raw-batch). */
  endTask(): void
  /** Waits for `count` done messages of `round`; resolves with them and the arrival time of the last. */
  expect(round: number, count: number): Promise<{ dones: Done[]; end: number }>
  /** For a worker: arm its sink (over the control port) and wait for the acknowledgement. */
  arm?(target: number, round: number, latency: boolean): Promise<void>
  stall?(ms: number): Promise<void>
  /** For a worker: its wall clock, asked over the control port. */
  ping?(): Promise<number>
  stats(): unknown
  /** Events this sender lost to overflow so far (crossbus only: its link queue). */
  dropped(): number
  close(): void
}
const senders = new Map<string, Sender>()

/** Requests `topic` until some context answers: then its subscriptions have reached this bus too. */
async function untilAnswered(bus: Bus, topic: string): Promise<void> {
  const deadline = performance.now() + 10_000
  for (;;) {
    try {
      await bus.request(topic, null, { timeout: 500 })
      return
    } catch (error) {
      if (performance.now() > deadline) throw new Error(`no answer on ${topic}: ${String(error)}`)
      await new Promise((resolve) => setTimeout(resolve, 20))
    }
  }
}

/** Collects done messages from a control port or channel. */
function doneCollector(port: { onmessage: ((event: MessageEvent) => void) | null }): Sender['expect'] {
  let waiting: { round: number; count: number; dones: Done[]; resolve: (value: { dones: Done[]; end: number }) => void } | undefined
  const previous = port.onmessage
  port.onmessage = (event: MessageEvent<{ type: string }>) => {
    const end = performance.now()
    if (event.data.type !== 'done') {
      previous?.call(port, event)
      return
    }
    const done = event.data as Done
    if (waiting === undefined || done.round !== waiting.round) return
    waiting.dones.push(done)
    if (waiting.dones.length === waiting.count) {
      const { dones, resolve } = waiting
      waiting = undefined
      resolve({ dones, end })
    }
  }
  return (round, count) => new Promise((resolve) => (waiting = { round, count, dones: [], resolve }))
}

/** A dedicated worker listening with `variant`; resolves once it is set up. */
async function startWorker(variant: Variant, name: string, capacity: number): Promise<{ worker: Worker; control: MessagePort }> {
  const worker = new Worker(new URL('./worker.ts', import.meta.url), { type: 'module' })
  const channel = new MessageChannel()
  const control = channel.port1
  const ready = new Promise<void>((resolve, reject) => {
    control.onmessage = (event: MessageEvent<{ type: string }>) => {
      if (event.data.type === 'ready') resolve()
    }
    worker.onerror = (event) => reject(new Error(`worker failed: ${event.message}`))
  })
  worker.postMessage({ variant, name, capacity, control: channel.port2 }, [channel.port2])
  await ready
  return { worker, control }
}

/** Sends a control command to the worker and waits for the reply of type `reply`. */
function ask(control: MessagePort, command: object, reply: string): Promise<unknown> {
  return new Promise((resolve) => {
    const listener = (event: MessageEvent<{ type: string }>): void => {
      if (event.data.type !== reply) return
      control.removeEventListener('message', listener)
      resolve(event.data)
    }
    control.addEventListener('message', listener)
    control.postMessage(command)
  })
}

async function openSender(
  key: string,
  variant: Variant,
  wire: Wire,
  name: string,
  receiverCount: number,
  capacity: number,
  /** crossbus to a worker: the link's queue capacity (undefined: the default, 8192). */
  linkCapacity?: number,
): Promise<void> {
  let target: { postMessage(message: unknown): void }
  let expect: Sender['expect']
  let armWorker: Sender['arm']
  let stall: Sender['stall']
  let ping: Sender['ping']
  let closeWire: () => void
  if (wire === 'worker') {
    const { worker, control } = await startWorker(variant, name, capacity)
    target = worker
    expect = doneCollector(control)
    control.start()
    armWorker = async (count, round, latency) => {
      await ask(control, { type: 'arm', target: count, round, latency }, 'armed')
    }
    stall = async (ms) => {
      const flag = crossOriginIsolated ? new SharedArrayBuffer(4) : undefined
      await ask(control, { type: 'stall', flag, ms }, 'stalled')
    }
    ping = async () => ((await ask(control, { type: 'ping' }, 'pong')) as { clock: number }).clock
    closeWire = () => worker.terminate()
  } else {
    const control = new BroadcastChannel(controlName(name))
    expect = doneCollector(control)
    target = { postMessage: () => {} }
    closeWire = () => control.close()
  }

  let sender: Sender
  if (variant === 'crossbus' || variant === 'crossbus-novalidate') {
    const bus = createBus({
      name,
      onDiagnostic: recordDiagnostic,
      validate: variant === 'crossbus',
      ...(wire === 'worker' ? { transports: [messagePort(target as Worker, linkCapacity === undefined ? {} : { capacity: linkCapacity })] } : {}),
    })
    if (wire === 'worker') await untilAnswered(bus, 'bench.ready')
    else for (let index = 0; index < receiverCount; index++) await untilAnswered(bus, `bench.ready.${index}`)
    sender = {
      send: (tick) => void bus.publish(TOPIC, tick),
      endTask() {},
      expect,
      stats() {
        const { published, dropped, transports } = bus.stats()
        return { published, dropped, transports: transports.map(({ name, queued, capacity, sent, dropped }) => ({ name, queued, capacity, sent, dropped })) }
      },
      dropped: () => bus.stats().dropped,
      close() {
        void bus.close()
        closeWire()
      },
    }
  } else if (variant === 'package') {
    const channel = new PackageChannel<Tick>(name)
    sender = {
      send: (tick) => void channel.postMessage(tick),
      endTask() {},
      expect,
      stats: () => ({}),
      dropped: () => 0,
      close() {
        void channel.close()
        closeWire()
      },
    }
  } else {
    const port = wire === 'tab' ? new BroadcastChannel(name) : target
    // Raw postMessage: one tick per message, or arrays of RAW_BATCH posted when full and at the end of each task.
    let batch: Tick[] = []
    const post = (): void => {
      if (batch.length === 0) return
      port.postMessage(batch)
      batch = []
    }
    sender = {
      send:
        variant === 'raw'
          ? (tick) => port.postMessage(tick)
          : (tick) => {
              batch.push(tick)
              if (batch.length === RAW_BATCH) post()
            },
      endTask: variant === 'raw' ? () => {} : post,
      expect,
      stats: () => ({}),
      dropped: () => 0,
      close() {
        if (port instanceof BroadcastChannel) port.close()
        closeWire()
      },
    }
  }
  if (armWorker !== undefined) sender.arm = armWorker
  if (stall !== undefined) sender.stall = stall
  if (ping !== undefined) sender.ping = ping
  senders.set(key, sender)
}

const senderOf = (key: string): Sender => {
  const sender = senders.get(key)
  if (sender === undefined) throw new Error(`no sender ${key}`)
  return sender
}

async function armWorker(key: string, target: number, round: number, latency: boolean): Promise<void> {
  await senderOf(key).arm?.(target, round, latency)
}

/**
 * Publishes `count` events, `chunk` per task, and waits until `receiverCount`
 * receivers reported all of them. Milliseconds from the first publish to the
 * arrival of the last done message, on this page's clock.
 */
async function burst(key: string, count: number, chunk: number, round: number, receiverCount: number, timeoutMs: number) {
  const sender = senderOf(key)
  const finished = sender.expect(round, receiverCount)
  const droppedBefore = sender.dropped()
  const start = performance.now()
  for (let n = 0; n < count; ) {
    const end = Math.min(count, n + chunk)
    for (; n < end; n++) sender.send({ n, payload: PAYLOAD })
    sender.endTask()
    await null // the task's microtasks (crossbus's link flush) first, as at the end of an app's task
    await nextTask()
  }
  const published = performance.now()
  // Events the sender dropped never arrive: say so now instead of waiting for the timeout.
  const dropped = sender.dropped() - droppedBefore
  if (dropped > 0) return { failed: `the sender dropped ${dropped} events`, sender: sender.stats(), diagnostics: takeDiagnostics() }
  let timer: ReturnType<typeof setTimeout> | undefined
  const outcome = await Promise.race([finished, new Promise<undefined>((resolve) => (timer = setTimeout(resolve, timeoutMs)))])
  clearTimeout(timer)
  if (outcome === undefined) return { failed: `timed out after ${timeoutMs / 1000} s`, sender: sender.stats(), diagnostics: takeDiagnostics() }
  return {
    failed: undefined,
    ms: outcome.end - start,
    publishMs: published - start,
    receivers: outcome.dones.map(({ index, stats, diagnostics }) => ({ index, stats, diagnostics })),
    sender: sender.stats(),
    diagnostics: takeDiagnostics(),
  }
}

/** Resolves after about `ms`: scheduler.postTask's delay is not clamped to 4 ms when nested, unlike setTimeout. */
function sleep(ms: number): Promise<void> {
  const scheduler = (globalThis as { scheduler?: { postTask(task: () => void, options: { delay: number }): Promise<void> } }).scheduler
  if (scheduler !== undefined) return scheduler.postTask(() => {}, { delay: ms })
  return new Promise((resolve) => setTimeout(resolve, ms))
}

/**
 * A paced stream: one event per task, `rate` events per second, each stamped
 * with the sender's wall clock; receivers record one-way latencies.
 */
async function paced(key: string, count: number, rate: number, round: number, receiverCount: number) {
  const sender = senderOf(key)
  const finished = sender.expect(round, receiverCount)
  const period = 1000 / rate
  const start = performance.now()
  let last = start
  for (let n = 0; n < count; n++) {
    // Due times on a fixed schedule; a wait is a whole-millisecond postTask delay (it runs about 0.1 ms
    // late), never a busy loop that would take a core from the receiver. So intervals vary a little
    // around the period and the average rate is exact; each event is published in a task of its own.
    const wait = start + n * period - performance.now()
    if (wait > 0.2) await sleep(Math.max(1, Math.round(wait)))
    sender.send({ n, payload: PAYLOAD, t: wallClock() })
    sender.endTask()
    last = performance.now()
    // The task ends here: its microtasks (crossbus's link flush) run before nextTask() posts the
    // MessageChannel message that resumes this loop, as they would at the end of an app's task.
    await null
    await nextTask()
  }
  const { dones } = await finished
  const latencies: number[] = []
  for (const done of dones) if (done.latencies !== undefined) latencies.push(...done.latencies)
  return {
    spanMs: last - start,
    latencies,
    receivers: dones.map(({ index, stats, diagnostics }) => ({ index, stats, diagnostics })),
    sender: sender.stats(),
    diagnostics: takeDiagnostics(),
  }
}

/** Publishes `count` events, `chunk` per task (memory under a stalled receiver); no one is expected to receive them. */
async function publishMany(key: string, count: number, chunk: number, from: number) {
  const sender = senderOf(key)
  const start = performance.now()
  for (let n = from; n < from + count; ) {
    const end = Math.min(from + count, n + chunk)
    for (; n < end; n++) sender.send({ n, payload: PAYLOAD })
    sender.endTask()
    await nextTask()
  }
  return { ms: performance.now() - start, sender: sender.stats() }
}

async function stall(key: string, ms: number): Promise<void> {
  await senderOf(key).stall?.(ms)
}

function closeSender(key: string): void {
  senders.get(key)?.close()
  senders.delete(key)
}

/**
 * Clock check between this tab and the receivers of `name`: the receiver's
 * wall clock minus the midpoint of the ping's round trip, from the fastest of
 * `samples` pings. One-way latency is only as good as this offset is small.
 */
async function clockOffset(name: string, samples: number): Promise<{ offsetMs: number; rttMs: number }> {
  const control = new BroadcastChannel(controlName(name))
  const ping = (): Promise<number> =>
    new Promise<number>((resolve) => {
      control.onmessage = (event: MessageEvent<{ type: string; clock: number }>) => {
        if (event.data.type === 'pong') resolve(event.data.clock)
      }
      control.postMessage({ type: 'ping' })
    })
  try {
    return await bestOffset(ping, samples)
  } finally {
    control.close()
  }
}

/** The same with the worker of sender `key`, over its control port. */
async function workerClockOffset(key: string, samples: number): Promise<{ offsetMs: number; rttMs: number }> {
  const sender = senderOf(key)
  if (sender.ping === undefined) throw new Error(`sender ${key} has no worker`)
  return bestOffset(sender.ping, samples)
}

async function bestOffset(ping: () => Promise<number>, samples: number): Promise<{ offsetMs: number; rttMs: number }> {
  let best = { offsetMs: 0, rttMs: Number.POSITIVE_INFINITY }
  for (let sample = 0; sample < samples; sample++) {
    const sent = wallClock()
    const clock = await ping()
    const back = wallClock()
    if (back - sent < best.rttMs) best = { offsetMs: clock - (sent + back) / 2, rttMs: back - sent }
    await nextTask()
  }
  return best
}

// ---- durable writes ----

export type DurableVariant = 'crossbus-1' | 'crossbus-100' | 'set' | 'setMany-100'

/**
 * Writes `count` events `{ n, payload }` to a fresh IndexedDB database and
 * resolves once all are committed. crossbus: durable publishes, `perTask` per
 * task (the app never waits; receipts' `persisted` are awaited at the end);
 * idb-keyval: `set` awaited per event, or `setMany` of 100 awaited per call.
 */
async function durable(variant: DurableVariant, count: number, dbName: string) {
  let committed = 0
  let stored = 0
  const start = performance.now()
  if (variant === 'crossbus-1' || variant === 'crossbus-100') {
    const perTask = variant === 'crossbus-1' ? 1 : 100
    const store = indexedDbStore({ dbName })
    const bus = createBus({ name: dbName, transports: [], store })
    const persisted = new Set<Promise<void>>()
    for (let n = 0; n < count; ) {
      const end = Math.min(count, n + perTask)
      for (; n < end; n++) persisted.add(bus.publish(TOPIC, { n, payload: PAYLOAD }, { durable: true }).persisted)
      await nextTask()
    }
    // One promise per transaction, not per event.
    await Promise.all(persisted)
    const ms = performance.now() - start
    committed = bus.stats().stored
    for (let after = 0, batch = await store.read(0, 10_000); batch.length > 0; batch = await store.read(after, 10_000)) {
      stored += batch.length
      after = (batch.at(-1) as { position: number }).position
    }
    await bus.close()
    store.close()
    return { ms, committed, stored, transactions: persisted.size }
  }
  const target = createStore(dbName, 'bench')
  const value = (n: number) => ({ id: `bench:${n}`, topic: TOPIC, data: { n, payload: PAYLOAD }, time: Date.now() })
  if (variant === 'set') {
    for (let n = 0; n < count; n++) await set(n, value(n), target)
  } else {
    for (let n = 0; n < count; n += 100) {
      const entries: [IDBValidKey, unknown][] = []
      for (let item = n; item < Math.min(count, n + 100); item++) entries.push([item, value(item)])
      await setMany(entries, target)
    }
  }
  const ms = performance.now() - start
  committed = stored = count
  return { ms, committed, stored, transactions: variant === 'set' ? count : Math.ceil(count / 100) }
}

// ---- startup (section 7): a new tab's first event, from its createBus() to this tab ----

/** Startup variants: crossbus (createBus() then publish at module evaluation) or the raw BroadcastChannel. */
export type StartupVariant = 'crossbus' | 'raw'
let startupArrival: Promise<number> | undefined

/** Listens for the first event of a tab that startup.html?variant&name is about to open; `startupWait()` gives its delay. */
function startupArm(variant: StartupVariant, name: string): void {
  startupArrival = new Promise((resolve) => {
    if (variant === 'raw') {
      const channel = new BroadcastChannel(`raw-startup:${name}`)
      channel.onmessage = (event: MessageEvent<{ t0: number }>) => {
        resolve(wallClock() - event.data.t0)
        channel.close()
      }
      return
    }
    const bus = createBus({ name, onDiagnostic: recordDiagnostic })
    bus.subscribe('bench.startup', (event) => {
      resolve(wallClock() - (event.data as { t0: number }).t0)
      void bus.close({ timeout: 0 })
    })
  })
}

/** Milliseconds from the new tab's createBus() (or new BroadcastChannel) to its first event's delivery here. */
function startupWait(): Promise<number> {
  return startupArrival ?? Promise.reject(new Error('startupArm() first'))
}

const api = {
  info: () => ({
    crossOriginIsolated,
    visibilityState: document.visibilityState,
    userAgent: navigator.userAgent,
    hasScheduler: 'scheduler' in globalThis,
  }),
  receive,
  arm,
  closeReceiver,
  openSender,
  armWorker,
  burst,
  paced,
  publishMany,
  stall,
  senderStats: (key: string) => senderOf(key).stats(),
  closeSender,
  clockOffset,
  workerClockOffset,
  durable,
  startupArm,
  startupWait,
  runPool,
}

export type BenchApi = typeof api

declare global {
  interface Window {
    crossbusBench: BenchApi
  }
}

window.crossbusBench = api
document.getElementById('status')!.textContent = 'ready'
