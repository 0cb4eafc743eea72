/** natsBridge's options, checked: each wrong one is a TypeError that names it, a malformed pattern INVALID_TOPIC. */
import { CrossbusError, quote } from '../../errors.js'
import { callback, duration, overflowPolicy, positiveInteger } from '../../options.js'
import type { Overflow } from '../../queue.js'
import { isReserved, parsePattern, parseTopic } from '../../topic.js'
import type { NatsBridgeOptions, NatsConnectionOptions, NatsDiagnostic, WebSocketClass } from './types.js'
import { jsonCodec, type NatsCodec } from './wire.js'

/** nats-server's default max_payload: what is assumed until a server says. */
export const DEFAULT_MAX_PAYLOAD: number = 1024 * 1024
/** Proxies close a WebSocket idle for 100 s. */
const MAX_PING_INTERVAL = 100_000

export interface Pattern {
  readonly pattern: string
  readonly tokens: readonly string[]
}

export interface Settings {
  readonly servers: string[]
  readonly prefix: string
  readonly exports: readonly Pattern[]
  readonly imports: readonly Pattern[]
  readonly jetstream: { readonly stream: string; readonly durable: string | undefined; readonly maxInFlight: number; readonly ackTimeout: number } | undefined
  readonly name: string
  readonly statusTopic: string
  readonly origin: string | undefined
  readonly webSocket: WebSocketClass
  readonly capacity: number
  readonly overflow: Overflow
  readonly initialDelay: number
  readonly maxDelay: number
  readonly pingInterval: number
  readonly codec: NatsCodec
  /** Core publishes carry the event's id and origin (header Crossbus-Id). */
  readonly ids: boolean
  readonly connection: NatsConnectionOptions
  readonly onDiagnostic: ((diagnostic: NatsDiagnostic) => void) | undefined
}

/** A JetStream name (stream, consumer): no whitespace, no `.`, `*`, `>`, `/` or `\`. */
const NAME = /^[^\s.*>/\\]+$/

function name(option: string, value: unknown): string {
  if (typeof value !== 'string' || !NAME.test(value)) {
    throw new TypeError(`crossbus: ${option} must be a name without whitespace, '.', '*', '>', '/' or '\\', got ${quote(value)}`)
  }
  return value
}

function patterns(option: string, value: unknown): Pattern[] {
  if (value === undefined) return []
  if (!Array.isArray(value)) throw new TypeError(`crossbus: ${option} must be an array of topic patterns`)
  const seen = new Set<string>()
  const result: Pattern[] = []
  for (const pattern of value as unknown[]) {
    const tokens = parsePattern(pattern)
    if (isReserved(pattern as string)) throw new CrossbusError('INVALID_TOPIC', `${option} pattern ${quote(pattern)}: topics starting with $ are the bus's own`)
    if (seen.has(pattern as string)) continue
    seen.add(pattern as string)
    result.push({ pattern: pattern as string, tokens })
  }
  return result
}

export function resolveSettings(options: NatsBridgeOptions): Settings {
  if (options === null || typeof options !== 'object') throw new TypeError('crossbus: natsBridge options must be an object')
  const servers = typeof options.servers === 'string' ? [options.servers] : options.servers
  if (!Array.isArray(servers) || servers.length === 0 || !servers.every((server) => typeof server === 'string' && /^wss?:\/\/./i.test(server))) {
    throw new TypeError(`crossbus: servers must be one or more WebSocket URLs (ws:// or wss://), got ${quote(options.servers)}`)
  }
  let prefix = ''
  if (options.prefix !== undefined) {
    parseTopic(options.prefix)
    if (isReserved(options.prefix)) throw new CrossbusError('INVALID_TOPIC', `prefix ${quote(options.prefix)}: subjects starting with $ are the server's own`)
    prefix = options.prefix
  }
  const jetstream = options.jetstream
  if (jetstream !== undefined && (jetstream === null || typeof jetstream !== 'object')) throw new TypeError('crossbus: jetstream must be an object')
  const bridgeName = options.name === undefined ? 'nats' : name('name', options.name)
  const webSocket = options.webSocket ?? (globalThis as { WebSocket?: WebSocketClass }).WebSocket
  if (typeof webSocket !== 'function') {
    // nats-core's wsconnect would wait forever for a socket that cannot exist (Node 20 has no global WebSocket).
    throw new TypeError(
      "crossbus: natsBridge needs a WebSocket and this runtime has none: pass webSocket (in Node 20, `import { WebSocket } from 'ws'`, or run node --experimental-websocket)",
    )
  }
  const pingInterval = duration('pingInterval', options.pingInterval) ?? 30_000
  if (pingInterval < 1000 || pingInterval >= MAX_PING_INTERVAL) {
    throw new TypeError(`crossbus: pingInterval must be at least 1000 ms and under 100 000 ms (proxies close idle WebSockets at 100 s), got ${pingInterval}`)
  }
  const reconnect = options.reconnect ?? {}
  const initialDelay = duration('reconnect.initialDelay', reconnect.initialDelay) ?? 250
  const maxDelay = duration('reconnect.maxDelay', reconnect.maxDelay) ?? 10_000
  if (maxDelay < initialDelay) throw new TypeError('crossbus: reconnect.maxDelay must not be less than reconnect.initialDelay')
  const codec = options.codec ?? jsonCodec
  if (codec === null || typeof codec !== 'object') throw new TypeError('crossbus: codec must be an object with encode() and decode()')
  callback('codec.encode', codec.encode)
  callback('codec.decode', codec.decode)
  if (options.onDiagnostic !== undefined) callback('onDiagnostic', options.onDiagnostic)
  if (options.ids !== undefined && typeof options.ids !== 'boolean') throw new TypeError(`crossbus: ids must be a boolean, got ${quote(options.ids)}`)
  const connection = options.connection ?? {}
  if (connection === null || typeof connection !== 'object') throw new TypeError('crossbus: connection must be an object')
  duration('connection.timeout', connection.timeout)
  if (options.origin !== undefined && (typeof options.origin !== 'string' || options.origin.length === 0 || options.origin.length > 64)) {
    throw new TypeError(`crossbus: origin must be a string of 1 to 64 characters, got ${quote(options.origin)}`)
  }
  const exports = patterns('export', options.export)
  const imports = patterns('import', options.import)
  return {
    servers,
    prefix,
    exports,
    imports,
    jetstream:
      jetstream === undefined
        ? undefined
        : {
            stream: name('jetstream.stream', jetstream.stream),
            durable: jetstream.durable === undefined ? undefined : name('jetstream.durable', jetstream.durable),
            maxInFlight: positiveInteger('jetstream.maxInFlight', jetstream.maxInFlight, 256),
            ackTimeout: duration('jetstream.ackTimeout', jetstream.ackTimeout) ?? 5000,
          },
    name: bridgeName,
    statusTopic: `crossbus.${bridgeName}.status`,
    origin: options.origin,
    webSocket,
    capacity: positiveInteger('capacity', options.capacity, 8192),
    overflow: overflowPolicy('overflow', options.overflow, 'drop-newest'),
    initialDelay,
    maxDelay,
    pingInterval,
    codec,
    ids: options.ids ?? jetstream !== undefined,
    connection,
    onDiagnostic: options.onDiagnostic,
  }
}

/** The bridges' status topics (`crossbus.<name>.status`): never exported, never imported. */
export function isStatusTopic(topic: string): boolean {
  return topic.startsWith('crossbus.') && topic.endsWith('.status') && topic.split('.').length === 3
}
