import type { Overflow } from '../../queue.js'
import type { PublishOptions, Receipt } from '../../types.js'
import type { NatsCodec } from './wire.js'

export type { NatsCodec }

/**
 * Where the bridge stands, as `stats().status`:
 * - `standby`: another context of this origin holds the connection (this one takes over if it dies);
 * - `connecting`: dialing a server; `connected`; `disconnected`: waiting to dial again (with backoff);
 * - `closed`: `close()` was called or the bus closed.
 */
export type NatsStatus = 'standby' | 'connecting' | 'connected' | 'disconnected' | 'closed'

/** The WebSocket class the bridge dials with (Node 20 has none: pass `WebSocket` from the `ws` package). */
export type WebSocketClass = new (url: string) => object

/** Options of the connection passed to nats-core's `wsconnect` (authentication and naming). */
export interface NatsConnectionOptions {
  /** Client name, shown by the server's monitoring. */
  name?: string
  user?: string
  pass?: string
  token?: string
  /** A nats-core authenticator (`jwtAuthenticator`, `nkeyAuthenticator`, `credsAuthenticator`, …). */
  authenticator?: unknown
  /** Milliseconds one dial may take. Default 10 000. */
  timeout?: number
}

export interface NatsJetStreamOptions {
  /**
   * The stream that captures the exported subjects (it must exist; the bridge
   * reports a missing one and keeps its events). Exported durable events are
   * published to it with their event id as `Nats-Msg-Id`.
   */
  stream: string
  /**
   * A durable JetStream consumer on `stream`: imports come from it and each
   * message is acked once the event is committed to the local store. Without
   * it, imports come from core NATS subscriptions. One consumer per import
   * pattern: named `durable` for one pattern, `durable_<n>` for the n-th of several.
   */
  durable?: string
  /** Exported durable events awaiting their PubAck at once, at most. Default 256. */
  maxInFlight?: number
  /** Milliseconds to wait for one PubAck before publishing again (same Nats-Msg-Id). Default 5000. */
  ackTimeout?: number
}

export interface NatsBridgeOptions {
  /** WebSocket URLs of the servers (`ws://` or `wss://`). */
  servers: string | string[]
  /** Subject tokens before every topic: topic `orders.created` is subject `prefix.orders.created`. Default: none. */
  prefix?: string
  /** Topic patterns whose events go to NATS. Default: none. */
  export?: string[]
  /** Topic patterns imported from NATS (`prefix.pattern`) as local events. Default: none. */
  import?: string[]
  /** Use JetStream: durable events become an outbox acked by the stream. Needs a store on the bus. */
  jetstream?: NatsJetStreamOptions
  /**
   * Names this bridge within its origin: the lock its contexts elect a holder
   * by, its status topic (`crossbus.<name>.status`) and its outbox consumers.
   * Give each bridge of one origin its own. Default 'nats'.
   */
  name?: string
  /** The device's origin id on the wire (events never come back to it). Default: a random id kept in IndexedDB where there is one. */
  origin?: string
  /** WebSocket implementation. Default: the global one; without either, natsBridge throws a TypeError at once. */
  webSocket?: WebSocketClass
  /** Non-durable events waiting for a connection, at most. Default 8192. */
  capacity?: number
  /** What a full waiting queue does. Default 'drop-newest'. */
  overflow?: Overflow
  /** Reconnect backoff: first wait and largest wait in ms, with jitter. Default 250 and 10 000. Reconnects never stop. */
  reconnect?: { initialDelay?: number; maxDelay?: number }
  /** Milliseconds between pings; under 100 000, as proxies close idle WebSockets at 100 s. Default 30 000. */
  pingInterval?: number
  /** Payload encoding. Default: JSON in UTF-8. */
  codec?: NatsCodec
  /**
   * Core publishes carry the event's id and this origin (one header,
   * `Crossbus-Id: <id>@<origin>`), so receivers can refuse repeats and name the
   * event's source (`x-crossbus-nats-id`). JetStream publishes always do.
   * Default: true with `jetstream` (a stream may capture core publishes and
   * bring them back to this origin), false without: a small event's header
   * doubles its size on the wire, and core NATS never repeats a message
   * (the server does not echo this connection's own: `noEcho`). An event with
   * headers of its own always carries it.
   */
  ids?: boolean
  /** Authentication and naming of the connection. */
  connection?: NatsConnectionOptions
  /** Receives every status change, drop and refused message. Default: console.warn, once per kind and place. */
  onDiagnostic?: (diagnostic: NatsDiagnostic) => void
}

export type NatsDiagnosticType =
  /** The connection's status changed. */
  | 'status'
  /** Events that did not reach NATS: the waiting queue overflowed, too large, not encodable. */
  | 'drop'
  /** A message from NATS was refused: malformed headers or payload, a subject that is no topic. */
  | 'bad-message'
  /** A server or JetStream error the bridge works around (it retries). */
  | 'nats-error'

export interface NatsDiagnostic {
  readonly type: NatsDiagnosticType
  readonly message: string
  readonly status?: NatsStatus
  readonly topic?: string
  readonly subject?: string
  readonly count?: number
  readonly error?: unknown
}

/** The holder's counters (since it took over), seen from any context of the origin. */
export interface NatsBridgeStats {
  readonly status: NatsStatus
  /** This context holds the connection. */
  readonly holder: boolean
  /** Bus id of the context that holds it, when known. */
  readonly holderId: string | undefined
  /** The server connected to. */
  readonly server: string | undefined
  /** The server's max_payload in bytes (1 MiB until a server says otherwise). */
  readonly maxPayload: number
  /** Events handed to NATS: core publishes written, JetStream publishes acked (duplicates included). */
  readonly exported: number
  /** Messages published into the bus. */
  readonly imported: number
  /** Non-durable events waiting for a connection. */
  readonly queued: number
  /** Durable events in the log not yet acked by the stream, in flight included (positions its consumers have not read yet count whatever their topic). */
  readonly outbox: number
  /** JetStream publishes awaiting their PubAck. */
  readonly inFlight: number
  /** Events lost on the way out: the waiting queue overflowed, too large, not encodable. */
  readonly dropped: number
  /** Of which over the server's max_payload. */
  readonly tooLarge: number
  /** Messages refused: malformed headers or payload, a subject that is no topic. */
  readonly rejected: number
  /** Messages not imported because this origin had them already: its own events back, or an event id seen before. */
  readonly duplicates: number
  /** PubAcks that said the stream had the message already (a publish repeated after a crash or a lost ack). */
  readonly acknowledgedDuplicates: number
  /** Connections made after the first. */
  readonly reconnects: number
  readonly lastError: string | undefined
}

/** A running bridge. Every method works detached. */
export interface NatsBridge {
  /** The status now (as `stats().status`). */
  readonly status: NatsStatus
  stats(): NatsBridgeStats
  /**
   * `bus.publish`, first checking what the bridge will send for an exported
   * topic: throws PAYLOAD_TOO_LARGE over the server's max_payload, and a
   * TypeError for data the codec cannot encode or a header NATS cannot carry.
   */
  publish(topic: string, data: unknown, options?: PublishOptions): Receipt
  /** Stops: this context's connection (if it holds it) closes and another context takes over. Idempotent. */
  close(): Promise<void>
  [Symbol.asyncDispose](): Promise<void>
}
