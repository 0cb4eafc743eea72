/**
 * The structural seams between the core and the platform: a Transport opens an
 * Endpoint (or an EndpointSource of endpoints), and the core's link speaks the
 * wire protocol over it. This module is a leaf: it imports nothing but types.
 */
import type { Overflow } from './queue.js'

/**
 * The platform side of a link, wrapped by an adapter (broadcastChannel(),
 * messagePort()): a structured-clone `post` and a message listener.
 */
export interface Endpoint {
  /** 'broadcast': one channel to every peer (BroadcastChannel); 'point': one peer (MessagePort). */
  readonly kind: 'broadcast' | 'point'
  /**
   * true when the peer is another origin (a cross-origin Window): it may then
   * act only as the contexts behind this endpoint, never for this origin's.
   * Same-origin peers are trusted as the web trusts them. Default false.
   */
  readonly crossOrigin?: boolean
  /** Sends a message; may throw (DataCloneError, closed port). */
  post(message: unknown): void
  /** Starts delivering incoming messages. `reject` refuses a message before decoding (wrong origin). */
  listen(receive: (message: unknown) => void, reject: (reason: string) => void): void
  close(): void
  /**
   * Node: whether this endpoint keeps the thread or process alive (a ref'd
   * port or channel). The bus keeps it alive while it has subscriptions that
   * other contexts can reach, and lets go when it has none. Optional: browsers
   * have nothing to hold.
   */
  keepAlive?(keep: boolean): void
}

/**
 * Endpoints that appear over time, one per context that connects: a
 * SharedWorker's ports, a service worker's pages. Each becomes a link of its own.
 */
export interface EndpointSource {
  readonly kind: 'source'
  /** Starts calling `accept` with the endpoint of each context that connects. */
  accept(accept: (endpoint: Endpoint) => void): void
  close(): void
}

/** A wire to other contexts, passed to `createBus({ transports })`. */
export interface Transport {
  readonly name: string
  /** Events waiting to be sent. Default 8192. */
  readonly capacity?: number | undefined
  readonly overflow?: Overflow | undefined
  /** Events per message at most. Default 512. */
  readonly batch?: number | undefined
  /** Opens the wire; called once by the bus, with its name and id. */
  open(context: { readonly name: string; readonly id: string }): Endpoint | EndpointSource
}

/** Events a link holds waiting to be sent, by default. */
export const DEFAULT_LINK_CAPACITY = 8192
/** Events per posted message, by default. */
export const DEFAULT_BATCH = 512
/** Events a point link may send before the receiver's first grant. */
export const INITIAL_CREDIT = 4096
/** Heartbeat period (hello on every link). */
export const HEARTBEAT_MS = 1000
/** A neighbor silent for this long is gone. */
export const PEER_TIMEOUT_MS = 5000
/**
 * How long a new link takes every event this context publishes, whoever wants
 * it, before it knows its peers' interest: until the first peer answers its
 * hello (live peers answer at once), or this long. A shared or service worker
 * holds what it publishes for PEER_TIMEOUT_MS for the pages that connect (they
 * come after its script ran).
 */
export const DISCOVERY_MS = 1000
