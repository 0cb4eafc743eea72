// What the demo's contexts say to each other over the bus: topic names, the
// status every context reports, commands, log lines and answers. Every context
// (tab, dedicated worker, shared worker, service worker) imports this module.
import type { BusStats } from '../src/index.ts'

/** Every context of the demo runs a bus with this name. */
export const BUS_NAME = 'crossbus-demo'

/** How often each context publishes its status (retained). */
export const STATUS_EVERY_MS = 500

/** The consumer every context runs: the subscription bursts go to. */
export const CONSUMER_PATTERN = 'demo.work.>'
/** Its queue capacity: the library's default. */
export const CONSUMER_CAPACITY = 1024
/** Where the burst button publishes unless told otherwise. */
export const DEFAULT_BURST_TOPIC = 'demo.work.orders'
/** A slow consumer takes this long per event (about 200 events/s). */
export const SLOW_EVENT_MS = 5

/** How long "freeze" keeps a context's thread busy. */
export const FREEZE_MS = 8000

/** The durable consumer's name, topic and pace (DESIGN.md, semantic 6). */
export const DURABLE_CONSUMER = 'demo-durable'
export const DURABLE_TOPIC = 'demo.durable.orders'
export const DURABLE_PATTERN = 'demo.durable.>'
export const DURABLE_EVENT_MS = 400

/** The retained note a tab opened later starts from (DESIGN.md, semantic 8). */
export const STATE_TOPIC = 'demo.state.note'
export const STATE_PATTERN = 'demo.state.>'

export const LOG_TOPIC = 'demo.log'
export const STATUS_PATTERN = 'demo.status.*'

export const statusTopic = (id: string): string => `demo.status.${id}`
export const commandTopic = (id: string, action: CommandAction): string => `demo.cmd.${id}.${action}`
export const commandPattern = (id: string): string => `demo.cmd.${id}.*`
export const askTopic = (id: string): string => `demo.ask.${id}`

export type ContextKind = 'tab' | 'worker' | 'shared-worker' | 'service-worker'
export type ConsumerMode = 'normal' | 'slow' | 'stalled'
export const CONSUMER_MODES: readonly ConsumerMode[] = ['normal', 'slow', 'stalled']

/** Commands, by the last token of `demo.cmd.<id>.<action>`: mode carries a ConsumerMode. */
export type CommandAction = 'mode' | 'freeze' | 'close'

/** What each context publishes on `demo.status.<id>` every STATUS_EVERY_MS, retained. */
export interface Status {
  readonly id: string
  readonly kind: ContextKind
  /** Date.now() when taken. */
  readonly time: number
  readonly started: number
  readonly mode: ConsumerMode
  /** A tab's dedicated worker, once it said its id. */
  readonly worker?: string
  /** The tab can be closed by script (it was opened by one, or has one history entry). */
  readonly closable?: boolean
  /** What each of its links (stats.transports, in order) leads to, where the context knows. */
  readonly links?: readonly string[]
  readonly stats: BusStats
  /** Ids of bus.peers(), sorted. */
  readonly peers: readonly string[]
}

/** A line for every tab's event log, published on `demo.log`. */
export interface LogLine {
  /** Date.now() when the line was written (it is published a task later). */
  readonly time: number
  readonly from: string
  readonly kind: ContextKind
  readonly text: string
  readonly level: 'info' | 'warn'
}

/** A context's answer to `request('demo.ask.<id>')`. */
export interface Answer {
  readonly by: string
  readonly kind: ContextKind
  /** Events its consumer has finished. */
  readonly consumed: number
  readonly mode: ConsumerMode
  readonly uptime: number
}

/** The retained note. */
export interface Note {
  readonly text: string
  readonly by: string
  readonly at: number
}

/** A durable event's data. */
export interface DurableOrder {
  readonly n: number
  readonly at: number
}

const isObject = (value: unknown): value is Record<string, unknown> => typeof value === 'object' && value !== null
const KINDS: readonly string[] = ['tab', 'worker', 'shared-worker', 'service-worker']

/** Data from another context, checked before use: a status, or undefined. */
export function asStatus(value: unknown): Status | undefined {
  if (!isObject(value) || typeof value.id !== 'string' || typeof value.kind !== 'string' || !KINDS.includes(value.kind)) return undefined
  if (typeof value.time !== 'number' || !isObject(value.stats) || !Array.isArray(value.peers)) return undefined
  return value as unknown as Status
}

export function asLogLine(value: unknown): LogLine | undefined {
  if (
    !isObject(value) ||
    typeof value.time !== 'number' ||
    typeof value.from !== 'string' ||
    typeof value.text !== 'string' ||
    typeof value.kind !== 'string'
  ) {
    return undefined
  }
  return value as unknown as LogLine
}

export function asAnswer(value: unknown): Answer | undefined {
  if (!isObject(value) || typeof value.by !== 'string' || typeof value.consumed !== 'number') return undefined
  return value as unknown as Answer
}

export function asNote(value: unknown): Note | undefined {
  if (!isObject(value) || typeof value.text !== 'string' || typeof value.by !== 'string' || typeof value.at !== 'number') return undefined
  return value as unknown as Note
}

export function asMode(value: unknown): ConsumerMode | undefined {
  return CONSUMER_MODES.find((mode) => mode === value)
}

/** How each kind is named on cards and in the log. */
export const KIND_LABEL: Readonly<Record<ContextKind, string>> = {
  tab: 'tab',
  worker: 'dedicated worker',
  'shared-worker': 'shared worker',
  'service-worker': 'service worker',
}
