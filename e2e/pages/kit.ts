// Shared by the cross-context e2e pages and workers: a bus that records its
// diagnostics and what its subscriptions receive, polling helpers, and a small
// request/response protocol over a MessagePort so a test can drive a bus that
// lives in a worker. Everything returned to a test is plain, cloneable data.
import { createBus, isCrossbusError, type Bus, type BusEvent, type BusOptions, type SubscribeOptions } from '../../src/index.ts'
import { broadcastChannel, messagePort, type MessagePortTarget } from '../../src/transports/index.ts'
import { indexedDbStore } from '../../src/store/idb.ts'

export { createBus, broadcastChannel, messagePort, indexedDbStore, type MessagePortTarget }

/** Header of readiness probes (see `wanted`): recordings ignore them. */
export const PROBE = 'x-e2e-probe'

/** An event as a recording keeps it. */
export interface Seen {
  topic: string
  data: unknown
  source: string
  seq: number
  id: string
}

/** A diagnostic as a test sees it (errors as strings). */
export interface SeenDiagnostic {
  type: string
  message: string
  transport?: string
  count?: number
}

/** Resolves once `condition()` holds; rejects after `timeout` ms. Polls every `interval` ms. */
export async function until(condition: () => boolean, timeout = 5000, interval = 5, what = 'condition'): Promise<void> {
  const deadline = Date.now() + timeout
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeout} ms waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, interval))
  }
}

/** One bus of one context, with what it saw. */
export class Ctx {
  readonly bus: Bus
  readonly diagnostics: SeenDiagnostic[] = []
  readonly recordings = new Map<string, Seen[]>()

  constructor(options: BusOptions) {
    this.bus = createBus({
      ...options,
      onDiagnostic: (diagnostic) => {
        const seen: SeenDiagnostic = { type: diagnostic.type, message: diagnostic.message }
        if (diagnostic.transport !== undefined) seen.transport = diagnostic.transport
        if (diagnostic.count !== undefined) seen.count = diagnostic.count
        this.diagnostics.push(seen)
      },
    })
  }

  get id(): string {
    return this.bus.id
  }

  /** Subscribes `pattern` and keeps every non-probe event under `key` (default: the pattern). */
  record(pattern: string, options: SubscribeOptions & { key?: string } = {}): Seen[] {
    const { key = pattern, ...subscribeOptions } = options
    const seen = this.recordings.get(key) ?? []
    this.recordings.set(key, seen)
    this.bus.subscribe(
      pattern,
      (event: BusEvent) => {
        if (event.headers[PROBE] !== undefined) return
        seen.push({ topic: event.topic, data: event.data, source: event.source, seq: event.seq, id: event.id })
      },
      subscribeOptions,
    )
    return seen
  }

  events(key: string): Seen[] {
    return this.recordings.get(key) ?? []
  }

  count(key: string): number {
    return this.events(key).length
  }

  /** Requests answered by answer(). */
  answered = 0

  /** Answers requests on `pattern` with `{ by: this bus's id, data }`. */
  answer(pattern: string): void {
    this.bus.reply(pattern, (event: BusEvent) => {
      this.answered++
      return { by: this.bus.id, data: event.data }
    })
  }

  /** Publishes `count` events `{ n }` on `topic`, n from `start`, in this task. Returns the receipts' ids. */
  publish(topic: string, count = 1, start = 0, retain = false): string[] {
    const ids: string[] = []
    for (let n = start; n < start + count; n++) ids.push(this.bus.publish(topic, { n }, retain ? { retain: true } : undefined).id)
    return ids
  }

  /**
   * Resolves once a publish on `topic` is handed to a link (link `index`, or
   * any): some context behind it has said it is interested. Publishes probes,
   * which recordings ignore.
   */
  async wanted(topic: string, index?: number, timeout = 5000): Promise<void> {
    const taken = (): number => {
      const links = this.bus.stats().transports
      const chosen = index === undefined ? links : links.slice(index, index + 1)
      return chosen.reduce((sum, link) => sum + link.sent + link.queued + link.dropped, 0)
    }
    await until(
      () => {
        const before = taken()
        this.bus.publish(topic, null, { headers: { [PROBE]: '1' } })
        return taken() > before
      },
      timeout,
      10,
      `a peer interested in ${topic}`,
    )
  }

  /** request(), retried while no responder is known yet (its announcement is on its way). */
  async request(topic: string, data: unknown, timeout = 5000): Promise<unknown> {
    const deadline = Date.now() + timeout
    for (;;) {
      try {
        return await this.bus.request(topic, data, { timeout: Math.max(1, deadline - Date.now()) })
      } catch (error) {
        if (!isCrossbusError(error) || error.code !== 'NO_RESPONDERS' || Date.now() > deadline) throw error
        await new Promise((resolve) => setTimeout(resolve, 10))
      }
    }
  }

  /** request() once; a failure comes back as `{ error: code or message }`. */
  async tryRequest(topic: string, data: unknown, timeout = 5000): Promise<unknown> {
    try {
      return await this.bus.request(topic, data, { timeout })
    } catch (error) {
      return { error: isCrossbusError(error) ? error.code : String(error) }
    }
  }

  peerIds(): string[] {
    return this.bus
      .peers()
      .map((peer) => peer.id)
      .sort()
  }

  diagnosticsOf(type: string): SeenDiagnostic[] {
    return this.diagnostics.filter((diagnostic) => diagnostic.type === type)
  }
}

// ---- driving a bus in another context over a MessagePort ----

export type Command =
  | { op: 'id' }
  | { op: 'record'; pattern: string; capacity?: number; queue?: string }
  /** How many requests this context's answer() handlers ran. */
  | { op: 'answered' }
  | { op: 'answer'; pattern: string }
  | { op: 'publish'; topic: string; count: number; start?: number; retain?: boolean }
  | { op: 'events'; key: string }
  | { op: 'count'; key: string }
  | { op: 'stats' }
  | { op: 'peers' }
  | { op: 'diagnostics' }
  | { op: 'wanted'; topic: string }
  | { op: 'request'; topic: string; data: unknown; timeout?: number }
  /** Answers, then keeps the thread busy for `ms` without yielding. */
  | { op: 'block'; ms: number }

type Reply = { call: number; ok: true; value: unknown } | { call: number; ok: false; error: string }

/** Serves commands arriving on `port` against `ctx`. */
export function serve(port: MessagePort, ctx: Ctx): void {
  const run = async (command: Command): Promise<unknown> => {
    switch (command.op) {
      case 'id':
        return ctx.id
      case 'record':
        ctx.record(command.pattern, { capacity: command.capacity, queue: command.queue })
        return true
      case 'answered':
        return ctx.answered
      case 'answer':
        ctx.answer(command.pattern)
        return true
      case 'publish':
        return ctx.publish(command.topic, command.count, command.start ?? 0, command.retain ?? false)
      case 'events':
        return ctx.events(command.key)
      case 'count':
        return ctx.count(command.key)
      case 'stats':
        return ctx.bus.stats()
      case 'peers':
        return ctx.peerIds()
      case 'diagnostics':
        return ctx.diagnostics
      case 'wanted':
        await ctx.wanted(command.topic)
        return true
      case 'request':
        return ctx.request(command.topic, command.data, command.timeout)
      case 'block':
        return { blockedAt: Date.now() }
    }
  }
  port.onmessage = (message: MessageEvent<{ call: number; command: Command }>) => {
    const { call, command } = message.data
    void run(command).then(
      (value) => {
        port.postMessage({ call, ok: true, value } satisfies Reply)
        if (command.op === 'block') {
          const until = Date.now() + command.ms
          while (Date.now() < until) {
            // busy: no task, no message, no credit grant runs in this thread
          }
        }
      },
      (error: unknown) => port.postMessage({ call, ok: false, error: String(error) } satisfies Reply),
    )
  }
}

/** The caller's side of `serve`. */
export class Remote {
  #calls = 0
  readonly #pending = new Map<number, { resolve: (value: unknown) => void; reject: (error: Error) => void }>()
  readonly #port: MessagePort

  constructor(port: MessagePort) {
    this.#port = port
    port.onmessage = (message: MessageEvent<Reply>) => {
      const reply = message.data
      const pending = this.#pending.get(reply.call)
      if (pending === undefined) return
      this.#pending.delete(reply.call)
      if (reply.ok) pending.resolve(reply.value)
      else pending.reject(new Error(reply.error))
    }
  }

  call<T = unknown>(command: Command): Promise<T> {
    const call = ++this.#calls
    return new Promise<T>((resolve, reject) => {
      this.#pending.set(call, { resolve: resolve as (value: unknown) => void, reject })
      this.#port.postMessage({ call, command })
    })
  }
}

/** Starts a dedicated worker running `bus-worker.ts` with a bus named `name`; resolves once it serves. */
export async function startWorker(name: string, join?: { pattern: string; queue: string }): Promise<{ worker: Worker; remote: Remote; id: string }> {
  const { worker, remote } = spawnWorker(name, join)
  const id = await remote.call<string>({ op: 'id' })
  return { worker, remote, id }
}

/** A worker as startWorker makes it, without waiting for it: its bus starts whenever the worker does. */
export function spawnWorker(name: string, join?: { pattern: string; queue: string }): { worker: Worker; remote: Remote } {
  const worker = new Worker(new URL('./bus-worker.ts', import.meta.url), { type: 'module', name })
  const control = new MessageChannel()
  // The first message is the worker's set-up, taken before its bus listens on `self`.
  worker.postMessage(join === undefined ? { name, control: control.port2 } : { name, control: control.port2, join }, [control.port2])
  return { worker, remote: new Remote(control.port1) }
}

/** Connects to the SharedWorker hub named `name` (hub-worker.ts); returns its port. */
export function connectHub(name: string): MessagePort {
  return new SharedWorker(new URL('./hub-worker.ts', import.meta.url), { type: 'module', name }).port
}

/**
 * Registers sw-worker.ts (module service worker, scope /e2e/pages/) with a bus
 * named `name`, and resolves once it controls this page.
 */
export async function registerServiceWorker(name: string): Promise<void> {
  const container = navigator.serviceWorker
  const controlled = new Promise<void>((resolve) => {
    if (container.controller !== null) resolve()
    else container.addEventListener('controllerchange', () => resolve(), { once: true })
  })
  await container.register(`/e2e/pages/sw-worker.ts?name=${encodeURIComponent(name)}`, { type: 'module' })
  await container.ready
  await controlled
}

// ---- durable consumers that report outside the page ----

/** A binding the test exposes (page.exposeFunction): resolves once the test process has the id. */
type Report = (id: string) => Promise<void>

export interface DurableOptions {
  name: string
  dbName: string
  /** Durable consumer name. */
  consumer: string
  pattern: string
  /** Simulated work per event, in ms (a timer, not a busy loop). */
  delay: number
  capacity?: number
  /** Throw on every attempt: the event goes to `deadLetter` after `attempts`. */
  fail?: { attempts: number; deadLetter: string }
}

/**
 * A durable processor that reports each event to the test (`window.handled`)
 * before it finishes, so every event it acks is already recorded outside the
 * page, whatever happens to the page next.
 */
export function startDurableConsumer(options: DurableOptions): Ctx {
  const report = (window as unknown as { handled: Report }).handled
  const ctx = new Ctx({ name: options.name, store: indexedDbStore({ dbName: options.dbName }) })
  ctx.bus.process(
    options.pattern,
    async (event: BusEvent) => {
      await report(event.id)
      await new Promise((resolve) => setTimeout(resolve, options.delay))
      if (options.fail !== undefined) throw new Error(`refusing ${event.id}`)
    },
    {
      durable: options.consumer,
      capacity: options.capacity ?? 64,
      ...(options.fail === undefined
        ? {}
        : { retry: { attempts: options.fail.attempts, initialDelay: 5, jitter: false }, deadLetter: options.fail.deadLetter }),
    },
  )
  return ctx
}

/**
 * Publishes `count` durable events `{ n }` on `topic` in bursts of `burst`,
 * one burst every `every` ms, each committed before the next; resolves with their ids.
 */
export async function publishDurable(ctx: Ctx, topic: string, count: number, burst: number, every: number): Promise<string[]> {
  const ids: string[] = []
  for (let start = 0; start < count; start += burst) {
    const receipts = []
    for (let n = start; n < Math.min(count, start + burst); n++) receipts.push(ctx.bus.publish(topic, { n }, { durable: true }))
    await Promise.all(receipts.map((receipt) => receipt.persisted))
    for (const receipt of receipts) ids.push(receipt.id)
    await new Promise((resolve) => setTimeout(resolve, every))
  }
  return ids
}
