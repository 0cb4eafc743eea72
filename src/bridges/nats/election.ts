/**
 * One holder per origin: every context that runs the bridge asks for the
 * same Web Lock, the one that gets it holds the connection, the others wait
 * and one of them takes over when the holder's context dies (the browser
 * lets go of a dead context's locks) or closes the bridge.
 *
 * A shared worker outlives the tabs, so it takes the lock from a tab that
 * holds it (`steal`). Two locks keep the hand-over clean: `held` says who
 * should hold the connection (and can be stolen), `active` is held while a
 * connection exists, so the new holder dials only once the old one has shut
 * its connection and its outbox down.
 *
 * Where there are no Web Locks (Node 20, workerd) the locks span this
 * context only (see locks.ts): each process or isolate holds its own.
 */
import { holdLock, lockManager } from '../../locks.js'

export type Term = (signal: AbortSignal) => Promise<void>

interface StealingLocks {
  request(name: string, options: { signal?: AbortSignal; steal?: boolean }, callback: () => unknown): Promise<unknown>
}

/** True in a shared worker's global scope. */
function inSharedWorker(): boolean {
  const scope = globalThis as { SharedWorkerGlobalScope?: abstract new () => unknown }
  return typeof scope.SharedWorkerGlobalScope === 'function' && globalThis instanceof scope.SharedWorkerGlobalScope
}

/**
 * Calls `hold` each time this context becomes the holder, with a signal that
 * aborts when it must stop (stolen, or `signal` aborted); the lock is let go
 * once the promise `hold` returns settles. Runs until `signal` aborts.
 */
export async function elect(lock: string, signal: AbortSignal, hold: Term): Promise<void> {
  const locks = lockManager() as StealingLocks | undefined
  const active = `${lock}:active`
  let steal = locks !== undefined && inSharedWorker()
  while (!signal.aborted) {
    const term = new AbortController()
    const stop = (): void => term.abort()
    signal.addEventListener('abort', stop, { once: true })
    let holding: Promise<void> | undefined
    const held = async (): Promise<void> => {
      // The previous holder may still be shutting down: dial once it has. `active` is let go only once this
      // holder has shut down in turn, however its term ends.
      const release = new AbortController()
      let acquired = false
      term.signal.addEventListener('abort', () => acquired || release.abort(), { once: true })
      await holdLock(active, release.signal)
      acquired = true
      try {
        holding = hold(term.signal)
        await holding
      } finally {
        release.abort()
        term.abort()
      }
    }
    try {
      if (locks === undefined) {
        await holdLock(lock, term.signal)
        await held().catch(() => {})
      } else {
        await locks.request(lock, steal ? { steal: true } : { signal: term.signal }, () => held().catch(() => {}))
      }
    } catch {
      // Aborted while waiting, or stolen by a shared worker: stop holding (if holding), then wait in line again.
      term.abort()
      await holding?.catch(() => {})
    } finally {
      signal.removeEventListener('abort', stop)
    }
    steal = false
  }
}
