/**
 * crossbus/nats: the bus past one device. `natsBridge(bus, options)` exports
 * matching topics to NATS subjects and imports subjects as local events, over
 * one WebSocket connection per origin; with JetStream, durable events are an
 * outbox the stream acknowledges.
 *
 * Run it in every context that may hold the connection (the tabs, or the
 * shared worker): one of them holds it (a shared worker before any tab), the
 * others wait and take over when it dies. Contexts that never run it still
 * publish and receive through it, over the bus.
 *
 * @example
 * import { createBus } from 'crossbus'
 * import { indexedDbStore } from 'crossbus/idb'
 * import { natsBridge } from 'crossbus/nats'
 *
 * const bus = createBus({ store: indexedDbStore() })
 * const bridge = natsBridge(bus, {
 *   servers: 'wss://nats.example.com',
 *   prefix: 'shop',
 *   export: ['orders.>'],
 *   import: ['prices.>'],
 *   jetstream: { stream: 'SHOP' },
 * })
 * bus.publish('orders.created', { id: 42 }, { durable: true }) // reaches stream SHOP once, even after a crash
 *
 * @module
 */
import { reporter } from '../diagnostics.js'
import { CrossbusError, errorMessage } from '../errors.js'
import { matchTokens } from '../topic.js'
import type { Bus, BusEvent, PublishOptions, Receipt } from '../types.js'
import { elect } from './nats/election.js'
import { Holder } from './nats/holder.js'
import { DEFAULT_MAX_PAYLOAD, isStatusTopic, resolveSettings, type Settings } from './nats/options.js'
import { originId } from './nats/origin.js'
import type { NatsBridge, NatsBridgeOptions, NatsBridgeStats, NatsDiagnostic, NatsStatus } from './nats/types.js'
import { type Carriage, encodeEvent, SUBJECT_HEADER } from './nats/wire.js'

export type {
  NatsBridge,
  NatsBridgeOptions,
  NatsBridgeStats,
  NatsCodec,
  NatsConnectionOptions,
  NatsDiagnostic,
  NatsDiagnosticType,
  NatsJetStreamOptions,
  NatsStatus,
  WebSocketClass,
} from './nats/types.js'
export { jsonCodec } from './nats/wire.js'

/** Counters are sent to the other contexts at most this often (a status change goes at once). */
const STATUS_EVERY_MS = 1000

const asyncDisposeSymbol: typeof Symbol.asyncDispose = Symbol.asyncDispose ?? (Symbol.for('Symbol.asyncDispose') as typeof Symbol.asyncDispose)

/** What the holder tells the other contexts, as the retained event of the status topic. */
type Snapshot = NatsBridgeStats

/**
 * Bridges `bus` to NATS. Throws a TypeError for a wrong option (or when the
 * runtime has no WebSocket and none is given), INVALID_TOPIC for a malformed
 * pattern or prefix, NO_STORE when `jetstream` is set and the bus has no store.
 *
 * @example
 * const bridge = natsBridge(bus, { servers: 'ws://127.0.0.1:8080', export: ['chat.>'], import: ['chat.>'] })
 * bridge.stats() // { status: 'connected', holder: true, exported: 0, … }
 */
export function natsBridge(bus: Bus, options: NatsBridgeOptions): NatsBridge {
  if (bus === null || typeof bus !== 'object' || typeof bus.publish !== 'function' || typeof bus.stream !== 'function') {
    throw new TypeError('crossbus: natsBridge takes a bus made by createBus() first')
  }
  const settings = resolveSettings(options)
  if (settings.jetstream !== undefined) checkStore(bus)
  const report = natsReporter(settings.onDiagnostic)
  const closing = new AbortController()
  let holder: Holder | undefined
  let holderOrigin: string | undefined
  let remote: Snapshot | undefined
  let closed: Promise<void> | undefined

  // ---- status: published by the holder (retained), followed by everyone else ----
  let statusTimer: ReturnType<typeof setTimeout> | undefined
  let statusDirty = false
  let statusUrgent = false
  const publishStatus = (): void => {
    statusTimer = undefined
    statusUrgent = false
    if (!statusDirty || holder === undefined) return
    statusDirty = false
    try {
      bus.publish(settings.statusTopic, holder.stats(bus.id), { retain: true })
    } catch {
      // The bus closed: the bridge closes with it.
    }
    statusTimer = setTimeout(publishStatus, STATUS_EVERY_MS)
    ;(statusTimer as { unref?: () => void }).unref?.()
  }
  const changed = (urgent: boolean): void => {
    statusDirty = true
    if (urgent && !statusUrgent) {
      statusUrgent = true
      clearTimeout(statusTimer)
      statusTimer = undefined
      queueMicrotask(publishStatus)
      return
    }
    if (statusTimer === undefined && !statusUrgent) {
      statusTimer = setTimeout(publishStatus, STATUS_EVERY_MS)
      ;(statusTimer as { unref?: () => void }).unref?.()
    }
  }

  const statusStream = bus.stream(settings.statusTopic, { last: true, capacity: 4, overflow: 'drop-oldest' })
  const following = (async () => {
    for await (const event of statusStream) if (event.source !== bus.id) remote = snapshotOf(event)
    // The stream ends when the bus closes: so does the bridge.
    void close()
  })()

  // ---- the election: this context holds the connection while it wins ----
  const electing = elect(`crossbus:${bus.name}:nats:${settings.name}`, closing.signal, async (term) => {
    const origin = settings.origin ?? (await originId(`${bus.name}:${settings.name}`))
    if (term.aborted) return
    holderOrigin = origin
    const current = new Holder({ bus, settings, origin, report, changed })
    holder = current
    changed(true)
    try {
      await current.run(term)
    } finally {
      holder = undefined
    }
  }).catch((error: unknown) => {
    report({ type: 'nats-error', error, message: `crossbus: the NATS bridge's election failed: ${errorMessage(error)}` })
  })

  function stats(): NatsBridgeStats {
    if (holder !== undefined) return holder.stats(bus.id)
    const status: NatsStatus = closed !== undefined ? 'closed' : (remote?.status ?? 'standby')
    return { ...(remote ?? emptyStats()), status, holder: false }
  }

  function maxPayload(): number {
    return holder?.maxPayload ?? remote?.maxPayload ?? DEFAULT_MAX_PAYLOAD
  }

  function publish(topic: string, data: unknown, publishOptions?: PublishOptions): Receipt {
    if (exports(settings, topic) && publishOptions?.headers?.[SUBJECT_HEADER] === undefined) {
      const probe = { id: ID_PLACEHOLDER, topic, data, source: '', seq: 0, time: 0, headers: publishOptions?.headers ?? {}, redelivered: false } as BusEvent
      const carriage: Carriage =
        settings.jetstream !== undefined && publishOptions?.durable === true
          ? { kind: 'jetstream', msgID: ID_PLACEHOLDER }
          : { kind: 'core', ids: settings.ids }
      const message = encodeEvent(settings, settings.codec, probe, holderOrigin ?? ORIGIN_PLACEHOLDER, maxPayload(), carriage)
      if (message instanceof Error) throw message
    }
    return bus.publish(topic, data, publishOptions)
  }

  function close(): Promise<void> {
    closed ??= (async () => {
      closing.abort(new CrossbusError('CLOSED', 'the NATS bridge is closed'))
      clearTimeout(statusTimer)
      await statusStream.return?.()
      await Promise.all([electing, following])
    })()
    return closed
  }

  return {
    get status() {
      return stats().status
    },
    stats,
    publish,
    close,
    [asyncDisposeSymbol]: close,
  }
}

/** The longest id an event may have in practice (`source:seq`), for the size check before publish. */
const ID_PLACEHOLDER = 'x'.repeat(32)
const ORIGIN_PLACEHOLDER = 'x'.repeat(16)

function exports(settings: Settings, topic: string): boolean {
  if (isStatusTopic(topic)) return false
  const tokens = topic.split('.')
  return settings.exports.some((pattern) => matchTokens(pattern.tokens, tokens))
}

/** NO_STORE, at once: the outbox and the JetStream imports need the bus's durable log. */
function checkStore(bus: Bus): void {
  // A durable subscription that starts aborted checks the store and is never routed.
  const unused = new AbortController()
  unused.abort()
  try {
    bus.subscribe('crossbus.nats.store-check', () => {}, { durable: 'crossbus-nats-store-check', signal: unused.signal })
  } catch (error) {
    if (error instanceof CrossbusError && error.code === 'NO_STORE') {
      throw new CrossbusError('NO_STORE', 'natsBridge with jetstream needs a store on the bus: createBus({ store }) (the outbox is the durable log)')
    }
    throw error
  }
}

function emptyStats(): NatsBridgeStats {
  return {
    status: 'standby',
    holder: false,
    holderId: undefined,
    server: undefined,
    maxPayload: DEFAULT_MAX_PAYLOAD,
    exported: 0,
    imported: 0,
    queued: 0,
    outbox: 0,
    inFlight: 0,
    dropped: 0,
    tooLarge: 0,
    rejected: 0,
    duplicates: 0,
    acknowledgedDuplicates: 0,
    reconnects: 0,
    lastError: undefined,
  }
}

const NUMBERS = [
  'maxPayload',
  'exported',
  'imported',
  'queued',
  'outbox',
  'inFlight',
  'dropped',
  'tooLarge',
  'rejected',
  'duplicates',
  'acknowledgedDuplicates',
  'reconnects',
] as const
const STATUSES: readonly string[] = ['standby', 'connecting', 'connected', 'disconnected', 'closed']

/** The holder's snapshot from the status topic, checked field by field (another context's data); undefined if malformed. */
function snapshotOf(event: BusEvent): Snapshot | undefined {
  const data = event.data as Record<string, unknown> | null
  if (data === null || typeof data !== 'object') return undefined
  const snapshot: Record<string, unknown> = { ...emptyStats() }
  for (const field of NUMBERS) {
    const value = data[field]
    if (typeof value === 'number' && Number.isFinite(value) && value >= 0) snapshot[field] = value
  }
  if (typeof data.status === 'string' && STATUSES.includes(data.status)) snapshot.status = data.status
  snapshot.holderId = typeof data.holderId === 'string' ? data.holderId : event.source
  if (typeof data.server === 'string') snapshot.server = data.server
  if (typeof data.lastError === 'string') snapshot.lastError = data.lastError
  return snapshot as unknown as Snapshot
}

/** With `onDiagnostic` every report goes there; without, console.warn prints the first of each kind and place (status: losing the connection). */
function natsReporter(onDiagnostic: ((diagnostic: NatsDiagnostic) => void) | undefined): (diagnostic: NatsDiagnostic) => void {
  return reporter(onDiagnostic, (diagnostic) =>
    diagnostic.type === 'status' && diagnostic.status !== 'disconnected' ? undefined : (diagnostic.topic ?? diagnostic.subject ?? ''),
  )
}
