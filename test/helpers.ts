import { createBus } from '../src/bus.js'
import { CrossbusError } from '../src/errors.js'
import type { Bus, BusEvent, BusOptions, Diagnostic } from '../src/types.js'

/** A promise with its resolve exposed. */
export function deferred<T = void>(): { promise: Promise<T>; resolve: (value: T) => void; reject: (error: unknown) => void } {
  let resolve!: (value: T) => void
  let reject!: (error: unknown) => void
  const promise = new Promise<T>((res, rej) => {
    resolve = res
    reject = rej
  })
  return { promise, resolve, reject }
}

/** A handler that records events and resolves `until(n)` once n have arrived. */
export function recorder<T = unknown>(): {
  events: BusEvent<T>[]
  handler: (event: BusEvent<T>) => void
  until: (count: number) => Promise<BusEvent<T>[]>
} {
  const events: BusEvent<T>[] = []
  const waiters: { count: number; resolve: (events: BusEvent<T>[]) => void }[] = []
  return {
    events,
    handler(event) {
      events.push(event)
      for (const waiter of [...waiters]) {
        if (events.length >= waiter.count) {
          waiters.splice(waiters.indexOf(waiter), 1)
          waiter.resolve(events)
        }
      }
    },
    until(count) {
      if (events.length >= count) return Promise.resolve(events)
      return new Promise((resolve) => waiters.push({ count, resolve }))
    },
  }
}

/** Collects diagnostics instead of printing them. */
export function diagnostics(): { list: Diagnostic[]; onDiagnostic: (diagnostic: Diagnostic) => void; of: (type: Diagnostic['type']) => Diagnostic[] } {
  const list: Diagnostic[] = []
  return {
    list,
    onDiagnostic: (diagnostic) => list.push(diagnostic),
    of: (type) => list.filter((diagnostic) => diagnostic.type === type),
  }
}

/** Lets every queued microtask run (the bus delivers in a microtask after the publishing task). */
export async function microtasks(rounds = 10): Promise<void> {
  for (let round = 0; round < rounds; round++) await Promise.resolve()
}

/** A bus with no links: unit tests of the core must not hear buses of other test files (BroadcastChannel crosses worker_threads). */
export function localBus(options: BusOptions = {}): Bus {
  return createBus({ transports: [], ...options })
}

/** The CrossbusError code `run` throws synchronously, undefined when it does not throw. */
export function codeOf(run: () => unknown): string | undefined {
  try {
    run()
  } catch (error) {
    return error instanceof CrossbusError ? error.code : `not a CrossbusError: ${String(error)}`
  }
  return undefined
}
