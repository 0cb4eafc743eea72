import { CrossbusError } from '../errors.js'

/** The error a store's caller can act on, with the platform's error as its cause. */
export function storageError(error: unknown): CrossbusError {
  if (error instanceof CrossbusError) return error
  const name = (error as { name?: unknown } | null)?.name
  const message = String((error as { message?: unknown } | null)?.message ?? error)
  if (name === 'QuotaExceededError') return new CrossbusError('QUOTA_EXCEEDED', 'the storage quota is exceeded', { cause: error })
  if (name === 'DataCloneError') return new CrossbusError('NOT_CLONEABLE', `an event's data cannot be stored: ${message}`, { cause: error })
  return new CrossbusError('STORAGE_UNAVAILABLE', `storage is unavailable: ${message}`, { cause: error })
}
