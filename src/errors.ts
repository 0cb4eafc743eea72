/**
 * Every error crossbus raises for something a caller can handle carries one of
 * these codes. Wrong argument types are plain `TypeError`s.
 */
export type ErrorCode =
  | 'INVALID_TOPIC'
  | 'NOT_CLONEABLE'
  | 'PAYLOAD_TOO_LARGE'
  | 'CLOSED'
  | 'TIMEOUT'
  | 'ABORTED'
  | 'NO_RESPONDERS'
  | 'NO_STORE'
  | 'STORAGE_UNAVAILABLE'
  | 'QUOTA_EXCEEDED'

/**
 * The error crossbus throws or rejects with. Switch on `code`, not on the message.
 *
 * @example
 * try { bus.publish('orders.*', {}) }
 * catch (error) { if (error instanceof CrossbusError && error.code === 'INVALID_TOPIC') … }
 */
export class CrossbusError extends Error {
  readonly code: ErrorCode

  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(`crossbus: ${message}`, options)
    this.name = 'CrossbusError'
    this.code = code
  }
}

/** True when `error` is a CrossbusError, with that code when one is given. */
export function isCrossbusError(error: unknown, code?: ErrorCode): error is CrossbusError {
  return error instanceof CrossbusError && (code === undefined || error.code === code)
}

/** A message for any thrown value, even one String() cannot convert (a null-prototype object). */
export function errorMessage(error: unknown): string {
  try {
    return error instanceof Error ? String(error.message) : String(error)
  } catch {
    return Object.prototype.toString.call(error)
  }
}

/** A value quoted for an error message. */
export const quote = (value: unknown): string => JSON.stringify(value)
