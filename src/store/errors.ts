import { CrossbusError, errorMessage } from '../errors.js'

/**
 * Any failure of a store as the error its caller can act on, the original kept
 * as `cause`: QUOTA_EXCEEDED, NOT_CLONEABLE, or STORAGE_UNAVAILABLE (a store
 * may throw anything; a CrossbusError passes as it is).
 */
export function storageError(error: unknown): CrossbusError {
  if (error instanceof CrossbusError) return error
  const name = (error as { name?: unknown } | null)?.name
  if (name === 'QuotaExceededError') return new CrossbusError('QUOTA_EXCEEDED', 'the storage quota is exceeded', { cause: error })
  if (name === 'DataCloneError') return new CrossbusError('NOT_CLONEABLE', `an event's data cannot be stored: ${errorMessage(error)}`, { cause: error })
  return new CrossbusError('STORAGE_UNAVAILABLE', `the store failed: ${errorMessage(error)}`, { cause: error })
}
