import { CrossbusError } from './errors.js'
import { knownOptions } from './options.js'

/** Retry policy of a processor. */
export interface RetryOptions {
  /** Attempts in all, the first included. Default 3. */
  attempts?: number | undefined
  /** Wait before the second attempt, in ms. Default 100. */
  initialDelay?: number | undefined
  /** Upper bound of any wait, in ms. Default 30 000. */
  maxDelay?: number | undefined
  /** Growth of the wait from one retry to the next. Default 2. */
  factor?: number | undefined
  /** Spread waits uniformly over [delay / 2, delay] so retries do not stampede. Default true. */
  jitter?: boolean | undefined
}

export interface ResolvedRetry {
  readonly attempts: number
  readonly initialDelay: number
  readonly maxDelay: number
  readonly factor: number
  readonly jitter: boolean
}

export const DEFAULT_RETRY: ResolvedRetry = Object.freeze({
  attempts: 3,
  initialDelay: 100,
  maxDelay: 30_000,
  factor: 2,
  jitter: true,
})

function nonNegative(name: string, value: number | undefined, fallback: number): number {
  if (value === undefined) return fallback
  if (typeof value !== 'number' || !(value >= 0) || !Number.isFinite(value)) {
    throw new TypeError(`crossbus: retry.${name} must be a finite number >= 0, got ${String(value)}`)
  }
  return value
}

/** A processor's retry policy with its defaults; a TypeError names a wrong field. `attempts: Infinity` retries until it succeeds (an outbox). */
export function resolveRetry(options: RetryOptions | undefined): ResolvedRetry {
  if (options !== undefined) {
    if (options === null || typeof options !== 'object') throw new TypeError('crossbus: retry must be an object')
    knownOptions('retry', options, ['attempts', 'initialDelay', 'maxDelay', 'factor', 'jitter'])
  }
  const attempts = options?.attempts ?? DEFAULT_RETRY.attempts
  if (typeof attempts !== 'number' || !(attempts === Number.POSITIVE_INFINITY || (Number.isInteger(attempts) && attempts >= 1))) {
    throw new TypeError(`crossbus: retry.attempts must be an integer >= 1, or Infinity, got ${String(attempts)}`)
  }
  const jitter = options?.jitter ?? DEFAULT_RETRY.jitter
  if (typeof jitter !== 'boolean') throw new TypeError(`crossbus: retry.jitter must be a boolean, got ${typeof jitter}`)
  return {
    attempts,
    initialDelay: nonNegative('initialDelay', options?.initialDelay, DEFAULT_RETRY.initialDelay),
    maxDelay: nonNegative('maxDelay', options?.maxDelay, DEFAULT_RETRY.maxDelay),
    factor: nonNegative('factor', options?.factor, DEFAULT_RETRY.factor),
    jitter,
  }
}

/**
 * The wait before attempt `failed + 1`, after `failed` failed attempts:
 * `initialDelay * factor^(failed - 1)`, capped at `maxDelay`, with jitter in
 * [delay / 2, delay].
 */
export function backoffDelay(policy: ResolvedRetry, failed: number, random: () => number = Math.random): number {
  const delay = Math.min(policy.maxDelay, policy.initialDelay * policy.factor ** Math.max(0, failed - 1))
  return policy.jitter ? delay / 2 + (delay / 2) * random() : delay
}

/** Resolves after `ms`, or rejects with the signal's reason as soon as it aborts. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(abortReason(signal))
    const onAbort = (): void => {
      clearTimeout(timer)
      reject(abortReason(signal as AbortSignal))
    }
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort)
      resolve()
    }, ms)
    signal?.addEventListener('abort', onAbort, { once: true })
  })
}

/** The reason a signal aborted, as a CrossbusError ABORTED unless it already is one. */
export function abortReason(signal: AbortSignal): unknown {
  return abortError(signal.reason)
}

/** An abort's reason as the error it fails with: a CrossbusError as is, anything else as the cause of an ABORTED one. */
export function abortError(reason: unknown): unknown {
  if (reason instanceof CrossbusError) return reason
  return new CrossbusError('ABORTED', 'the operation was aborted', { cause: reason })
}

/**
 * Resolves at once while the platform says it is online, or has no notion of
 * it (Node); while it says it is offline (`navigator.onLine === false`), on its
 * next `online` event. Rejects with the signal's reason as soon as it aborts.
 */
export function whenOnline(signal?: AbortSignal): Promise<void> {
  const scope = globalThis as {
    navigator?: { onLine?: unknown }
    addEventListener?: EventTarget['addEventListener']
    removeEventListener?: EventTarget['removeEventListener']
  }
  if (scope.navigator?.onLine !== false || typeof scope.addEventListener !== 'function') return Promise.resolve()
  if (signal?.aborted) return Promise.reject(abortReason(signal))
  return new Promise((resolve, reject) => {
    const online = (): void => {
      signal?.removeEventListener('abort', aborted)
      resolve()
    }
    const aborted = (): void => {
      scope.removeEventListener?.('online', online)
      reject(abortReason(signal as AbortSignal))
    }
    scope.addEventListener?.('online', online, { once: true })
    signal?.addEventListener('abort', aborted, { once: true })
  })
}
