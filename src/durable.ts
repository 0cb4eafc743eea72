import { type DurableEngine, type DurableEngineFactory, type DurableHost, type EngineStore, STORE_ENGINE } from './engine.js'
import { DURABLE, Envelope } from './envelope.js'
import { CrossbusError, errorMessage, quote } from './errors.js'
import { holdLock } from './locks.js'
import { sleep } from './retry.js'
import { storageError } from './store/errors.js'
import type { Subscriber } from './subscriber.js'
import { matchTokens } from './topic.js'
import type { BusEvent, Store, StoredEvent } from './types.js'

/** Events appended in one transaction, at most. */
const MAX_BATCH = 2048
/** Events read from the store at once, at most. */
const READ_LIMIT = 256
/** A consumer that has caught up looks at the store this often, in case a commit's announcement went missing. */
const POLL_MS = 1000
/** Compaction runs at most this often, after appends and acks. */
const COMPACT_MS = 1000
/** First wait after a storage failure; doubles up to RETRY_MAX_MS. */
const RETRY_MS = 100
const RETRY_MAX_MS = 5000

const RESOLVED: Promise<void> = Promise.resolve()

/**
 * The events of one append transaction. `persisted` of their receipts; its
 * promise is made only when someone asks, so a failure nobody awaits is no
 * unhandled rejection (it is still reported as a storage-error).
 */
export class Batch {
  readonly events: Omit<StoredEvent, 'position'>[] = []
  #settled = false
  #error: unknown
  #promise: Promise<void> | undefined
  #resolve: (() => void) | undefined
  #reject: ((error: unknown) => void) | undefined

  get promise(): Promise<void> {
    if (this.#promise !== undefined) return this.#promise
    if (this.#settled) return (this.#promise = this.#error === undefined ? RESOLVED : Promise.reject(this.#error))
    return (this.#promise = new Promise<void>((resolve, reject) => {
      this.#resolve = resolve
      this.#reject = reject
    }))
  }

  settle(error?: unknown): void {
    this.#settled = true
    this.#error = error
    if (error === undefined) this.#resolve?.()
    else this.#reject?.(error)
  }
}

/** A stored event as the bus hands it out: an envelope marked durable. */
export function storedEvent(stored: StoredEvent, redelivered: boolean): BusEvent {
  const { id, topic, data, source, seq, time } = stored
  return new Envelope({ id, topic, data, source, seq, time, headers: Object.freeze(stored.headers), redelivered }, DURABLE)
}

/** A CrossbusError's message without its `crossbus: ` prefix, to go inside another sentence. */
const inner = (error: CrossbusError): string => error.message.replace(/^crossbus: /, '')

/**
 * The bus's side of a durable log: appends durable events in one transaction
 * per task (group commit: what is published while a write is under way goes
 * in the next one), feeds durable consumers, and compacts.
 */
export class DurableLog implements DurableEngine {
  readonly store: Store
  readonly #host: DurableHost
  readonly #consumers = new Set<DurableConsumer>()
  /** Consumers that ended and are writing their last ack. */
  readonly #stopping = new Set<Promise<void>>()
  /** Batches not yet written, oldest first; the last one takes new events. */
  readonly #waiting: Batch[] = []
  #writing: Promise<void> | undefined
  /** Seq of this context's last durable publish. */
  lastSeq = 0
  #compactTimer: ReturnType<typeof setTimeout> | undefined
  #closed = false

  constructor(host: DurableHost, store: Store) {
    this.#host = host
    this.store = store
    // Retained durable events outlive the page: loaded from the store once, at start.
    store.retained().then(
      (events) => {
        if (!this.#closed) host.restoreRetained(events.map((stored) => storedEvent(stored, false)))
      },
      (error: unknown) => {
        host.report({ type: 'storage-error', error, message: `crossbus: could not load retained events from the store: ${errorMessage(error)}` })
        host.restoreRetained([])
      },
    )
  }

  /** Queues a durable event for the next transaction; returns the batch it will commit in. */
  append(event: BusEvent, retain: boolean): Batch {
    let batch = this.#waiting[this.#waiting.length - 1]
    if (batch === undefined || batch.events.length >= MAX_BATCH) this.#waiting.push((batch = new Batch()))
    const { id, topic, data, source, seq, time, headers } = event
    this.lastSeq = seq
    batch.events.push({ id, topic, data, source, seq, time, headers, retain })
    // After the publishing task's other publishes (a microtask runs after the task's code).
    if (this.#writing === undefined) this.#writing = Promise.resolve().then(() => this.#write())
    return batch
  }

  async #write(): Promise<void> {
    for (let batch = this.#waiting.shift(); batch !== undefined; batch = this.#waiting.shift()) {
      let positions: number[]
      try {
        positions = await this.store.append(batch.events)
      } catch (caught) {
        const error = storageError(caught)
        this.#host.report({
          type: 'storage-error',
          topic: (batch.events[0] as Omit<StoredEvent, 'position'>).topic,
          count: batch.events.length,
          error,
          message: `crossbus: ${batch.events.length} durable event(s) were not stored (${error.code}): ${inner(error)}. They were delivered live; their receipts' persisted rejects.`,
        })
        batch.settle(error)
        continue
      }
      this.#host.count('stored', positions.length)
      batch.settle()
      const last = positions[positions.length - 1]
      if (last !== undefined) {
        this.#host.announce(last)
        this.grew()
      }
      this.compactSoon()
    }
    this.#writing = undefined
  }

  /** Resolves when every event appended so far is committed or has failed. */
  async flush(): Promise<void> {
    while (this.#writing !== undefined) await this.#writing
  }

  /** The log grew (here or in another context): consumers that caught up read again. */
  grew(): void {
    for (const consumer of this.#consumers) consumer.wake()
  }

  /** Starts a durable subscription: it waits for its lock, then replays and follows. */
  consume(subscriber: Subscriber, name: string, activate: () => void): void {
    const consumer = new DurableConsumer(this, this.#host, subscriber, name, activate)
    this.#consumers.add(consumer)
    subscriber.onEnd(() => {
      this.#consumers.delete(consumer)
      const stopped = consumer.stop()
      this.#stopping.add(stopped)
      void stopped.finally(() => this.#stopping.delete(stopped))
    })
    consumer.start()
  }

  /** Compacts soon (at most once per COMPACT_MS): events every consumer acked leave, evictions are reported. */
  compactSoon(): void {
    if (this.#compactTimer !== undefined || this.#closed) return
    this.#compactTimer = setTimeout(() => {
      this.store.compact().then(
        ({ evicted }) => {
          this.#compactTimer = undefined
          if (evicted === 0) return
          this.#host.count('evicted', evicted)
          this.#host.report({
            type: 'drop',
            count: evicted,
            message: `crossbus: the durable log evicted ${evicted} event(s) past its maxAge or maxEvents before every consumer had them. Evictions are counted in stats().evicted.`,
          })
        },
        (error: unknown) => {
          this.#compactTimer = undefined
          this.#host.report({ type: 'storage-error', error, message: `crossbus: compacting the durable log failed: ${errorMessage(error)}` })
        },
      )
    }, COMPACT_MS)
  }

  /** The bus is closing: consumers read nothing more from the log; what they hold is still handled and acked. */
  closing(): void {
    for (const consumer of this.#consumers) consumer.hold()
  }

  /** Waits for appends and for every consumer's last ack; stops compacting. */
  async close(): Promise<void> {
    this.#closed = true
    await Promise.all([this.flush(), ...this.#stopping, ...[...this.#consumers].map((consumer) => consumer.stop())])
    clearTimeout(this.#compactTimer)
    this.#compactTimer = undefined
  }
}

/**
 * One durable subscription's cursor in the log. Holds the consumer's lock,
 * reads stored events after its cursor into the subscription's queue as room
 * allows (so a full queue loses nothing: the rest waits in the store), and
 * acks the low-water mark of what the subscription has handled, one ack
 * write at a time.
 */
class DurableConsumer {
  readonly #log: DurableLog
  readonly #host: DurableHost
  readonly #subscriber: Subscriber
  readonly #name: string
  /** Routes the subscription once this instance is live. */
  readonly #activate: () => void
  readonly #stop = new AbortController()
  /** Position of each event this consumer put in the queue. */
  readonly #positions = new WeakMap<BusEvent, number>()
  /** Positions read and queued, in order, until handled from the front. */
  readonly #pending: number[] = []
  #pendingHead = 0
  readonly #handled = new Set<number>()
  /** Queued events that overflow evicted (drop-oldest): read again before anything new. */
  readonly #refetch: number[] = []
  /** Last position read from the store. */
  #read = 0
  /** Cursor stored, and cursor to store. */
  #acked = 0
  #ackTarget = 0
  #acking: Promise<void> | undefined
  #reading = false
  /** The log grew while reading: read again before calling it caught up. */
  #dirty = false
  #caughtUp = false
  #live = false
  /** When this instance went live, and the seq of this context's last durable publish then: what came before is redelivered. */
  #startedAt = 0
  #lastSeqAtStart = 0
  #poll: ReturnType<typeof setTimeout> | undefined
  #failures = 0
  #stopping = false
  /** The bus is closing: no more reads. */
  #holding = false
  #stopped: Promise<void> | undefined

  constructor(log: DurableLog, host: DurableHost, subscriber: Subscriber, name: string, activate: () => void) {
    this.#log = log
    this.#host = host
    this.#subscriber = subscriber
    this.#name = name
    this.#activate = activate
  }

  start(): void {
    const store = this.#log.store
    const signal = this.#stop.signal
    const lock = `crossbus:${this.#host.name}:durable:${store.name}:${this.#name}`
    holdLock(lock, signal)
      .then(() => this.#retrying(() => store.register(this.#name, this.#subscriber.pattern)))
      .then((state) => {
        if (signal.aborted || state === undefined) return
        this.#read = this.#acked = this.#ackTarget = state.cursor
        this.#startedAt = Date.now()
        this.#lastSeqAtStart = this.#log.lastSeq
        this.#live = true
        this.#subscriber.afterHandled = (event) => this.#onHandled(event)
        this.#subscriber.reclaim = (event) => this.#reclaim(event)
        this.#activate()
        void this.#pump()
      })
      .catch(() => {
        // Stopped while waiting for the lock.
      })
  }

  /** Reads nothing more from the log (the bus is closing); acks go on. */
  hold(): void {
    this.#holding = true
    clearTimeout(this.#poll)
  }

  /** The log may have grown. */
  wake(): void {
    this.#dirty = true
    this.#caughtUp = false
    if (this.#live) void this.#pump()
  }

  /** Ends this instance: the last ack is written, then the lock goes to the next instance. */
  stop(): Promise<void> {
    if (this.#stopped !== undefined) return this.#stopped
    this.#live = false
    this.#stopping = true
    clearTimeout(this.#poll)
    this.#stopped = (async () => {
      while (this.#acking !== undefined) await this.#acking
      this.#stop.abort(new CrossbusError('ABORTED', 'the durable subscription ended'))
    })()
    return this.#stopped
  }

  /** Runs a store call until it succeeds or this consumer stops (undefined), reporting failures. */
  async #retrying<T>(call: () => Promise<T>): Promise<T | undefined> {
    for (;;) {
      if (this.#stop.signal.aborted) return undefined
      try {
        const result = await call()
        this.#failures = 0
        return result
      } catch (caught) {
        const error = storageError(caught)
        // Ending: the last ack is tried once, so a broken store cannot keep close() waiting.
        if (this.#stopping) return undefined
        this.#failures++
        if (this.#failures === 1) {
          this.#host.report({
            type: 'storage-error',
            subscription: this.#subscriber.pattern,
            error,
            message: `crossbus: durable consumer ${quote(this.#name)} cannot reach the store (${error.code}): ${inner(error)}. It tries again; nothing is lost.`,
          })
        }
        try {
          await sleep(Math.min(RETRY_MAX_MS, RETRY_MS * 2 ** (this.#failures - 1)), this.#stop.signal)
        } catch {
          return undefined
        }
      }
    }
  }

  /** Reads stored events into the queue while it has room; stops when caught up. */
  async #pump(): Promise<void> {
    if (this.#reading) return
    this.#reading = true
    clearTimeout(this.#poll)
    const subscriber = this.#subscriber
    const queue = subscriber.queue
    try {
      while (this.#live && !this.#holding && subscriber.active) {
        const room = queue.capacity - queue.size
        if (room <= 0) return
        const refetch = this.#refetch.shift()
        if (refetch !== undefined) {
          const found = await this.#retrying(() => this.#log.store.read(refetch - 1, 1))
          if (found === undefined) return
          const stored = found[0]
          if (stored?.position !== refetch)
            this.#onPosition(refetch) // evicted from the log meanwhile (reported there)
          else if (!this.#offer(stored)) {
            // Live events took the room meanwhile: later.
            this.#refetch.unshift(refetch)
            return
          }
          continue
        }
        this.#dirty = false
        const limit = Math.min(room, READ_LIMIT)
        const events = await this.#retrying(() => this.#log.store.read(this.#read, limit))
        if (events === undefined || !this.#live) return
        let full = false
        for (const stored of events) {
          if (!matchTokens(subscriber.tokens, stored.topic.split('.'))) {
            this.#read = stored.position
            continue
          }
          if (!this.#offer(stored)) {
            full = true
            break
          }
        }
        // Only events others consume went by: the cursor can move past them.
        if (this.#pendingHead === this.#pending.length) this.#advance(this.#read)
        if (full) return
        if (events.length < limit && !this.#dirty) {
          this.#caughtUp = true
          return
        }
      }
    } finally {
      this.#reading = false
      if (this.#live && !this.#holding && this.#caughtUp) this.#poll = setTimeout(() => this.wake(), POLL_MS)
    }
  }

  /** Puts one stored event in the queue; false when there is no room (it stays in the store). */
  #offer(stored: StoredEvent): boolean {
    // Published before this instance went live: this context's own events by seq, others' by time (the same
    // millisecond counts as before: a replay flagged redelivered is safe, a replay that is not could mislead).
    const before = stored.source === this.#host.id ? stored.seq <= this.#lastSeqAtStart : stored.time <= this.#startedAt
    const event = storedEvent(stored, before)
    if (!this.#subscriber.accept(event)) return false
    this.#positions.set(event, stored.position)
    if (stored.position > this.#read) {
      this.#read = stored.position
      this.#pending.push(stored.position)
    }
    return true
  }

  /** A queued durable event was evicted by overflow: read it again later rather than lose it. */
  #reclaim(event: BusEvent): boolean {
    const position = this.#positions.get(event)
    if (position === undefined) return false
    this.#refetch.push(position)
    this.#refetch.sort((a, b) => a - b)
    return true
  }

  #onHandled(event: BusEvent): void {
    const position = this.#positions.get(event)
    if (position !== undefined) this.#onPosition(position)
    // Room again: read on unless caught up (a wake-up reads then).
    const queue = this.#subscriber.queue
    if (!this.#caughtUp && !this.#reading && queue.size * 2 <= queue.capacity) void this.#pump()
  }

  /** One position is handled: the cursor moves over every handled position at the front. */
  #onPosition(position: number): void {
    if (!this.#live) return
    this.#handled.add(position)
    const pending = this.#pending
    let mark: number | undefined
    while (this.#pendingHead < pending.length && this.#handled.has(pending[this.#pendingHead] as number)) {
      mark = pending[this.#pendingHead++] as number
      this.#handled.delete(mark)
    }
    if (this.#pendingHead === pending.length) {
      pending.length = this.#pendingHead = 0
      mark = this.#read
    } else if (this.#pendingHead > 1024) {
      pending.splice(0, this.#pendingHead)
      this.#pendingHead = 0
    }
    if (mark !== undefined) this.#advance(mark)
  }

  /** Acks up to `mark`: one write at a time, the latest mark when it is done. */
  #advance(mark: number): void {
    if (mark <= this.#ackTarget) return
    this.#ackTarget = mark
    if (this.#acking !== undefined) return
    this.#acking = (async () => {
      while (this.#ackTarget > this.#acked) {
        const target = this.#ackTarget
        const done = await this.#retrying(() => this.#log.store.ack(this.#name, target).then(() => true))
        if (done === undefined) break
        this.#acked = target
      }
      this.#acking = undefined
      this.#log.compactSoon()
    })()
  }
}

/** The engine of the stores crossbus ships; defineStore() gives it to any other Store. */
export const durableEngine: DurableEngineFactory = (host, store) => new DurableLog(host, store)

const STORE_METHODS = ['append', 'read', 'retained', 'register', 'ack', 'compact', 'close'] as const

/**
 * Makes any object that implements the Store interface usable as
 * `createBus({ store })`: it brings the durable engine with it, so an app
 * without a store ships none of it. indexedDbStore() and memoryStore() are
 * made with it.
 *
 * @example
 * import { defineStore } from 'crossbus/store'
 * const bus = createBus({ store: defineStore(mySqliteLog) })
 */
export function defineStore<S extends Store>(store: S): S {
  for (const method of STORE_METHODS) {
    if (typeof (store as Partial<Store> | null)?.[method] !== 'function') {
      throw new TypeError(`crossbus: store must be a Store (indexedDbStore(), memoryStore() or defineStore()); it has no ${method}()`)
    }
  }
  if (typeof store.name !== 'string' || store.name.length === 0) throw new TypeError('crossbus: a Store needs a non-empty name')
  const engineStore = (Object.isExtensible(store) ? store : Object.create(store)) as S & EngineStore
  Object.defineProperty(engineStore, STORE_ENGINE, { value: durableEngine, enumerable: true, configurable: true })
  return engineStore
}
