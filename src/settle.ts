import { CrossbusError } from './errors.js'
import { abortReason } from './retry.js'

/**
 * A promise that `start` settles, or that rejects with TIMEOUT, with the
 * signal's reason, or with CLOSED when `closeSignal` aborts; `start` returns
 * its clean-up, run once whichever way it ends (given the reason when it failed).
 */
export function settleable<T>(
  closeSignal: AbortSignal,
  signal: AbortSignal | undefined,
  timeout: number | undefined,
  timeoutMessage: string,
  start: (resolve: (value: T) => void, reject: (error: unknown) => void) => (failure?: { reason: unknown }) => void,
): Promise<T> {
  if (closeSignal.aborted) return Promise.reject(new CrossbusError('CLOSED', 'the bus is closed'))
  if (signal?.aborted) return Promise.reject(abortReason(signal))
  return new Promise<T>((resolve, reject) => {
    let settled: { failure?: { reason: unknown } } | undefined
    let cleanup = (_failure?: { reason: unknown }): void => {}
    const finish =
      <V>(settle: (value: V) => void, failed: boolean) =>
      (value: V): void => {
        if (settled !== undefined) return
        settled = failed ? { failure: { reason: value } } : {}
        clearTimeout(timer)
        signal?.removeEventListener('abort', onAbort)
        closeSignal.removeEventListener('abort', onClose)
        cleanup(settled.failure)
        settle(value)
      }
    const done = finish(resolve, false)
    const fail = finish(reject, true)
    const onAbort = (): void => fail(abortReason(signal as AbortSignal))
    const onClose = (): void => fail(new CrossbusError('CLOSED', 'the bus closed'))
    const timer = timeout === undefined ? undefined : setTimeout(() => fail(new CrossbusError('TIMEOUT', timeoutMessage)), timeout)
    signal?.addEventListener('abort', onAbort, { once: true })
    closeSignal.addEventListener('abort', onClose, { once: true })
    try {
      cleanup = start(done, fail)
    } catch (error) {
      fail(error)
    }
    if (settled !== undefined) cleanup(settled.failure)
  })
}
