// The NATS bridge's e2e contexts: a bus with its bridge in a tab, a dedicated worker or a shared worker, what
// it received, and a small request/response protocol so a test can drive the bus of a worker from its page.
// Everything returned to a test is plain, cloneable data.
import { natsBridge, type NatsBridge, type NatsBridgeOptions, type NatsBridgeStats } from '../../src/bridges/nats.ts'
import { createBus, type Bus, type BusEvent } from '../../src/index.ts'
import { indexedDbStore } from '../../src/store/idb.ts'

export interface NatsSetup {
  /** Bus name (and IndexedDB name when `durable`). */
  name: string
  /** A store on the bus (IndexedDB, named after the bus): needed for jetstream. */
  durable?: boolean
  /** The bridge's options, or none for a context that only uses the bus. */
  bridge?: Omit<NatsBridgeOptions, 'onDiagnostic' | 'webSocket' | 'codec'>
}

export interface Seen {
  topic: string
  data: unknown
  id: string
  /** The event's id where it was published, for events that came through NATS. */
  remoteId: string | undefined
  /** The context that received it. */
  by: string
}

/** One bus, its bridge (if any), and what it saw. */
export class NatsCtx {
  readonly bus: Bus
  readonly bridge: NatsBridge | undefined
  readonly recordings = new Map<string, Seen[]>()
  readonly diagnostics: { type: string; message: string }[] = []

  constructor(setup: NatsSetup) {
    this.bus = createBus({
      name: setup.name,
      ...(setup.durable === true ? { store: indexedDbStore({ dbName: setup.name }) } : {}),
      onDiagnostic: (diagnostic) => void this.diagnostics.push({ type: diagnostic.type, message: diagnostic.message }),
    })
    this.bridge =
      setup.bridge === undefined
        ? undefined
        : natsBridge(this.bus, {
            ...setup.bridge,
            onDiagnostic: (diagnostic) => void this.diagnostics.push({ type: `nats:${diagnostic.type}`, message: diagnostic.message }),
          })
  }

  get id(): string {
    return this.bus.id
  }

  record(pattern: string, key = pattern): boolean {
    const seen = this.recordings.get(key) ?? []
    this.recordings.set(key, seen)
    this.bus.subscribe(
      pattern,
      (event: BusEvent) =>
        void seen.push({ topic: event.topic, data: event.data, id: event.id, remoteId: event.headers['x-crossbus-nats-id'], by: this.bus.id }),
      { capacity: 100_000 },
    )
    return true
  }

  events(key: string): Seen[] {
    return this.recordings.get(key) ?? []
  }

  count(key: string): number {
    return this.events(key).length
  }

  /** Publishes `count` events `{ n }` on `topic` in this task, n from `start`; returns their ids. */
  publish(topic: string, count: number, start = 0, durable = false): string[] {
    const ids: string[] = []
    for (let n = start; n < start + count; n++) ids.push(this.bus.publish(topic, { n }, durable ? { durable: true } : undefined).id)
    return ids
  }

  /** Publishes durable events in bursts of `burst`, each committed before the next, `every` ms apart; returns their ids. */
  async publishPaced(topic: string, count: number, burst: number, every: number): Promise<string[]> {
    const ids: string[] = []
    for (let start = 0; start < count; start += burst) {
      const receipts = []
      for (let n = start; n < Math.min(count, start + burst); n++) receipts.push(this.bus.publish(topic, { n }, { durable: true }))
      await Promise.all(receipts.map((receipt) => receipt.persisted))
      for (const receipt of receipts) ids.push(receipt.id)
      await new Promise((resolve) => setTimeout(resolve, every))
    }
    return ids
  }

  bridgeStats(): NatsBridgeStats | undefined {
    return this.bridge?.stats()
  }

  peers(): string[] {
    return this.bus
      .peers()
      .map((peer) => peer.id)
      .sort()
  }

  async closeBridge(): Promise<boolean> {
    await this.bridge?.close()
    return true
  }
}

export type Method = 'id' | 'record' | 'events' | 'count' | 'publish' | 'publishPaced' | 'bridgeStats' | 'peers' | 'closeBridge' | 'diagnostics'

/** Serves calls arriving on `port` against the context `setup` makes (its first message); `make` may share one. */
export function serveNats(port: MessagePort, make: (setup: NatsSetup) => NatsCtx = (setup) => new NatsCtx(setup)): void {
  let ctx: NatsCtx | undefined
  port.onmessage = (message: MessageEvent<{ call: number; setup?: NatsSetup; method?: Method; args?: unknown[] }>) => {
    const { call, setup, method, args = [] } = message.data
    void (async () => {
      if (setup !== undefined) {
        ctx = make(setup)
        return ctx.id
      }
      const target = ctx as NatsCtx
      if (method === 'id') return target.id
      if (method === 'diagnostics') return target.diagnostics
      return (target[method as Exclude<Method, 'id' | 'diagnostics'>] as (...values: unknown[]) => unknown)(...args)
    })().then(
      (value) => port.postMessage({ call, ok: true, value }),
      (error: unknown) => port.postMessage({ call, ok: false, error: String(error) }),
    )
  }
}

/** The page's side of `serveNats`. */
export class NatsRemote {
  #calls = 0
  readonly #pending = new Map<number, { resolve: (value: unknown) => void; reject: (error: Error) => void }>()
  readonly #port: MessagePort

  constructor(port: MessagePort) {
    this.#port = port
    port.onmessage = (message: MessageEvent<{ call: number; ok: boolean; value?: unknown; error?: string }>) => {
      const pending = this.#pending.get(message.data.call)
      if (pending === undefined) return
      this.#pending.delete(message.data.call)
      if (message.data.ok) pending.resolve(message.data.value)
      else pending.reject(new Error(message.data.error))
    }
  }

  #send<T>(payload: object): Promise<T> {
    const call = ++this.#calls
    return new Promise<T>((resolve, reject) => {
      this.#pending.set(call, { resolve: resolve as (value: unknown) => void, reject })
      this.#port.postMessage({ call, ...payload })
    })
  }

  start(setup: NatsSetup): Promise<string> {
    return this.#send({ setup })
  }

  call<T = unknown>(method: Method, ...args: unknown[]): Promise<T> {
    return this.#send({ method, args })
  }
}

/** A dedicated worker running a bus (and bridge) made from `setup`. */
export async function startNatsWorker(setup: NatsSetup): Promise<NatsRemote> {
  const worker = new Worker(new URL('./nats-worker.ts', import.meta.url), { type: 'module', name: setup.name })
  const channel = new MessageChannel()
  worker.postMessage({ control: channel.port2 }, [channel.port2])
  const remote = new NatsRemote(channel.port1)
  await remote.start(setup)
  return remote
}

/** The shared worker named `name`, running a bus (and bridge) made from `setup` for its first caller. */
export async function startNatsSharedWorker(setup: NatsSetup): Promise<NatsRemote> {
  const worker = new SharedWorker(new URL('./nats-shared-worker.ts', import.meta.url), { type: 'module', name: setup.name })
  const remote = new NatsRemote(worker.port)
  worker.port.start()
  await remote.start(setup)
  return remote
}
