/**
 * Checks of the options a caller passes (bus, subscriptions, links): each
 * returns the value or its default, or throws a TypeError that names the option.
 */
import { quote } from './errors.js'
import type { Overflow } from './queue.js'

/** An integer >= 1 (capacities, batch sizes, concurrency). */
export function positiveInteger(name: string, value: number | undefined, fallback: number): number {
  if (value === undefined) return fallback
  if (!Number.isInteger(value) || value < 1) throw new TypeError(`crossbus: ${name} must be an integer >= 1, got ${String(value)}`)
  return value
}

export function overflowPolicy(name: string, value: Overflow | undefined, fallback: Overflow): Overflow {
  if (value === undefined) return fallback
  if (value !== 'drop-newest' && value !== 'drop-oldest') {
    throw new TypeError(`crossbus: ${name} must be 'drop-newest' or 'drop-oldest', got ${String(value)}`)
  }
  return value
}

/** A duration in milliseconds, >= 0; undefined stays undefined. */
export function duration(name: string, value: number | undefined): number | undefined {
  if (value === undefined) return undefined
  if (typeof value !== 'number' || !(value >= 0)) throw new TypeError(`crossbus: ${name} must be a number >= 0, got ${String(value)}`)
  return value
}

export function callback(name: string, value: unknown): void {
  if (typeof value !== 'function') throw new TypeError(`crossbus: ${name} must be a function, got ${typeof value}`)
}

/** A frozen copy of string-valued headers; anything else is a TypeError (a peer would refuse the whole batch). */
export function headersOption(headers: Record<string, string>): Readonly<Record<string, string>> {
  if (headers === null || typeof headers !== 'object') throw new TypeError('crossbus: headers must be an object of strings')
  for (const key in headers) {
    if (typeof headers[key] !== 'string') throw new TypeError(`crossbus: header ${quote(key)} must be a string, got ${typeof headers[key]}`)
  }
  return Object.freeze({ ...headers })
}

/** Edit distance of two short strings (for "did you mean"). */
function distance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, index) => index)
  for (let i = 1; i <= a.length; i++) {
    const current = [i]
    for (let j = 1; j <= b.length; j++) {
      current[j] = Math.min((previous[j] as number) + 1, (current[j - 1] as number) + 1, (previous[j - 1] as number) + (a[i - 1] === b[j - 1] ? 0 : 1))
    }
    previous = current
  }
  return previous[b.length] as number
}

/**
 * Refuses an option this call does not know (`createBus({ nmae })`,
 * `{ transport: [] }`) with a TypeError that names it, the closest known one
 * and all of them. A misspelt option would otherwise be ignored in silence.
 */
export function knownOptions(what: string, options: object, known: readonly string[]): void {
  for (const key in options) {
    if (known.includes(key)) continue
    let closest: string | undefined
    let best = 3
    for (const candidate of known) {
      const apart = distance(key.toLowerCase(), candidate.toLowerCase())
      if (apart < best) {
        best = apart
        closest = candidate
      }
    }
    const hint = closest === undefined ? '' : ` (did you mean ${quote(closest)}?)`
    throw new TypeError(`crossbus: ${what} has no option ${quote(key)}${hint}; its options are ${known.join(', ')}`)
  }
}
