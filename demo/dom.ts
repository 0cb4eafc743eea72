// Small DOM helpers of the demo page.

/** The element with this id, of this type; throws when the page lacks it. */
export function byId<T extends HTMLElement>(id: string, type: new () => T): T {
  const found = document.getElementById(id)
  if (!(found instanceof type)) throw new Error(`demo: #${id} is missing or is not a ${type.name}`)
  return found
}

type Child = Node | string

/** Creates an element with attributes and children: h('td', { 'data-field': 'queued' }, '0'). */
export function h<K extends keyof HTMLElementTagNameMap>(tag: K, attributes: Record<string, string> = {}, ...children: Child[]): HTMLElementTagNameMap[K] {
  const node = document.createElement(tag)
  for (const [name, value] of Object.entries(attributes)) node.setAttribute(name, value)
  node.append(...children)
  return node
}

/** Sets text only when it changed, so an unchanged number costs no layout. */
export function setText(node: Element, text: string): void {
  if (node.textContent !== text) node.textContent = text
}

const grouping = new Intl.NumberFormat('en-US')
/** 12,345: how every count is shown. */
export const formatCount = (value: number): string => grouping.format(value)

/** A stable colour per context id, shared by its card, its chart lines and its log lines. */
export function colorOf(id: string): string {
  let hash = 0
  for (let index = 0; index < id.length; index++) hash = (hash * 31 + id.charCodeAt(index)) >>> 0
  return `hsl(${hash % 360} 65% 45%)`
}

/** hh:mm:ss.mmm of a Date.now() value. */
export function clockTime(time: number): string {
  const date = new Date(time)
  const pad = (value: number, width = 2): string => String(value).padStart(width, '0')
  return `${pad(date.getHours())}:${pad(date.getMinutes())}:${pad(date.getSeconds())}.${pad(date.getMilliseconds(), 3)}`
}

/** The message of anything thrown, with a CrossbusError's code in front. */
export function describeError(error: unknown): string {
  if (error instanceof Error) {
    const code = (error as { code?: unknown }).code
    return typeof code === 'string' ? `${code}: ${error.message}` : error.message
  }
  return String(error)
}

/**
 * Opens `url` in a new tab without an opener: in Chromium a tab opened with
 * one shares this tab's event loop, so freezing one would freeze both. (A tab
 * with one history entry may still close itself.)
 */
export function openTab(url: URL): void {
  window.open(url, '_blank', 'noopener')
}
