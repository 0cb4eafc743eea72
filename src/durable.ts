import { type DurableEngine, type DurableEngineFactory, type DurableHost, type EngineStore, STORE_ENGINE } from './engine.js'
import { DURABLE, Envelope } from './envelope.js'
import { CrossbusError, errorMessage, quote } from './errors.js'
import { holdLock } from './locks.js'
import { sleep } from './retry.js'
import { storageError } from './store/errors.js'
import type { DROPPED as DROPPED_VALUE, Offered, QUEUED as QUEUED_VALUE, Subscriber } from './subscriber.js'
import { MAX_TOPIC_LENGTH, matchTokens } from './topic.js'
import type { BusEvent, Store, StoredEvent } from './types.js'

/**
 * subscriber.ts's offer results, as literals checked against them: importing the values would bring
 * the whole subscriber module into the store entries.
 */
const QUEUED: typeof QUEUED_VALUE = 0
const DROPPED: typeof DROPPED_VALUE = 2

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
/** First wait before an event that was not acked (its dead letter not stored) is read again; doubles up to RETRY_MAX_MS. */
const REDELIVER_MS = 1000
/** Matching events read and not acked, at most, beyond twice the queue's capacity: an event that never gets acked holds back this many. */
const MAX_UNACKED = 4096
/** A plain event held behind a durable one of its source that never shows up in the store (its append failed) goes after this long. */
const HOLD_MS = 2000
/** Sources whose order a durable subscription keeps track of, at most (the least recently active are forgotten). */
const MAX_SOURCES = 1024

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

/** A concrete topic (topic.ts's rules, as one test: tokens without whitespace or wildcards, none empty). */
const TOPIC = /^[^\s.*>]+(?:\.[^\s.*>]+)*$/

/**
 * What is wrong with a record read from a store, or undefined when it is an
 * event. A log is shared with every context of the origin and whatever else
 * writes there (an older version, a bug): nothing in it is trusted.
 */
export function malformation(stored: unknown): string | undefined {
  if (stored === null || typeof stored !== 'object') return 'it is not an object'
  const { id, topic, source, seq, time, headers } = stored as Partial<StoredEvent>
  if (typeof id !== 'string') return 'its id is not a string'
  if (typeof topic !== 'string' || topic.length > MAX_TOPIC_LENGTH || !TOPIC.test(topic)) return 'its topic is not a topic'
  if (typeof source !== 'string') return 'its source is not a string'
  if (typeof seq !== 'number') return 'its seq is not a number'
  if (typeof time !== 'number') return 'its time is not a number'
  if (headers === null || typeof headers !== 'object' || Array.isArray(headers)) return 'its headers are not an object'
  for (const key of Object.keys(headers)) if (typeof (headers as Record<string, unknown>)[key] !== 'string') return `its header ${quote(key)} is not a string`
  return undefined
}

/**
 * The bus's side of a durable log: appends durable events in one transaction
 * per task (group commit: what is published while a write is under way goes
 * in the next one), feeds durable consumers, and compacts. Every store call it
 * makes is tracked, so that close() closes the store's connection only once
 * none is under way (a call after close would open it again).
 */
export class DurableLog implements DurableEngine {
  readonly store: Store
  readonly #host: DurableHost
  readonly #consumers = new Map<Subscriber, DurableConsumer>()
  /** Consumers that ended and are writing their last ack. */
  readonly #stopping = new Set<Promise<void>>()
  /** Batches not yet written, oldest first; the last one takes new events. */
  readonly #waiting: Batch[] = []
  /** Store calls under way. */
  readonly #calls = new Set<Promise<unknown>>()
  #writing: Promise<void> | undefined
  /** Seq of this context's last durable publish. */
  lastSeq = 0
  /** The highest position this context knows the log reached: its commits, peers' announcements, reads. */
  end = 0
  #compactTimer: ReturnType<typeof setTimeout> | undefined
  #closed = false

  constructor(host: DurableHost, store: Store) {
    this.#host = host
    this.store = store
    // Retained durable events outlive the page: loaded from the store once, at start.
    this.call(() => store.retained()).then(
      (events) => {
        if (this.#closed) return
        const valid = events.filter((stored) => malformation(stored) === undefined)
        if (valid.length < events.length) {
          host.count('rejected', events.length - valid.length)
          host.report({
            type: 'storage-error',
            count: events.length - valid.length,
            message: `crossbus: ${events.length - valid.length} malformed retained record(s) in the durable log were skipped. Skipped records are counted in stats().rejected.`,
          })
        }
        host.restoreRetained(valid.map((stored) => storedEvent(stored, false)))
      },
      (error: unknown) => {
        host.report({ type: 'storage-error', error, message: `crossbus: could not load retained events from the store: ${errorMessage(error)}` })
        host.restoreRetained([])
      },
    )
  }

  /** Runs one store call, tracked until it settles. */
  call<T>(run: () => Promise<T>): Promise<T> {
    let promise: Promise<T>
    try {
      promise = Promise.resolve(run())
    } catch (error) {
      promise = Promise.reject(error)
    }
    this.#calls.add(promise)
    const untrack = (): void => void this.#calls.delete(promise)
    promise.then(untrack, untrack)
    return promise
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
        const events = batch.events
        positions = await this.call(() => this.store.append(events))
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
        this.grew(last)
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
  grew(position?: unknown): void {
    if (typeof position === 'number' && Number.isSafeInteger(position) && position > this.end) this.end = position
    for (const consumer of this.#consumers.values()) consumer.wake()
  }

  live(subscriber: Subscriber, event: BusEvent, durable: boolean): Offered {
    const consumer = this.#consumers.get(subscriber)
    if (consumer !== undefined) return consumer.live(event, durable)
    return durable ? DROPPED : subscriber.offer(event)
  }

  /** Starts a durable subscription: it waits for its lock, then replays and follows. */
  consume(subscriber: Subscriber, name: string, activate: () => void): void {
    const consumer = new DurableConsumer(this, this.#host, subscriber, name, activate)
    this.#consumers.set(subscriber, consumer)
    subscriber.onEnd(() => {
      this.#consumers.delete(subscriber)
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
      this.call(() => this.store.compact()).then(
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
    for (const consumer of this.#consumers.values()) consumer.hold()
  }

  /** Waits for appends, every consumer's last ack and every store call under way; then closes the store's connection. */
  async close(): Promise<void> {
    this.#closed = true
    clearTimeout(this.#compactTimer)
    await Promise.all([this.flush(), ...this.#stopping, ...[...this.#consumers.values()].map((consumer) => consumer.stop())])
    while (this.#calls.size > 0) await Promise.allSettled([...this.#calls])
    this.#compactTimer = undefined
    this.store.close()
  }
}

/** What a durable subscription knows of one source's order: see SourceOrder. */
interface SourceState {
  /** Highest seq of a durable event of this source that the subscription was told of (published or received). */
  announced: number
  /** Highest seq of this source read from the store into the queue. */
  read: number
  /** Plain events held, each until `read` reaches the durable event published before it. */
  readonly held: { readonly event: BusEvent; readonly after: number; readonly since: number }[]
}

/**
 * FIFO per source between the two ways events reach a durable subscription:
 * durable ones from the store (in position order, once committed) and plain
 * ones live (at once). A plain event published after a durable event of its
 * source that the subscription has been told of but not read yet waits for
 * it. Bounded: at most `limit` events held (beyond it the source's order is
 * given up, nothing is lost), MAX_SOURCES sources, and a held event goes after
 * HOLD_MS when the durable one before it never shows up (its append failed).
 */
class SourceOrder {
  readonly #sources = new Map<string, SourceState>()
  readonly #limit: number
  readonly #release: (event: BusEvent) => void
  #held = 0

  constructor(limit: number, release: (event: BusEvent) => void) {
    this.#limit = limit
    this.#release = release
  }

  get held(): number {
    return this.#held
  }

  /** A durable event was published: it comes from the store. */
  announced(event: BusEvent): void {
    const state = this.#state(event.source)
    if (event.seq > state.announced) state.announced = event.seq
  }

  /** A plain event: true when it waits behind a durable one (released later, in order). */
  hold(event: BusEvent, now: number): boolean {
    const state = this.#sources.get(event.source)
    if (state === undefined || (state.announced <= state.read && state.held.length === 0)) return false
    state.held.push({ event, after: state.announced, since: now })
    if (++this.#held > this.#limit) this.#giveUp(state)
    return true
  }

  /**
   * A stored event of `source` entered the queue: plain events that waited for it follow it. Kept
   * even for a source not heard of yet: its live copy may come after this read (by another path).
   */
  read(source: string, seq: number): void {
    const state = this.#state(source)
    if (seq > state.read) state.read = seq
    this.#releaseReady(state)
  }

  /** Held events whose durable predecessor never showed up go now (the subscription has read all there is). */
  expire(now: number): void {
    for (const state of this.#sources.values()) {
      const first = state.held[0]
      if (first !== undefined && now - first.since >= HOLD_MS) this.#giveUp(state)
    }
  }

  /** Releases every held event, in order (the log was replaced). */
  releaseAll(): void {
    for (const state of this.#sources.values()) this.#giveUp(state)
    this.#sources.clear()
  }

  /** Forgets everything held (the subscription ended: like its queue, discarded). */
  clear(): void {
    this.#sources.clear()
    this.#held = 0
  }

  #state(source: string): SourceState {
    let state = this.#sources.get(source)
    if (state !== undefined) {
      // Most recently active last, so the least recently active go first.
      this.#sources.delete(source)
      this.#sources.set(source, state)
      return state
    }
    if (this.#sources.size >= MAX_SOURCES) {
      for (const [key, old] of this.#sources) {
        if (old.held.length > 0) this.#giveUp(old)
        this.#sources.delete(key)
        break
      }
    }
    state = { announced: 0, read: 0, held: [] }
    this.#sources.set(source, state)
    return state
  }

  /** Stops waiting for this source's durable events: what it held goes, in order. */
  #giveUp(state: SourceState): void {
    const last = state.held[state.held.length - 1]
    if (last !== undefined && last.after > state.read) state.read = last.after
    if (state.announced > state.read) state.read = state.announced
    this.#releaseReady(state)
  }

  #releaseReady(state: SourceState): void {
    const held = state.held
    let count = 0
    while (count < held.length && (held[count] as SourceState['held'][number]).after <= state.read) count++
    if (count === 0) return
    const ready = held.splice(0, count)
    this.#held -= count
    for (const { event } of ready) this.#release(event)
  }
}

/**
 * One durable subscription's cursor in the log. Holds the consumer's lock,
 * reads stored events after its cursor into the subscription's queue as room
 * allows (so a full queue loses nothing: the rest waits in the store), and
 * acks the low-water mark of what the subscription has handled, one ack
 * write at a time. An event handled but not acked (its dead letter was not
 * stored) is read again later; a malformed record is skipped and reported; a
 * log replaced under it (positions going back, another generation) is
 * reported and read again from its start.
 */
class DurableConsumer {
  readonly #log: DurableLog
  readonly #host: DurableHost
  readonly #subscriber: Subscriber
  readonly #name: string
  /** Routes the subscription once this instance is live. */
  readonly #activate: () => void
  readonly #stop = new AbortController()
  /** Position of each event this consumer put in the queue (replaced with the log). */
  #positions = new WeakMap<BusEvent, number>()
  /** Positions read and queued, in order, until handled from the front. */
  #pending: number[] = []
  #pendingHead = 0
  readonly #handled = new Set<number>()
  /** Queued events that overflow evicted (drop-oldest), and events not acked: read again before anything new. */
  readonly #refetch: number[] = []
  /** Positions handled without an ack (a dead letter not stored), and how many times: they come again. */
  readonly #redeliver = new Map<number, number>()
  readonly #redeliverTimers = new Set<ReturnType<typeof setTimeout>>()
  /** Outcomes of handled events not known yet (a dead letter being stored): the last ack waits for them. */
  readonly #settling = new Set<Promise<unknown>>()
  readonly #order: SourceOrder
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
  /** The generation of the log this consumer reads (stores that can be replaced say which). */
  #generation: string | undefined
  /** When this instance went live, and the seq of this context's last durable publish then: what came before is redelivered. */
  #startedAt = 0
  #lastSeqAtStart = 0
  #poll: ReturnType<typeof setTimeout> | undefined
  #failures = 0
  #stopping = false
  /** The subscription ended and its grace is over: a handler that finishes now is too late to ack. */
  #ended = false
  /** The bus is closing: no more reads. */
  #holding = false
  #stopped: Promise<void> | undefined

  constructor(log: DurableLog, host: DurableHost, subscriber: Subscriber, name: string, activate: () => void) {
    this.#log = log
    this.#host = host
    this.#subscriber = subscriber
    this.#name = name
    this.#activate = activate
    this.#order = new SourceOrder(subscriber.queue.capacity, (event) => subscriber.offer(event))
  }

  start(): void {
    const store = this.#log.store
    const signal = this.#stop.signal
    const lock = `crossbus:${this.#host.name}:durable:${store.name}:${this.#name}`
    holdLock(lock, signal)
      .then(() => (this.#stopping ? undefined : this.#retrying(() => store.register(this.#name, this.#subscriber.pattern))))
      .then((state) => {
        // Ended while registering: it never goes live (close() may be done with the store by now).
        if (signal.aborted || this.#stopping || state === undefined) return
        this.#read = this.#acked = this.#ackTarget = state.cursor
        this.#startedAt = Date.now()
        this.#lastSeqAtStart = this.#log.lastSeq
        this.#live = true
        this.#subscriber.afterHandled = (event, outcome) => this.#onHandled(event, outcome)
        this.#subscriber.reclaim = (event) => this.#reclaim(event)
        this.#subscriber.backlog = () => this.#backlog()
        this.#activate()
        void this.#pump()
      })
      .catch(() => {
        // Stopped while waiting for the lock.
      })
  }

  /**
   * Reads nothing more from the log (the bus is closing); acks go on. Plain events held behind durable
   * ones go to the queue now, to be delivered with the rest of it: those durable ones will not be read.
   */
  hold(): void {
    this.#holding = true
    clearTimeout(this.#poll)
    this.#order.releaseAll()
  }

  /** The log may have grown. */
  wake(): void {
    this.#dirty = true
    this.#caughtUp = false
    if (this.#live) void this.#pump()
  }

  /** A live event routed to this subscription (see DurableEngine.live). */
  live(event: BusEvent, durable: boolean): Offered {
    if (!this.#live) return durable ? DROPPED : this.#subscriber.offer(event)
    if (durable) {
      this.#order.announced(event)
      return DROPPED
    }
    return this.#order.hold(event, Date.now()) ? QUEUED : this.#subscriber.offer(event)
  }

  /**
   * Ends this instance: what its handlers already finished is acked (a success that settled just
   * before the end included), the outcomes under way are awaited, the last ack is written, then the
   * lock goes to the next instance.
   */
  stop(): Promise<void> {
    if (this.#stopped !== undefined) return this.#stopped
    this.#live = false
    this.#stopping = true
    clearTimeout(this.#poll)
    for (const timer of this.#redeliverTimers) clearTimeout(timer)
    this.#redeliverTimers.clear()
    this.#order.clear()
    this.#stopped = (async () => {
      // A processor's success that settled before the subscription ended is counted in a reaction already queued: it runs first.
      await undefined
      this.#ended = true
      while (this.#settling.size > 0) await Promise.allSettled([...this.#settling])
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
        const result = await this.#log.call(call)
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
          if (found === undefined || !this.#live) return
          const stored = found[0]
          if (stored?.position !== refetch || malformation(stored) !== undefined)
            this.#onPosition(refetch) // gone from the log meanwhile (evicted, reported there; or replaced, found below)
          else if (!this.#offer(stored)) {
            // Live events took the room meanwhile: later.
            this.#refetch.unshift(refetch)
            return
          }
          continue
        }
        // An event that is never acked holds the cursor back: read no further than this past it.
        if (this.#pending.length - this.#pendingHead >= Math.max(MAX_UNACKED, 2 * queue.capacity)) return
        this.#dirty = false
        const after = this.#read
        const limit = Math.min(room, READ_LIMIT)
        const events = await this.#retrying(() => this.#log.store.read(after, limit))
        if (events === undefined || !this.#live) return
        const replaced = this.#replacement(events, after)
        if (replaced !== undefined) {
          await this.#restart(replaced)
          continue
        }
        let full = false
        let skipped = 0
        for (const stored of events) {
          const problem = malformation(stored)
          if (problem !== undefined) {
            skipped++
            this.#skip(stored, problem)
            continue
          }
          if (!matchTokens(subscriber.tokens, stored.topic.split('.'))) {
            this.#read = stored.position
            continue
          }
          if (!this.#offer(stored)) {
            full = true
            break
          }
        }
        if (this.#read > this.#log.end) this.#log.end = this.#read
        if (skipped > 0) this.#host.count('rejected', skipped)
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
      if (this.#live && !this.#holding && this.#caughtUp) {
        this.#order.expire(Date.now())
        this.#poll = setTimeout(() => this.wake(), POLL_MS)
      }
    }
  }

  /** Why a read shows the log was replaced under this consumer, or undefined when it was not. */
  #replacement(events: readonly StoredEvent[], after: number): string | undefined {
    for (const stored of events) {
      const position = (stored as Partial<StoredEvent> | null)?.position
      if (typeof position === 'number' && position <= after) return `positions went back: ${position} after ${after}`
      const generation = (stored as Partial<StoredEvent> | null)?.generation
      if (generation === undefined) continue
      if (this.#generation === undefined) this.#generation = generation
      else if (generation !== this.#generation) return 'it is another generation of the database'
    }
    return undefined
  }

  /**
   * The log was deleted and created again (another tab, "clear site data"): this consumer's positions
   * mean nothing in it. Reported; then it registers again and reads the new log from its cursor there.
   * What the old log held and was not handled is gone with it.
   */
  async #restart(reason: string): Promise<void> {
    const error = new CrossbusError('STORAGE_UNAVAILABLE', `the durable log was deleted or replaced while in use (${reason})`)
    this.#host.report({
      type: 'storage-error',
      subscription: this.#subscriber.pattern,
      error,
      message: `crossbus: durable consumer ${quote(this.#name)}: ${inner(error)}. It reads the new log from its start; stored events it had not handled were lost with the old one.`,
    })
    // Acks of the old log must not land in the new one: the one under way finishes before the consumer registers there.
    this.#ackTarget = this.#acked
    while (this.#acking !== undefined) await this.#acking
    this.#positions = new WeakMap()
    this.#pending = []
    this.#pendingHead = 0
    this.#handled.clear()
    this.#refetch.length = 0
    this.#redeliver.clear()
    for (const timer of this.#redeliverTimers) clearTimeout(timer)
    this.#redeliverTimers.clear()
    this.#order.releaseAll()
    this.#generation = undefined
    // Positions known from the old log say nothing of the new one's end (reads raise it again).
    this.#log.end = 0
    const state = await this.#retrying(() => this.#log.store.register(this.#name, this.#subscriber.pattern))
    if (state === undefined || !this.#live) return
    this.#read = this.#acked = this.#ackTarget = state.cursor
  }

  /** A malformed record: reported, and passed over (the cursor moves past it once what came before is handled). */
  #skip(stored: unknown, problem: string): void {
    const position = (stored as Partial<StoredEvent> | null)?.position
    const at = typeof position === 'number' ? position : undefined
    if (at !== undefined && at > this.#read) this.#read = at
    const error = new CrossbusError('STORAGE_UNAVAILABLE', `a malformed record at position ${at ?? '(none)'} of the durable log: ${problem}`)
    this.#host.report({
      type: 'storage-error',
      subscription: this.#subscriber.pattern,
      count: 1,
      error,
      message: `crossbus: durable consumer ${quote(this.#name)} skipped ${inner(error)}. Skipped records are counted in stats().rejected.`,
    })
  }

  /** Puts one stored event in the queue; false when there is no room (it stays in the store). */
  #offer(stored: StoredEvent): boolean {
    // Published before this instance went live: this context's own events by seq, others' by time (the same
    // millisecond counts as before: a replay flagged redelivered is safe, a replay that is not could mislead).
    const before =
      this.#redeliver.has(stored.position) || (stored.source === this.#host.id ? stored.seq <= this.#lastSeqAtStart : stored.time <= this.#startedAt)
    const event = storedEvent(stored, before)
    if (!this.#subscriber.accept(event)) return false
    this.#positions.set(event, stored.position)
    if (stored.position > this.#read) {
      this.#read = stored.position
      this.#pending.push(stored.position)
    }
    // Plain events of its source published after it follow it.
    this.#order.read(stored.source, stored.seq)
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

  /**
   * The subscription handled an event: acked now, or once `outcome` resolves (a dead letter stored);
   * when `outcome` rejects, not acked: the event comes again.
   */
  #onHandled(event: BusEvent, outcome?: Promise<unknown>): void {
    if (this.#ended) return
    const position = this.#positions.get(event)
    if (position !== undefined) {
      if (outcome === undefined) this.#onPosition(position)
      else {
        const positions = this.#positions
        const settled = outcome.then(
          () => positions === this.#positions && this.#onPosition(position),
          () => positions === this.#positions && this.#comeAgain(position),
        )
        this.#settling.add(settled)
        void settled.finally(() => this.#settling.delete(settled))
      }
    }
    // Room again: read on unless caught up (a wake-up reads then).
    const queue = this.#subscriber.queue
    if (!this.#caughtUp && !this.#reading && queue.size * 2 <= queue.capacity) void this.#pump()
  }

  /** Not acked: read again after a wait that doubles each time (the storage may need it to recover). */
  #comeAgain(position: number): void {
    if (!this.#live) return
    const times = (this.#redeliver.get(position) ?? 0) + 1
    this.#redeliver.set(position, times)
    const timer = setTimeout(
      () => {
        this.#redeliverTimers.delete(timer)
        if (!this.#live || !this.#redeliver.has(position)) return
        this.#refetch.push(position)
        this.#refetch.sort((a, b) => a - b)
        // As a wake-up: a read under way goes on to it rather than calling itself caught up.
        this.wake()
      },
      Math.min(RETRY_MAX_MS, REDELIVER_MS * 2 ** (times - 1)),
    )
    this.#redeliverTimers.add(timer)
  }

  /** One position is handled: the cursor moves over every handled position at the front. */
  #onPosition(position: number): void {
    this.#redeliver.delete(position)
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

  /** Stored matching events not acked: those read and not acked, and every position past the read one that the log is known to have reached. */
  #backlog(): number {
    return this.#pending.length - this.#pendingHead - this.#handled.size + Math.max(0, this.#log.end - this.#read)
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
        if (target > this.#acked) this.#acked = target
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
