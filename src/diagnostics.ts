import type { Diagnostic } from './types.js'

/** Places remembered by the default reporter before it starts over. */
const MAX_REMEMBERED = 1024

/**
 * The bus's diagnostic sink. With `onDiagnostic` every report goes there (a
 * throwing callback never reaches the publisher). Without it, every handler
 * error goes to the platform's `reportError` where it exists (so
 * window.onerror, `error` listeners and error monitoring see it), to
 * console.error elsewhere; of the other reports, console.warn prints the first
 * of each kind and place and stays quiet after that, while stats() keeps counting.
 */
export function createReporter(onDiagnostic?: (diagnostic: Diagnostic) => void): (diagnostic: Diagnostic) => void {
  if (onDiagnostic !== undefined) {
    return (diagnostic) => {
      try {
        onDiagnostic(diagnostic)
      } catch (error) {
        console.error('crossbus: onDiagnostic threw', error)
      }
    }
  }
  const seen = new Set<string>()
  return (diagnostic) => {
    if (diagnostic.type === 'peer-join' || diagnostic.type === 'peer-leave') return
    if (diagnostic.type === 'handler-error') {
      // The platform's own error reporting where it exists: window.onerror, `error` listeners and error monitoring see it.
      const { reportError } = globalThis as { reportError?: (error: unknown) => void }
      if (typeof reportError === 'function') reportError(diagnostic.error)
      else console.error(diagnostic.message, diagnostic.error)
      return
    }
    const place = diagnostic.subscription ?? diagnostic.transport ?? diagnostic.topic ?? ''
    const key = `${diagnostic.type}\u0000${place}`
    if (seen.has(key)) return
    if (seen.size >= MAX_REMEMBERED) seen.clear()
    seen.add(key)
    if (diagnostic.error === undefined) console.warn(diagnostic.message)
    else console.warn(diagnostic.message, diagnostic.error)
  }
}

/**
 * Drops of one place (a subscription, a link), counted at once and reported
 * once per task with their count: a burst that overflows costs one report.
 * Only the first drop of a report names its event.
 */
export class DropCounter {
  /** Drops since creation. */
  count = 0
  #unreported = 0
  readonly #report: (first: { readonly topic: string; readonly id: string }, count: number) => void

  constructor(report: (first: { readonly topic: string; readonly id: string }, count: number) => void) {
    this.#report = report
  }

  /** True when the next drop is the first of a report (so it needs its event id). */
  get reporting(): boolean {
    return this.#unreported === 0
  }

  record(topic: string, id: string): void {
    this.count++
    if (this.#unreported++ > 0) return
    const first = { topic, id }
    queueMicrotask(() => {
      const count = this.#unreported
      this.#unreported = 0
      this.#report(first, count)
    })
  }
}
