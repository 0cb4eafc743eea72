import type { Diagnostic } from './types.js'

/** Places remembered by the default reporter before it starts over. */
const MAX_REMEMBERED = 1024

/** What a reporter needs to know of a report. */
interface Report {
  readonly type: string
  readonly message: string
  readonly error?: unknown
}

/**
 * A diagnostic sink, for the bus and for its bridges. With `onDiagnostic`
 * every report goes there (a throwing callback never reaches the caller).
 * Without it, `place` says where a report belongs, or undefined to keep it
 * quiet (or to print it each time through `always`); console.warn prints the
 * first report of each kind and place and stays quiet after that, while the
 * stats keep counting.
 */
export function reporter<D extends Report>(
  onDiagnostic: ((diagnostic: D) => void) | undefined,
  place: (diagnostic: D) => string | undefined,
  always?: (diagnostic: D) => boolean,
): (diagnostic: D) => void {
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
    if (always?.(diagnostic) === true) return
    const where = place(diagnostic)
    if (where === undefined) return
    const key = `${diagnostic.type}\u0000${where}`
    if (seen.has(key)) return
    if (seen.size >= MAX_REMEMBERED) seen.clear()
    seen.add(key)
    if (diagnostic.error === undefined) console.warn(diagnostic.message)
    else console.warn(diagnostic.message, diagnostic.error)
  }
}

/**
 * The bus's diagnostic sink (see reporter()). Without `onDiagnostic`, every
 * handler error goes to the platform's `reportError` where it exists (so
 * window.onerror, `error` listeners and error monitoring see it), to
 * console.error elsewhere; peers joining and leaving are not printed.
 */
export function createReporter(onDiagnostic?: (diagnostic: Diagnostic) => void): (diagnostic: Diagnostic) => void {
  return reporter(
    onDiagnostic,
    (diagnostic) =>
      diagnostic.type === 'peer-join' || diagnostic.type === 'peer-leave'
        ? undefined
        : (diagnostic.subscription ?? diagnostic.transport ?? diagnostic.topic ?? ''),
    (diagnostic) => {
      if (diagnostic.type !== 'handler-error') return false
      // The platform's own error reporting where it exists: window.onerror, `error` listeners and error monitoring see it.
      const { reportError } = globalThis as { reportError?: (error: unknown) => void }
      if (typeof reportError === 'function') reportError(diagnostic.error)
      else console.error(diagnostic.message, diagnostic.error)
      return true
    },
  )
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
