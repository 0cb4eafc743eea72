// The live event log: newest line first, at most `limit` lines.
import { clockTime, colorOf, h } from './dom.ts'

export interface LogEntry {
  readonly time: number
  /** The context the line is about (its colour), or undefined for this page's own notes. */
  readonly from?: string
  /** Who, as shown: 'shared worker 1x2y3z4w'. */
  readonly who: string
  readonly text: string
  readonly level: 'info' | 'warn'
}

export interface EventLog {
  add(entry: LogEntry): void
}

/**
 * @example
 * const log = createLog(document.querySelector('ol#log'), 200)
 * log.add({ time: Date.now(), who: 'this tab', text: 'published 1,000 events', level: 'info' })
 */
export function createLog(list: HTMLOListElement, limit: number): EventLog {
  return {
    add(entry) {
      const item = h(
        'li',
        { 'data-level': entry.level, ...(entry.from === undefined ? {} : { 'data-from': entry.from, style: `--context: ${colorOf(entry.from)}` }) },
        h('time', {}, clockTime(entry.time)),
        h('span', { class: 'who' }, entry.who),
        h('span', { class: 'text' }, entry.text),
      )
      list.prepend(item)
      while (list.childElementCount > limit) list.lastElementChild?.remove()
    },
  }
}
