export interface LockManagerLike {
  request(name: string, options: { signal?: AbortSignal }, callback: () => unknown): Promise<unknown>
  query(): Promise<{ held?: { name?: string }[]; pending?: { name?: string }[] }>
}

/** Web Locks, where the platform has them (browsers; not Node 20, not workerd). */
export function lockManager(): LockManagerLike | undefined {
  const locks = (globalThis as { navigator?: { locks?: LockManagerLike } }).navigator?.locks
  return typeof locks?.request === 'function' ? locks : undefined
}

/** Where there are no Web Locks: waiters per lock name, in this context only. */
const localWaiters = new Map<string, (() => void)[]>()

/**
 * Takes an exclusive lock and holds it until `release` aborts. Resolves once
 * it is held; rejects if `release` aborts first. Web Locks span an origin's
 * tabs and workers and are let go when the holder's context dies; without
 * them the lock spans this context only.
 */
export function holdLock(name: string, release: AbortSignal): Promise<void> {
  const locks = lockManager()
  if (locks !== undefined) {
    return new Promise<void>((held, failed) => {
      locks
        .request(name, { signal: release }, () => {
          held()
          return new Promise<void>((done) => {
            if (release.aborted) done()
            else release.addEventListener('abort', () => done(), { once: true })
          })
        })
        .catch(failed)
    })
  }
  return new Promise<void>((held, failed) => {
    if (release.aborted) return failed(release.reason)
    let waiters = localWaiters.get(name)
    const take = (): void => {
      held()
      const letGo = (): void => {
        const next = (localWaiters.get(name) as (() => void)[]).shift()
        if (next !== undefined) next()
        else localWaiters.delete(name)
      }
      if (release.aborted) letGo()
      else release.addEventListener('abort', letGo, { once: true })
    }
    if (waiters === undefined) {
      localWaiters.set(name, (waiters = []))
      take()
      return
    }
    const waiting = waiters
    waiting.push(take)
    release.addEventListener(
      'abort',
      () => {
        const index = waiting.indexOf(take)
        if (index >= 0) {
          waiting.splice(index, 1)
          failed(release.reason)
        }
      },
      { once: true },
    )
  })
}
