// The NATS panel (DESIGN.md, semantic 7), shown when the page is opened with ?nats=<WebSocket URL of a
// nats-server>: every tab runs natsBridge, one of them holds the connection (the others wait, and take over
// when it closes), durable events published here go through the outbox to a JetStream stream, and events
// other devices (another browser, another machine) publish there come back as local events. Without the
// parameter nothing NATS is loaded: `npm run demo` needs no server.
import type { NatsBridge } from '../src/bridges/nats.ts'
import type { Bus, BusEvent } from '../src/index.ts'
import { byId, describeError, formatCount, h, setText } from './dom.ts'

/** The query parameter naming the server, e.g. ?nats=ws://127.0.0.1:8080 */
export const NATS_PARAMETER = 'nats'
/** Topics the demo bridges, both ways. */
export const NATS_PATTERN = 'demo.nats.>'
export const NATS_TOPIC = 'demo.nats.orders'
/** Subjects are `crossbus-demo.<topic>`; the stream the demo makes if it is missing captures them all. */
const PREFIX = 'crossbus-demo'
const STREAM = 'CROSSBUS_DEMO'
const DEVICE_KEY = 'crossbus-demo.device'
const LISTED = 20

/** This browser's name in the demo: its JetStream consumer is its own (a shared one would split the messages between devices). */
function deviceName(): string {
  try {
    let name = localStorage.getItem(DEVICE_KEY)
    if (name === null) localStorage.setItem(DEVICE_KEY, (name = `device-${Math.random().toString(36).slice(2, 8)}`))
    return name
  } catch {
    return `device-${Math.random().toString(36).slice(2, 8)}`
  }
}

/** The stream the outbox publishes to, made if missing (a real app's would be made by its operators). */
async function ensureStream(servers: string): Promise<void> {
  const [{ wsconnect }, { jetstreamManager }] = await Promise.all([import('@nats-io/nats-core'), import('@nats-io/jetstream')])
  const connection = await wsconnect({ servers, reconnect: false, timeout: 5000 })
  try {
    const manager = await jetstreamManager(connection)
    await manager.streams.info(STREAM).catch(() => manager.streams.add({ name: STREAM, subjects: [`${PREFIX}.>`] }))
  } finally {
    await connection.close()
  }
}

/**
 * Wires the panel (ids nats-*) to `bus` when the page names a server; `log` gets a line for each step.
 *
 * @example
 * void createNatsPanel(bus, (text, level) => log.add(...))
 */
export async function createNatsPanel(bus: Bus, log: (text: string, level?: 'info' | 'warn') => void): Promise<NatsBridge | undefined> {
  const panel = byId('nats-panel', HTMLElement)
  const servers = new URL(location.href).searchParams.get(NATS_PARAMETER)
  if (servers === null || servers === '') return undefined
  panel.dataset.enabled = 'true'
  const status = byId('nats-status', HTMLElement)
  const count = byId('nats-count', HTMLInputElement)
  const publishButton = byId('nats-publish', HTMLButtonElement)
  const list = byId('nats-events', HTMLOListElement)
  const fields = new Map([...panel.querySelectorAll<HTMLElement>('[data-nats]')].map((node) => [node.dataset.nats as string, node]))
  const device = deviceName()
  setText(byId('nats-device', HTMLElement), device)

  void ensureStream(servers).catch((error: unknown) => log(`NATS: could not make stream ${STREAM}: ${describeError(error)}`, 'warn'))
  let bridge: NatsBridge
  try {
    const { natsBridge } = await import('../src/bridges/nats.ts')
    bridge = natsBridge(bus, {
      servers,
      prefix: PREFIX,
      export: [NATS_PATTERN],
      import: [NATS_PATTERN],
      name: 'demo',
      ids: true,
      jetstream: { stream: STREAM, durable: device },
      onDiagnostic: (diagnostic) =>
        log(`NATS ${diagnostic.message.replace(/^crossbus: /, '')}`, diagnostic.type === 'status' && diagnostic.status === 'connected' ? 'info' : 'warn'),
    })
  } catch (error) {
    status.dataset.state = 'error'
    setText(status, `The bridge did not start: ${describeError(error)}`)
    return undefined
  }

  let sequence = 0
  publishButton.addEventListener('click', () => {
    const n = Math.max(1, Math.min(1000, Math.floor(count.valueAsNumber) || 1))
    try {
      for (let index = 0; index < n; index++) bridge.publish(NATS_TOPIC, { n: ++sequence, from: device, at: Date.now() }, { durable: true })
      log(`NATS: ${formatCount(n)} durable events published to the outbox`)
    } catch (error) {
      log(`NATS publish refused: ${describeError(error)}`, 'warn')
    }
  })

  // What other devices published: the events the holder imported (they carry the subject they came on).
  let received = 0
  bus.subscribe(NATS_PATTERN, (event: BusEvent) => {
    const subject = event.headers['x-crossbus-nats-subject']
    if (subject === undefined) return
    received++
    setText(fields.get('received') as HTMLElement, formatCount(received))
    const data = event.data as { n?: unknown; from?: unknown }
    list.prepend(h('li', {}, `#${String(data.n)} from ${String(data.from)}`, h('span', { class: 'meta' }, ` ${subject}`)))
    while (list.childElementCount > LISTED) list.lastElementChild?.remove()
  })

  const render = (): void => {
    const stats = bridge.stats()
    status.dataset.state = stats.status === 'connected' ? 'ok' : stats.status === 'standby' ? 'standby' : 'error'
    const where = stats.holder ? 'this tab holds the connection' : stats.holderId === undefined ? 'no holder yet' : `tab ${stats.holderId} holds the connection`
    const state = stats.status === 'connected' ? `connected to ${stats.server}` : stats.status
    setText(status, `${state}: ${where}${stats.lastError === undefined || stats.status === 'connected' ? '' : ` (last error: ${stats.lastError})`}`)
    for (const field of ['exported', 'imported', 'outbox', 'queued', 'dropped', 'duplicates', 'reconnects'] as const) {
      const node = fields.get(field)
      if (node !== undefined) setText(node, formatCount(stats[field]))
    }
  }
  render()
  setInterval(render, 250)
  return bridge
}
