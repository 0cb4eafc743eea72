// The demo page: a control room for every context of this origin. This tab
// starts its dedicated worker, connects to the shared worker, registers the
// service worker, and links its bus to all three (BroadcastChannel reaches the
// other tabs). Each context reports its status over the bus; this page draws
// a card per context, a chart and a log from those reports, and sends its
// commands over the bus too.
import type { NatsBridge } from '../src/bridges/nats.ts'
import { matches, type Bus, type Diagnostic, type Transport } from '../src/index.ts'
import { indexedDbStore } from '../src/store/idb.ts'
import { broadcastChannel, messagePort } from '../src/transports/index.ts'
import { createRoom } from './cards.ts'
import { createChart } from './chart.ts'
import { startContext } from './context.ts'
import { byId, clockTime, colorOf, describeError, formatCount, openTab } from './dom.ts'
import { createDurablePanel, DURABLE_PARAMETER } from './durable.ts'
import { createLog } from './log.ts'
import { createNatsPanel } from './nats.ts'
import {
  BUS_NAME,
  CONSUMER_PATTERN,
  DEFAULT_BURST_TOPIC,
  KIND_LABEL,
  LOG_TOPIC,
  STATE_PATTERN,
  STATE_TOPIC,
  STATUS_PATTERN,
  asAnswer,
  asLogLine,
  asNote,
  asStatus,
  askTopic,
  commandTopic,
  type ContextKind,
  type Note,
  type Status,
} from './protocol.ts'

declare global {
  interface Window {
    /** The page's bus, for a look from the console (and for the e2e tests' stats comparison). */
    crossbusDemo: { bus: Bus; bridge?: NatsBridge }
  }
}

/** Lines kept in the log. */
const LOG_LINES = 200
/** Largest burst the button publishes. */
const MAX_BURST = 100_000
/** Statuses of contexts that are no longer peers are forgotten after this long. */
const FORGET_AFTER_MS = 60_000
const CHART_WINDOW_MS = 60_000

const log = createLog(byId('log', HTMLOListElement), LOG_LINES)
const note = (text: string, level: 'info' | 'warn' = 'info'): void => log.add({ time: Date.now(), who: 'this tab', text, level })

// ---- the other contexts: a dedicated worker, the shared worker, the service worker ----

const worker = new Worker(new URL('./worker.ts', import.meta.url), { type: 'module', name: `${BUS_NAME} worker` })
// The worker's first message: a port on which it says its bus id (taken before its bus listens).
const workerHello = new MessageChannel()
worker.postMessage(workerHello.port2, [workerHello.port2])
let workerId: string | undefined
workerHello.port1.onmessage = (message: MessageEvent<unknown>) => {
  workerId = String(message.data)
  workerHello.port1.close()
}

/** The tab's links, and what each leads to. */
const links: { transport: Transport; to: string }[] = [
  { transport: broadcastChannel(), to: 'broadcast: other tabs' },
  { transport: messagePort(worker), to: 'port: dedicated worker' },
]

function linkSharedWorker(): void {
  if (typeof SharedWorker !== 'function') {
    note('this browser has no SharedWorker: the room has no shared worker', 'warn')
    return
  }
  const shared = new SharedWorker(new URL('./shared-worker.ts', import.meta.url), { type: 'module', name: BUS_NAME })
  links.push({ transport: messagePort(shared.port), to: 'port: shared worker' })
}

function linkServiceWorker(): void {
  if (!('serviceWorker' in navigator)) {
    note('no service worker here: they need a secure context (https, or http on localhost)', 'warn')
    return
  }
  // Served from the demo's root so that it controls the page: sw.ts in development, sw.js once built.
  const script = new URL(import.meta.env.DEV ? 'sw.ts' : 'sw.js', document.baseURI)
  navigator.serviceWorker
    .register(script, { type: 'module', scope: './' })
    .catch((error: unknown) => note(`the service worker could not be registered: ${describeError(error)}`, 'warn'))
  links.push({ transport: messagePort(navigator.serviceWorker), to: 'port: service worker' })
}

linkSharedWorker()
linkServiceWorker()

// ---- this tab's bus ----

/** Peers joining and leaving, as this tab's bus sees them on each link. */
function onDiagnostic(diagnostic: Diagnostic): void {
  if (diagnostic.type === 'peer-join' || diagnostic.type === 'peer-leave') note(diagnostic.message.replace(/^crossbus: /, ''))
}

/** The browser lets a script close only the tabs a script opened (or that have one history entry). */
const closable = (): boolean => window.opener !== null || history.length <= 1

/**
 * Closes this tab on the `close` command. The bus is closed first, so its bye
 * goes out on every link before the page goes: Chromium drops a page's
 * postMessage to its service worker from pagehide when a script closes the
 * page, and the service worker would keep the tab for the 5 s peer timeout.
 */
async function closeTab(): Promise<void> {
  if (!closable()) {
    context.log('asked to close, but the browser lets a script close only the tabs a script opened', 'warn')
    return
  }
  context.log('closing: says bye on every link and releases its lock')
  durable.stop()
  await window.crossbusDemo.bridge?.close()
  await context.close()
  window.close()
}

const context = startContext({
  kind: 'tab',
  transports: links.map((link) => link.transport),
  links: links.map((link) => link.to),
  // The durable log (DESIGN.md, semantic 6), shared by the origin's tabs.
  busOptions: { store: indexedDbStore({ dbName: BUS_NAME }) },
  describe: () => ({ ...(workerId === undefined ? {} : { worker: workerId }), closable: closable() }),
  onDiagnostic,
  close: () => void closeTab(),
})
const { bus } = context

window.crossbusDemo = { bus }
byId('self-id', HTMLElement).textContent = bus.id

// ---- what the contexts report ----

const statuses = new Map<string, Status>()
/** Consumer events per second, from each context's last two statuses. */
const rates = new Map<string, number>()
const throughput = createChart(byId('chart-throughput', HTMLCanvasElement), {
  label: 'consumed events/s, per context',
  windowMs: CHART_WINDOW_MS,
  maxPoints: 240,
  minTop: 10,
})
const depth = createChart(byId('chart-depth', HTMLCanvasElement), {
  label: `queue depth of ${CONSUMER_PATTERN}, per context`,
  windowMs: CHART_WINDOW_MS,
  maxPoints: 240,
  minTop: 10,
})

const consumerOf = (status: Status): { delivered: number; queued: number } =>
  status.stats.subscriptions.find((subscription) => subscription.pattern === CONSUMER_PATTERN) ?? { delivered: 0, queued: 0 }

bus.subscribe(
  STATUS_PATTERN,
  (event) => {
    const status = asStatus(event.data)
    if (status === undefined || status.id !== event.source) return
    const previous = statuses.get(status.id)
    if (previous !== undefined && status.time <= previous.time) return
    statuses.set(status.id, status)
    const consumer = consumerOf(status)
    if (previous !== undefined) {
      const elapsed = status.time - previous.time
      rates.set(status.id, elapsed > 0 ? ((consumer.delivered - consumerOf(previous).delivered) * 1000) / elapsed : 0)
    }
    throughput.add(status.id, status.time, rates.get(status.id) ?? 0)
    depth.add(status.id, status.time, consumer.queued)
  },
  // Retained: a tab opened later draws every card at once.
  { last: true, capacity: 4096 },
)

/** "shared worker 1x2y3z4w", or "this tab". */
function who(id: string, kind: ContextKind | undefined): string {
  if (id === bus.id) return 'this tab'
  return kind === undefined ? id : `${KIND_LABEL[kind]} ${id}`
}

bus.subscribe(LOG_TOPIC, (event) => {
  const line = asLogLine(event.data)
  if (line !== undefined) log.add({ time: line.time, from: event.source, who: who(event.source, line.kind), text: line.text, level: line.level })
})

// ---- the room ----

const room = createRoom(byId('cards', HTMLElement), bus.id, {
  command(id, action, data) {
    bus.publish(commandTopic(id, action), data ?? null)
  },
  ask(id) {
    void ask(id).then((text) => note(text))
  },
})

/** Contexts shown at the last render, to log arrivals and departures. */
let shown = new Set<string>()

function render(): void {
  const now = Date.now()
  const peers = new Set(bus.peers().map((peer) => peer.id))
  const others = [...statuses.values()].filter((status) => peers.has(status.id))
  for (const [id, status] of statuses) {
    if (!peers.has(id) && id !== bus.id && now - status.time > FORGET_AFTER_MS) {
      statuses.delete(id)
      rates.delete(id)
    }
  }
  const self = context.status()
  room.render({ self, others, rates, now })

  const current = new Set([bus.id, ...others.map((status) => status.id)])
  for (const status of others) if (!shown.has(status.id)) note(`${who(status.id, status.kind)} joined the room`)
  for (const id of shown) if (!current.has(id)) note(`${who(id, statuses.get(id)?.kind)} left the room: it is no longer a peer`)
  shown = current
}

function drawCharts(): void {
  const colors = new Map([...shown].map((id) => [id, colorOf(id)]))
  const now = Date.now()
  throughput.draw(now, colors)
  depth.draw(now, colors)
}

/** Every frame while visible; a few times a second while hidden (animation frames stop there). */
function loop(): void {
  render()
  if (document.hidden) setTimeout(loop, 250)
  else requestAnimationFrame(loop)
}
loop()
setInterval(drawCharts, 250)

// ---- controls: bursts ----

const burstTopic = byId('burst-topic', HTMLInputElement)
const burstCount = byId('burst-count', HTMLInputElement)
const burstResult = byId('burst-result', HTMLElement)
burstTopic.value = DEFAULT_BURST_TOPIC

byId('burst', HTMLButtonElement).addEventListener('click', () => {
  const count = Math.max(1, Math.min(MAX_BURST, Math.floor(burstCount.valueAsNumber) || 1))
  const topic = burstTopic.value.trim()
  let queued = 0
  let dropped = 0
  const started = performance.now()
  try {
    // One task: every event is queued before any consumer runs (the README's "one thing to know about bursts").
    for (let index = 0; index < count; index++) {
      const receipt = bus.publish(topic, { index })
      queued += receipt.queued
      dropped += receipt.dropped
    }
  } catch (error) {
    burstResult.textContent = describeError(error)
    burstResult.dataset.state = 'error'
    return
  }
  const elapsed = performance.now() - started
  const consumed = matches(CONSUMER_PATTERN, topic) ? '' : ` (no consumer: they subscribe ${CONSUMER_PATTERN})`
  burstResult.textContent =
    `Published ${formatCount(count)} events on ${topic} in ${elapsed.toFixed(1)} ms${consumed}: ` +
    `${formatCount(queued)} hand-offs to this tab's queues and links, ${formatCount(dropped)} dropped at publish.`
  burstResult.dataset.state = 'ok'
  context.log(`published ${formatCount(count)} events on ${topic} in ${elapsed.toFixed(1)} ms`)
})

// ---- controls: tabs ----

byId('open-tab', HTMLButtonElement).addEventListener('click', () => {
  const url = new URL(location.href)
  url.searchParams.delete(DURABLE_PARAMETER)
  openTab(url)
})

// ---- controls: request / reply ----

async function ask(id: string): Promise<string> {
  const started = performance.now()
  try {
    const answer = asAnswer(await bus.request(askTopic(id), null, { timeout: 3000 }))
    const elapsed = (performance.now() - started).toFixed(1)
    if (answer === undefined) return `${id} answered something unexpected`
    return (
      `${who(answer.by, answer.kind)} answered in ${elapsed} ms: its consumer has finished ` +
      `${formatCount(answer.consumed)} events, is ${answer.mode}, and it has run for ${Math.round(answer.uptime / 1000)} s`
    )
  } catch (error) {
    return `no answer from ${id}: ${describeError(error)}`
  }
}

const askResult = byId('ask-result', HTMLElement)
byId('ask', HTMLButtonElement).addEventListener('click', () => {
  if (workerId === undefined) {
    askResult.textContent = 'the worker has not started yet'
    return
  }
  askResult.textContent = `asking ${workerId}…`
  void ask(workerId).then((text) => {
    askResult.textContent = text
  })
})

// ---- controls: retained state ----

const stateText = byId('state-text', HTMLInputElement)
const stateCurrent = byId('state-current', HTMLElement)
const stateMeta = byId('state-meta', HTMLElement)

byId('state-publish', HTMLButtonElement).addEventListener('click', () => {
  const text = stateText.value.trim()
  if (text === '') return
  const data: Note = { text, by: bus.id, at: Date.now() }
  bus.publish(STATE_TOPIC, data, { retain: true })
  context.log(`set the retained note to "${text}"`)
})

bus.subscribe(
  STATE_PATTERN,
  (event) => {
    const current = asNote(event.data)
    if (current === undefined) return
    stateCurrent.textContent = current.text
    // Only tabs publish the note.
    stateMeta.textContent = `set by ${current.by === bus.id ? 'this tab' : `tab ${current.by}`} at ${clockTime(current.at)}`
  },
  { last: true },
)

// ---- durable events ----

const durable = createDurablePanel(bus, (text, level) => note(text, level))
if (new URL(location.href).searchParams.has(DURABLE_PARAMETER)) durable.consume()

// ---- the NATS bridge, when the page names a server (?nats=…) ----

void createNatsPanel(bus, (text, level) => note(text, level)).then((bridge) => {
  if (bridge !== undefined) window.crossbusDemo.bridge = bridge
})

document.body.dataset.ready = 'true'
