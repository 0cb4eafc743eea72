// The durable panel (DESIGN.md, semantic 6): publish durable events, consume
// them with a named durable consumer that works slowly, close its tab, open
// one again and watch the events it had not acknowledged come back with
// `redelivered`. One tab at a time is the live consumer (Web Locks): a second
// one shows that it waits its turn. A storage failure shows its error in the
// panel, and the rest of the demo carries on.
import type { Bus, BusEvent, Receipt, Subscription } from '../src/index.ts'
import { byId, describeError, formatCount, h, openTab } from './dom.ts'
import { DURABLE_CONSUMER, DURABLE_EVENT_MS, DURABLE_PATTERN, DURABLE_TOPIC, type DurableOrder } from './protocol.ts'

/** The query parameter of a tab opened to consume durably from the start. */
export const DURABLE_PARAMETER = 'durable'

/** Consumed events listed at most. */
const LISTED = 50
/** Numbers durable events across the origin's tabs, so a replay shows which ones come back. */
const SEQUENCE_KEY = 'crossbus-demo.durable-sequence'

export interface DurablePanel {
  /** Starts the durable consumer in this tab. */
  consume(): void
  /** Stops it: what it has not acknowledged stays in the store. */
  stop(): void
}

function nextNumbers(count: number): number {
  try {
    const first = Number(localStorage.getItem(SEQUENCE_KEY) ?? '0') + 1
    localStorage.setItem(SEQUENCE_KEY, String(first + count - 1))
    return first
  } catch {
    return 1
  }
}

const asOrder = (data: unknown): DurableOrder | undefined =>
  typeof data === 'object' && data !== null && typeof (data as DurableOrder).n === 'number' ? (data as DurableOrder) : undefined

/**
 * Wires the panel's controls (ids durable-*) to `bus`; `log` gets a line for each step.
 *
 * @example
 * const panel = createDurablePanel(bus, (text, level) => log.add(...))
 */
export function createDurablePanel(bus: Bus, log: (text: string, level?: 'info' | 'warn') => void): DurablePanel {
  const count = byId('durable-count', HTMLInputElement)
  const publishButton = byId('durable-publish', HTMLButtonElement)
  const consumeBox = byId('durable-consume', HTMLInputElement)
  const openButton = byId('durable-open', HTMLButtonElement)
  const status = byId('durable-status', HTMLElement)
  const consumedField = byId('durable-consumed', HTMLElement)
  const redeliveredField = byId('durable-redelivered', HTMLElement)
  const list = byId('durable-events', HTMLOListElement)

  let subscription: Subscription | undefined
  let consumed = 0
  let redelivered = 0
  /** Shows whether this tab's consumer is the live one or waits for another tab's. */
  let watch: ReturnType<typeof setInterval> | undefined
  let standby: boolean | undefined

  const show = (text: string, failed = false): void => {
    status.textContent = text
    status.dataset.state = failed ? 'error' : 'ok'
  }

  async function publish(): Promise<void> {
    const n = Math.max(1, Math.min(1000, Math.floor(count.valueAsNumber) || 1))
    const first = nextNumbers(n)
    const receipts: Receipt[] = []
    try {
      for (let index = 0; index < n; index++) {
        const order: DurableOrder = { n: first + index, at: Date.now() }
        receipts.push(bus.publish(DURABLE_TOPIC, order, { durable: true }))
      }
    } catch (error) {
      show(`Durable publish failed: ${describeError(error)}`, true)
      log(`durable publish failed: ${describeError(error)}`, 'warn')
      return
    }
    show(`Published ${formatCount(n)} durable events (#${first}–#${first + n - 1}); waiting for IndexedDB to commit them…`)
    try {
      await Promise.all(receipts.map((receipt) => receipt.persisted))
      show(`${formatCount(n)} durable events (#${first}–#${first + n - 1}) committed to IndexedDB.`)
      log(`${formatCount(n)} durable events committed (#${first}–#${first + n - 1})`)
    } catch (error) {
      show(`Not persisted: ${describeError(error)}`, true)
      log(`durable events not persisted: ${describeError(error)}`, 'warn')
    }
  }

  function handle(event: BusEvent): Promise<void> {
    const order = asOrder(event.data)
    consumed++
    if (event.redelivered) redelivered++
    consumedField.textContent = formatCount(consumed)
    redeliveredField.textContent = formatCount(redelivered)
    const item = h(
      'li',
      { 'data-redelivered': String(event.redelivered) },
      `#${order?.n ?? '?'}`,
      ...(event.redelivered ? [h('span', { class: 'badge' }, 'redelivered')] : []),
    )
    list.prepend(item)
    while (list.childElementCount > LISTED) list.lastElementChild?.remove()
    // Slow on purpose: close the tab while it works and the rest waits in the store.
    return new Promise((resolve) => setTimeout(resolve, DURABLE_EVENT_MS))
  }

  function consume(): void {
    if (subscription !== undefined) return
    try {
      subscription = bus.subscribe(DURABLE_PATTERN, handle, { durable: DURABLE_CONSUMER, capacity: 64 })
      consumeBox.checked = true
      standby = undefined
      const current = subscription
      const update = (): void => {
        const waiting = current.stats().standby === true
        if (waiting === standby) return
        standby = waiting
        consumeBox.dataset.state = waiting ? 'standby' : 'live'
        show(
          waiting
            ? `Durable consumer "${DURABLE_CONSUMER}" waits its turn: another tab is the live one. Close that tab and this one takes over.`
            : `Durable consumer "${DURABLE_CONSUMER}" is live in this tab: it replays what it has not acknowledged (marked redelivered), then follows new events.`,
        )
        log(waiting ? `durable consumer "${DURABLE_CONSUMER}" waits: another tab is the live one` : `durable consumer "${DURABLE_CONSUMER}" is live here`)
      }
      update()
      watch = setInterval(update, 250)
    } catch (error) {
      consumeBox.checked = false
      show(`Durable consumer failed: ${describeError(error)}`, true)
      log(`durable consumer failed: ${describeError(error)}`, 'warn')
    }
  }

  function stop(): void {
    if (subscription === undefined) return
    subscription.unsubscribe()
    subscription = undefined
    clearInterval(watch)
    delete consumeBox.dataset.state
    consumeBox.checked = false
    show(`Durable consumer "${DURABLE_CONSUMER}" stopped; what it has not acknowledged stays in the store.`)
  }

  publishButton.addEventListener('click', () => void publish())
  consumeBox.addEventListener('change', () => (consumeBox.checked ? consume() : stop()))
  openButton.addEventListener('click', () => {
    const url = new URL(location.href)
    url.searchParams.set(DURABLE_PARAMETER, '1')
    openTab(url)
  })

  return { consume, stop }
}
