// The live event log: newest line first (by the time each line was written,
// which may be a little earlier than it arrived), at most `limit` lines.
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
        {
          'data-time': String(entry.time),
          'data-level': entry.level,
          ...(entry.from === undefined ? {} : { 'data-from': entry.from, style: `--context: ${colorOf(entry.from)}` }),
        },
        h('time', {}, clockTime(entry.time)),
        h('span', { class: 'who' }, entry.who),
        h('span', { class: 'text' }, entry.text),
      )
      let after: Element | null = null
      for (let next = list.firstElementChild; next !== null && Number((next as HTMLElement).dataset.time) > entry.time; next = next.nextElementSibling) {
        after = next
      }
      if (after === null) list.prepend(item)
      else after.after(item)
      while (list.childElementCount > limit) list.lastElementChild?.remove()
    },
  }
}
