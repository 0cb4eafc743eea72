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

/** The error codes, to recognise a CrossbusError that crossed a link. */
const CODES: ReadonlySet<string> = new Set<ErrorCode>([
  'INVALID_TOPIC',
  'NOT_CLONEABLE',
  'PAYLOAD_TOO_LARGE',
  'CLOSED',
  'TIMEOUT',
  'ABORTED',
  'NO_RESPONDERS',
  'NO_STORE',
  'STORAGE_UNAVAILABLE',
  'QUOTA_EXCEEDED',
])

/** An Error as plain data that structured clone keeps whole (it keeps only name and message of an Error, and drops its own fields). */
export interface WireError {
  readonly name: string
  readonly message: string
  readonly stack?: string
  readonly cause?: unknown
  readonly fields: Record<string, unknown>
}

/** Own enumerable fields of an error (a `code`, a `field`) that can cross; a function or the like is left out. */
function ownFields(error: Error): Record<string, unknown> {
  const fields: Record<string, unknown> = {}
  for (const key of Object.keys(error)) {
    if (key === 'name' || key === 'message' || key === 'stack' || key === 'cause') continue
    const value: unknown = (error as unknown as Record<string, unknown>)[key]
    try {
      structuredClone(value)
      fields[key] = value
    } catch {
      // Not cloneable: it stays behind.
    }
  }
  return fields
}

/** A thrown Error as data for the wire, its cause too (to a depth of 8); any other thrown value is left as it is. */
export function errorToWire(error: unknown, depth = 0): unknown {
  if (!(error instanceof Error) || depth > 8) return error
  return {
    name: String(error.name),
    message: String(error.message),
    ...(typeof error.stack === 'string' ? { stack: error.stack } : {}),
    ...('cause' in error ? { cause: errorToWire(error.cause, depth + 1) } : {}),
    fields: ownFields(error),
  } satisfies WireError
}

const isWireError = (value: unknown): value is WireError =>
  typeof value === 'object' &&
  value !== null &&
  typeof (value as WireError).name === 'string' &&
  typeof (value as WireError).message === 'string' &&
  typeof (value as WireError).fields === 'object' &&
  (value as WireError).fields !== null

/** An Error again from errorToWire's data: its name, message, stack, cause and fields; a CrossbusError with a known code is one again. */
export function errorFromWire(wire: unknown, depth = 0): unknown {
  if (!isWireError(wire) || depth > 8) return wire
  const cause = 'cause' in wire ? { cause: errorFromWire(wire.cause, depth + 1) } : undefined
  const code = wire.fields.code
  const error =
    wire.name === 'CrossbusError' && typeof code === 'string' && CODES.has(code)
      ? new CrossbusError(code as ErrorCode, wire.message.replace(/^crossbus: /, ''), cause)
      : new Error(wire.message, cause)
  error.name = wire.name
  if (wire.stack !== undefined) error.stack = wire.stack
  for (const [key, value] of Object.entries(wire.fields))
    if (key !== 'code' || !(error instanceof CrossbusError)) (error as unknown as Record<string, unknown>)[key] = value
  return error
}
