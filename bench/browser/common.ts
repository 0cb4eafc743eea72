// Shared by the bench page (page.ts) and its dedicated worker (worker.ts): the
// event every variant sends, the sink every receiver feeds, and how each
// variant listens. See bench/README.md for what each variant measures.
import { createBus, type Bus, type Diagnostic } from '../../src/index.ts'
import { messagePort } from '../../src/transports/index.ts'
import { BroadcastChannel as PackageChannel } from 'broadcast-channel'

export const TOPIC = 'bench.tick'
export const PAYLOAD = 'x'.repeat(32)
/** Events per postMessage in the raw batched variants. */
export const RAW_BATCH = 100

/** One event: the same small object in every variant; `t` (ms, timeOrigin + now) only in latency runs. */
export interface Tick {
  n: number
  payload: string
  t?: number
}

/**
 * crossbus: the library with its defaults (validate on, since a link exists).
 * crossbus-novalidate: the same with `validate: false` (no structuredClone check per publish), for the analysis.
 * raw: one event per postMessage. raw-batch: arrays of RAW_BATCH events per postMessage.
 * package: the `broadcast-channel` npm package, one event per postMessage (its only mode).
 */
export type Variant = 'crossbus' | 'crossbus-novalidate' | 'raw' | 'raw-batch' | 'package'

/** Where events travel: a BroadcastChannel between tabs, or a dedicated worker's port. */
export type Wire = 'tab' | 'worker'

/** A dedicated worker's global scope, typed here: the WebWorker lib conflicts with the DOM lib. */
export interface WorkerScope {
  postMessage(message: unknown): void
  addEventListener(type: string, listener: (event: MessageEvent) => void, options?: AddEventListenerOptions): void
  removeEventListener(type: string, listener: (event: MessageEvent) => void): void
  onmessage: ((event: MessageEvent) => void) | null
}

/** `self` in the worker. */
export const workerScope = (): WorkerScope => self as unknown as WorkerScope

/** Wall-clock milliseconds with sub-millisecond precision, comparable across contexts of one machine. */
export const wallClock = (): number => performance.timeOrigin + performance.now()

/** A macrotask, never clamped or throttled (a MessageChannel message). */
export function createYield(): () => Promise<void> {
  const channel = new MessageChannel()
  const waiting: (() => void)[] = []
  channel.port1.onmessage = () => waiting.shift()?.()
  return () =>
    new Promise((resolve) => {
      waiting.push(resolve)
      channel.port2.postMessage(null)
    })
}

export interface ReceiverStats {
  /** Deliveries counted this round. */
  count: number
  /** crossbus only: the receiving bus's counters. */
  bus?: { received: number; delivered: number; dropped: number; rejected: number; subscriptionDropped: number }
}

/**
 * Counts the deliveries of the current round and calls `done` at the target;
 * in a latency round also records each event's one-way latency. Every
 * variant's handler does the same work per event: add `n` to a sum, count.
 */
export class Sink {
  count = 0
  sum = 0
  target = Number.POSITIVE_INFINITY
  latencies: Float64Array | undefined
  done: () => void = () => {}

  arm(target: number, latency: boolean): void {
    this.count = 0
    this.sum = 0
    this.target = target
    this.latencies = latency ? new Float64Array(target) : undefined
  }

  hit(tick: Tick): void {
    if (this.latencies !== undefined) this.latencies[this.count] = wallClock() - (tick.t as number)
    this.sum += tick.n
    if (++this.count === this.target) this.done()
  }
}

export interface Receiver {
  stats(): ReceiverStats
  close(): void
}

const diagnostics: string[] = []
/** Diagnostics any bench bus reported (drops, bad frames…), for the report. */
export function takeDiagnostics(): string[] {
  return diagnostics.splice(0)
}
export const recordDiagnostic = (diagnostic: Diagnostic): void => {
  if (diagnostic.type === 'peer-join' || diagnostic.type === 'peer-leave') return
  if (diagnostics.length < 20) diagnostics.push(diagnostic.message)
}

/**
 * Listens for one variant's events and feeds the sink. `name` is the bus or
 * channel name (unique per variant and run); `ready` is the reply topic a
 * crossbus sender requests to know this receiver's subscription reached it.
 */
export function listen(variant: Variant, wire: Wire, name: string, sink: Sink, capacity: number, ready: string): Receiver {
  if (variant === 'crossbus' || variant === 'crossbus-novalidate') {
    const bus: Bus = createBus({
      name,
      onDiagnostic: recordDiagnostic,
      validate: variant === 'crossbus',
      ...(wire === 'worker' ? { transports: [messagePort(workerScope())] } : {}),
    })
    const subscription = bus.subscribe(TOPIC, (event) => sink.hit(event.data as Tick), { capacity })
    bus.reply(ready, () => true)
    return {
      stats() {
        const { received, delivered, dropped, rejected } = bus.stats()
        return { count: sink.count, bus: { received, delivered, dropped, rejected, subscriptionDropped: subscription.stats().dropped } }
      },
      close: () => void bus.close(),
    }
  }
  if (variant === 'package') {
    const channel = new PackageChannel<Tick>(name)
    channel.onmessage = (tick) => sink.hit(tick)
    return { stats: () => ({ count: sink.count }), close: () => void channel.close() }
  }
  const port: { onmessage: ((event: MessageEvent) => void) | null } = wire === 'tab' ? new BroadcastChannel(name) : workerScope()
  port.onmessage =
    variant === 'raw'
      ? (event) => sink.hit(event.data as Tick)
      : (event) => {
          for (const tick of event.data as Tick[]) sink.hit(tick)
        }
  return {
    stats: () => ({ count: sink.count }),
    close() {
      port.onmessage = null
      if (port instanceof BroadcastChannel) port.close()
    },
  }
}
