/** What a subscription's drain says about its state afterwards. */
export type DrainState = typeof IDLE | typeof BUSY | typeof YIELD
/** Nothing queued, nothing running: forget me until something is queued. */
export const IDLE = 0
/** Waiting for async work; I schedule myself again when it settles. */
export const BUSY = 1
/** Out of time with events left: run me again in a later task. */
export const YIELD = 2

/** Something the dispatcher can run: a subscription with a queue. */
export interface Drainable {
  /** True while queued in the dispatcher (set and cleared by it). */
  scheduled: boolean
  drain(deadline: number): DrainState
}

/** Longest stretch of handler calls in one task before yielding to the page. */
export const SLICE_MS = 8

const clock: () => number = typeof performance === 'object' && typeof performance.now === 'function' ? () => performance.now() : () => Date.now()

/** Current time for slice deadlines. */
export const now: () => number = clock

type Task = () => void

/**
 * A macrotask that hidden tabs do not throttle: setImmediate in Node, a
 * MessageChannel message in browsers and workers (timers in a hidden tab run
 * at most once a second: https://developer.chrome.com/blog/timer-throttling-in-chrome-88),
 * setTimeout(0) elsewhere. Captured at load so fake timers in tests do not stall delivery.
 */
function createMacrotask(): (task: Task) => void {
  const immediate = (globalThis as { setImmediate?: (task: Task) => unknown }).setImmediate
  if (typeof immediate === 'function') return (task) => void immediate(task)
  if (typeof MessageChannel === 'function') {
    const tasks: Task[] = []
    let channel: MessageChannel | undefined
    return (task) => {
      if (channel === undefined) {
        channel = new MessageChannel()
        channel.port1.onmessage = () => tasks.shift()?.()
      }
      tasks.push(task)
      channel.port2.postMessage(null)
    }
  }
  const timeout = setTimeout
  return (task) => void timeout(task, 0)
}

export const macrotask: (task: Task) => void = createMacrotask()

/**
 * Runs the drains of ready subscriptions, round-robin, after the publishing
 * task: first in a microtask, then in time slices of SLICE_MS so a long burst
 * never freezes the page. Tracks outstanding async work so `close()` can wait
 * for the bus to go idle.
 */
export class Dispatcher {
  #ready: Drainable[] = []
  #next = 0
  #pending = false
  #busy = 0
  #idleWaiters: (() => void)[] = []

  schedule(item: Drainable): void {
    item.scheduled = true
    this.#ready.push(item)
    if (!this.#pending) {
      this.#pending = true
      queueMicrotask(this.#run)
    }
  }

  /** Counts async work that started (a handler promise, a processor attempt). */
  started(): void {
    this.#busy++
  }

  /** Counts async work that settled. */
  settled(): void {
    this.#busy--
    if (this.#busy === 0 && !this.#pending) this.#notifyIdle()
  }

  get idle(): boolean {
    return this.#busy === 0 && !this.#pending
  }

  /** Resolves once nothing is queued and no handler or attempt is running. */
  whenIdle(): Promise<void> {
    if (this.idle) return Promise.resolve()
    return new Promise((resolve) => this.#idleWaiters.push(resolve))
  }

  #run = (): void => {
    const deadline = clock() + SLICE_MS
    const ready = this.#ready
    while (this.#next < ready.length) {
      const item = ready[this.#next] as Drainable
      let state: DrainState
      try {
        state = item.drain(deadline)
      } catch (error) {
        // A drain never throws by design; if one does, it must not stop every other subscription.
        queueMicrotask(() => {
          throw error
        })
        state = IDLE
      }
      item.scheduled = state === YIELD
      this.#next++
      // Out of time, with events left: it goes to the back, so one busy subscription cannot starve the rest.
      if (state === YIELD) ready.push(item)
      if (this.#next < ready.length && clock() >= deadline) {
        ready.splice(0, this.#next)
        this.#next = 0
        macrotask(this.#run)
        return
      }
    }
    ready.length = 0
    this.#next = 0
    this.#pending = false
    if (this.#busy === 0) this.#notifyIdle()
  }

  #notifyIdle(): void {
    const waiters = this.#idleWaiters
    if (waiters.length === 0) return
    this.#idleWaiters = []
    for (const resolve of waiters) resolve()
  }
}
