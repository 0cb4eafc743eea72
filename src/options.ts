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
