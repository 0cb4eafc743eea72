// The NATS bench page. bench/run-nats.mjs opens it in two browser contexts (two devices: BroadcastChannel
// does not cross them) and drives it through `window.natsBench`: one tab sends, the other receives, either
// through crossbus (a bus and natsBridge in each tab) or through the raw @nats-io/nats-core client doing the
// same (wsconnect, publish, subscribe; JSON payloads). Times are wall-clock readings (timeOrigin + now) of the
// two tabs; both variants are measured with the same two clocks.
import { jetstream } from '@nats-io/jetstream'
import { headers as natsHeaders, type NatsConnection, wsconnect } from '@nats-io/nats-core'
import { type NatsBridge, natsBridge } from '../../src/bridges/nats.ts'
import { createBus, type Bus } from '../../src/index.ts'
import { indexedDbStore } from '../../src/store/idb.ts'

const wallClock = (): number => performance.timeOrigin + performance.now()
const encoder = new TextEncoder()
const decoder = new TextDecoder()

/** A macrotask (a MessageChannel message: no 4 ms clamp, no background throttling of timers). */
const nextTask = (() => {
  const channel = new MessageChannel()
  const waiting: (() => void)[] = []
  channel.port1.onmessage = () => waiting.shift()?.()
  return () =>
    new Promise<void>((resolve) => {
      waiting.push(resolve)
      channel.port2.postMessage(0)
    })
})()

const RAW_SOURCE = 'k3x9q2mz'
const RAW_ORIGIN = 'p8w2n5c7t1b4v6d0'

interface Setup {
  variant: 'crossbus' | 'raw' | 'raw-header' | 'raw-jetstream'
  /** crossbus: core publishes carry the event id (the bridge's `ids` option). */
  ids?: boolean
  role: 'sender' | 'receiver'
  servers: string
  /** Bus name, IndexedDB name, bridge name. */
  name: string
  subject: string
  /** crossbus: durable events through JetStream (sender: outbox; receiver: this durable consumer). */
  stream?: string
  durable?: string
}

interface Event {
  i: number
  /** Wall clock at publish, for latency. */
  t: number
}

let setup: Setup | undefined
let bus: Bus | undefined
let bridge: NatsBridge | undefined
let raw: NatsConnection | undefined
const diagnostics: string[] = []

// Receiver state.
let expected = 0
let received = 0
let seen = new Set<number>()
let duplicates = 0
let lastAt = 0
let latencies: number[] = []
let done: (() => void) | undefined

function onEvent(event: Event): void {
  const now = wallClock()
  if (seen.has(event.i)) {
    duplicates++
    return
  }
  seen.add(event.i)
  received++
  lastAt = now
  latencies.push(now - event.t)
  if (received >= expected) done?.()
}

async function open(options: Setup): Promise<string> {
  setup = options
  if (options.variant === 'crossbus') {
    const durable = options.stream !== undefined
    bus = createBus({
      name: options.name,
      transports: [],
      ...(durable ? { store: indexedDbStore({ dbName: options.name }) } : {}),
      onDiagnostic: (diagnostic) => void diagnostics.push(`${diagnostic.type}: ${diagnostic.message}`),
    })
    const topic = options.subject.slice('bench.'.length)
    bridge = natsBridge(bus, {
      servers: options.servers,
      prefix: 'bench',
      name: options.name,
      ...(options.role === 'sender' ? { export: [topic] } : { import: [topic] }),
      ...(durable ? { jetstream: { stream: options.stream as string, ...(options.durable === undefined ? {} : { durable: options.durable }) } } : {}),
      reconnect: { initialDelay: 100, maxDelay: 1000 },
      ...(options.ids === undefined ? {} : { ids: options.ids }),
      onDiagnostic: (diagnostic) => {
        if (diagnostic.type !== 'status') diagnostics.push(`nats ${diagnostic.type}: ${diagnostic.message}`)
      },
    })
    if (options.role === 'receiver') bus.subscribe(topic, (event) => onEvent(event.data as Event), { capacity: 1 << 20 })
    const deadline = Date.now() + 10_000
    while (bridge.stats().status !== 'connected') {
      if (Date.now() > deadline) throw new Error(`the bridge did not connect: ${bridge.stats().lastError}`)
      await new Promise((resolve) => setTimeout(resolve, 10))
    }
    return bus.id
  }
  // The raw client with its defaults, as an app would use it (its reconnect: 10 attempts, 2 s apart).
  raw = await wsconnect({ servers: options.servers })
  if (options.role === 'receiver') {
    raw.subscribe(options.subject, {
      callback: (error, message) => {
        if (error === null) onEvent(JSON.parse(decoder.decode(message.data)) as Event)
      },
    })
    await raw.flush()
  }
  return 'raw'
}

function arm(count: number): void {
  expected = count
  received = 0
  duplicates = 0
  seen = new Set()
  latencies = []
  lastAt = 0
}

/**
 * Resolves once `expected` events arrived, or after `timeout` ms with what did; with `quiet`, also once
 * nothing arrived for that long (a variant that lost events never gets them all).
 */
async function collect(timeout: number, quiet?: number): Promise<{ received: number; duplicates: number; lastAt: number; latencies: number[] }> {
  if (received < expected) {
    await new Promise<void>((resolve) => {
      const deadline = setTimeout(finish, timeout)
      let idle: ReturnType<typeof setInterval> | undefined
      if (quiet !== undefined) {
        let last = received
        idle = setInterval(() => {
          if (received === last) finish()
          last = received
        }, quiet)
      }
      function finish(): void {
        clearTimeout(deadline)
        clearInterval(idle)
        resolve()
      }
      done = finish
    })
    done = undefined
  }
  return { received, duplicates, lastAt, latencies }
}

function publishOne(event: Event, durable: boolean): void {
  const { variant, subject } = setup as Setup
  if (variant === 'crossbus') (bus as Bus).publish(subject.slice('bench.'.length), event, durable ? { durable: true } : undefined)
  else if (variant === 'raw') (raw as NatsConnection).publish(subject, encoder.encode(JSON.stringify(event)))
  else if (variant === 'raw-header') {
    // The raw client sending the one header crossbus sends with ids: true.
    const headers = natsHeaders()
    headers.set('Crossbus-Id', `${RAW_SOURCE}:${event.i}@${RAW_ORIGIN}`)
    ;(raw as NatsConnection).publish(subject, encoder.encode(JSON.stringify(event)), { headers })
  }
}

/** Publishes `count` events, `chunk` per task; returns when it started and how long publishing took. */
async function burst(count: number, chunk: number, from = 0): Promise<{ startedAt: number; publishMs: number }> {
  const startedAt = wallClock()
  for (let start = from; start < from + count; start += chunk) {
    const end = Math.min(from + count, start + chunk)
    for (let i = start; i < end; i++) publishOne({ i, t: 0 }, false)
    await nextTask()
  }
  return { startedAt, publishMs: wallClock() - startedAt }
}

/** One event per task at `rate` per second, each stamped at publish. */
async function paced(count: number, rate: number, from = 0): Promise<{ spanMs: number }> {
  const interval = 1000 / rate
  const startedAt = wallClock()
  for (let index = 0; index < count; index++) {
    const due = startedAt + index * interval
    // Sleep on a timer while the next event is more than 2 ms away, then yield tasks: a tab spinning on
    // tasks would take a core the browser, the server and the other tab need.
    while (due - wallClock() > 2) await new Promise((resolve) => setTimeout(resolve, Math.max(0, due - wallClock() - 2)))
    while (wallClock() < due) await nextTask()
    publishOne({ i: from + index, t: wallClock() }, false)
  }
  return { spanMs: wallClock() - startedAt }
}

/**
 * Publishes `count` events in bursts of `size` every `every` ms, durable for crossbus; with the raw
 * JetStream client each one is `js.publish`ed (not retried: a failure is a loss). Returns what the sender
 * itself counted as sent or failed.
 */
async function stream(count: number, size: number, every: number): Promise<{ published: number; failed: number }> {
  const { variant, subject } = setup as Setup
  let failed = 0
  const acks: Promise<unknown>[] = []
  const js = variant === 'raw-jetstream' ? jetstream(raw as NatsConnection) : undefined
  for (let start = 0; start < count; start += size) {
    for (let i = start; i < Math.min(count, start + size); i++) {
      const event = { i, t: wallClock() }
      if (js !== undefined) acks.push(js.publish(subject, encoder.encode(JSON.stringify(event)), { msgID: String(i) }).catch(() => failed++))
      else publishOne(event, variant === 'crossbus')
    }
    await new Promise((resolve) => setTimeout(resolve, every))
  }
  await Promise.all(acks)
  return { published: count, failed }
}

function stats(): unknown {
  return { bridge: bridge?.stats(), bus: bus?.stats(), diagnostics: diagnostics.slice(0, 5) }
}

async function close(): Promise<void> {
  await bridge?.close()
  await bus?.close()
  await raw?.close()
  bridge = undefined
  bus = undefined
  raw = undefined
}

const api = { open, arm, collect, burst, paced, stream, stats, close }

declare global {
  interface Window {
    natsBench: typeof api
  }
}

window.natsBench = api
document.getElementById('status')!.textContent = 'ready'
