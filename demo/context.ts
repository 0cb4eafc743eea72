// One demo context: the same code runs in a tab, a dedicated worker, a shared
// worker and a service worker. It creates the context's bus and
// - runs the consumer bursts go to, which can be made slow or stalled;
// - publishes its status (stats, peers, mode) every STATUS_EVERY_MS, retained,
//   so every tab draws a card for it and a tab opened later gets it at once;
// - obeys commands sent to it over the bus (`demo.cmd.<id>.<action>`);
// - answers `request('demo.ask.<id>')`;
// - forwards its notable diagnostics (drops, failures) to every tab's log.
// No DOM here: workers import it too.
import { createBus, type Bus, type BusEvent, type BusOptions, type Diagnostic, type Transport } from '../src/index.ts'
import {
  BUS_NAME,
  CONSUMER_CAPACITY,
  CONSUMER_PATTERN,
  FREEZE_MS,
  LOG_TOPIC,
  SLOW_EVENT_MS,
  STATUS_EVERY_MS,
  asMode,
  askTopic,
  commandPattern,
  statusTopic,
  type Answer,
  type ConsumerMode,
  type ContextKind,
  type LogLine,
  type Status,
} from './protocol.ts'

export interface ContextOptions {
  kind: ContextKind
  transports: readonly Transport[]
  /** What each transport leads to, for the cards: 'port: dedicated worker'. */
  links?: readonly string[]
  /** More bus options: a tab passes its durable store. */
  busOptions?: Omit<BusOptions, 'name' | 'transports' | 'onDiagnostic'>
  /** Status fields only this context knows (a tab's worker, whether it can close). */
  describe?: () => Pick<Status, 'worker' | 'closable'>
  /** Every diagnostic of this bus, besides what is forwarded to the log. */
  onDiagnostic?: (diagnostic: Diagnostic) => void
  /** Closes this context on the `close` command (tabs). */
  close?: () => void
}

export interface DemoContext {
  readonly bus: Bus
  /** The status this context publishes, taken now. */
  status(): Status
  /** A line in every tab's event log. */
  log(text: string, level?: LogLine['level']): void
  /**
   * Says goodbye: sends what is left to say, stops the consumer (what it holds
   * is discarded) and closes the bus, which says bye on every link.
   */
  close(): Promise<void>
}

/** Diagnostics worth a line in every tab's log; peers joining and leaving are logged by each tab for itself. */
const FORWARDED: ReadonlySet<Diagnostic['type']> = new Set([
  'drop',
  'handler-error',
  'transport-error',
  'bad-frame',
  'not-cloneable',
  'storage-error',
  'dead-letter',
])
/** Forwarded diagnostics per second at most, so a storm of them cannot flood the log. */
const FORWARD_PER_SECOND = 10

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms))

/**
 * Starts this context's bus and its demo duties.
 *
 * @example
 * const context = startContext({ kind: 'worker', transports: [messagePort(self)] })
 */
export function startContext(options: ContextOptions): DemoContext {
  const { kind } = options
  const started = Date.now()
  let mode: ConsumerMode = 'normal'
  /** Events held by the stalled consumer (one at most): released when the mode changes. */
  let releaseStalled: (() => void)[] = []

  /**
   * Log lines waiting for the next task: a diagnostic is reported from inside
   * the bus (even from inside createBus), not a place to publish from.
   */
  let outbox: Omit<LogLine, 'from' | 'kind'>[] = []
  let forwardedThisSecond = 0
  let suppressed = 0
  let secondStarted = 0

  const bus = createBus({
    ...options.busOptions,
    name: BUS_NAME,
    transports: options.transports,
    onDiagnostic(diagnostic) {
      options.onDiagnostic?.(diagnostic)
      if (!FORWARDED.has(diagnostic.type)) return
      const now = Date.now()
      if (now - secondStarted >= 1000) {
        secondStarted = now
        forwardedThisSecond = 0
      }
      if (forwardedThisSecond++ >= FORWARD_PER_SECOND) {
        suppressed++
        return
      }
      queueLine({ time: now, text: diagnostic.message.replace(/^crossbus: /, ''), level: 'warn' })
    },
  })

  function queueLine(line: Omit<LogLine, 'from' | 'kind'>): void {
    outbox.push(line)
    if (outbox.length === 1) setTimeout(sendLines, 0)
  }

  function sendLines(): void {
    const lines = outbox
    outbox = []
    if (suppressed > 0) {
      lines.push({ time: Date.now(), text: `${suppressed} more diagnostic(s) not shown`, level: 'warn' })
      suppressed = 0
    }
    for (const line of lines) publishSafely(LOG_TOPIC, { ...line, from: bus.id, kind } satisfies LogLine)
  }

  /** Publishes unless the bus is closed (a page on its way out). */
  function publishSafely(topic: string, data: unknown, retain = false): void {
    try {
      bus.publish(topic, data, retain ? { retain: true } : undefined)
    } catch {
      // Closed: nothing more to say.
    }
  }

  const consumer = bus.subscribe(
    CONSUMER_PATTERN,
    () => {
      if (mode === 'slow') return sleep(SLOW_EVENT_MS)
      // Takes this event and does not finish it until the mode changes: the queue fills behind it.
      if (mode === 'stalled') return new Promise<void>((resolve) => releaseStalled.push(resolve))
      return undefined
    },
    { capacity: CONSUMER_CAPACITY },
  )

  function setMode(next: ConsumerMode, by: string): void {
    if (next === mode) return
    mode = next
    const held = releaseStalled
    releaseStalled = []
    for (const release of held) release()
    const who = by === bus.id ? '' : ` (asked by ${by})`
    log(`consumer ${CONSUMER_PATTERN} is now ${next}${who}`)
    publishStatus()
  }

  /** Keeps this thread busy without yielding: no timer, no message, no credit grant runs meanwhile. */
  function freeze(by: string): void {
    log(`freezing for ${FREEZE_MS / 1000} s (asked by ${by}): its thread runs a busy loop and answers nothing`, 'warn')
    // Let the line above leave first: links post at the end of the task.
    setTimeout(() => {
      const until = Date.now() + FREEZE_MS
      while (Date.now() < until) {
        // busy, bounded by `until`
      }
      log(`back after a ${FREEZE_MS / 1000} s freeze`)
    }, 50)
  }

  bus.subscribe(commandPattern(bus.id), (event: BusEvent) => {
    const action = event.topic.slice(event.topic.lastIndexOf('.') + 1)
    if (action === 'mode') {
      const next = asMode(event.data)
      if (next !== undefined) setMode(next, event.source)
    } else if (action === 'freeze') {
      freeze(event.source)
    } else if (action === 'close') {
      if (options.close === undefined) log(`asked to close by ${event.source}, but a ${kind} cannot be closed from here`, 'warn')
      else options.close()
    }
  })

  bus.reply(
    askTopic(bus.id),
    (): Answer => ({
      by: bus.id,
      kind,
      consumed: consumer.stats().delivered,
      mode,
      uptime: Date.now() - started,
    }),
  )

  function status(): Status {
    return {
      id: bus.id,
      kind,
      time: Date.now(),
      started,
      mode,
      ...options.describe?.(),
      ...(options.links === undefined ? {} : { links: options.links }),
      stats: bus.stats(),
      peers: bus
        .peers()
        .map((peer) => peer.id)
        .sort(),
    }
  }

  function publishStatus(): void {
    publishSafely(statusTopic(bus.id), status(), true)
  }

  function log(text: string, level: LogLine['level'] = 'info'): void {
    queueLine({ time: Date.now(), text, level })
  }

  publishStatus()
  const timer = setInterval(publishStatus, STATUS_EVERY_MS)

  async function close(): Promise<void> {
    clearInterval(timer)
    sendLines()
    consumer.unsubscribe()
    // A stalled handler would keep close() waiting forever.
    for (const release of releaseStalled.splice(0)) release()
    await bus.close()
  }

  return { bus, status, log, close }
}
