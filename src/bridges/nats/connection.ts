/**
 * The connection of the holder: dials with nats-core's `wsconnect` and
 * dials again, forever, with backoff and jitter, whenever the connection
 * ends (the client's own reconnect is off: by default it gives up about 20 s
 * after the server went away, and publishes made while it waits are lost).
 * A page coming back (`online`, `visibilitychange` to visible, `pageshow`)
 * dials at once, or checks a connection that may have died while it slept.
 */
import { type NatsConnection, wsconnect } from '@nats-io/nats-core'
import { backoffDelay, type ResolvedRetry } from '../../retry.js'
import type { Settings } from './options.js'
import type { NatsStatus } from './types.js'

/** How long a probe of a connection that may have died (after a page slept) waits for the server's pong. */
const PROBE_MS = 3000
/** A connection that lived less than this counts as a failed dial for the backoff (a server that accepts and drops). */
const STABLE_MS = 2000

export interface ConnectionHost {
  /** A connection is up: set up subscriptions and consumers, flush what waited. */
  connected(connection: NatsConnection): void
  /** It ended (closed by the server, the network, or a failed ping). */
  disconnected(): void
  status(status: NatsStatus, error?: unknown): void
}

export class Connection {
  readonly #settings: Settings
  readonly #host: ConnectionHost
  readonly #policy: ResolvedRetry
  #connection: NatsConnection | undefined
  /** Cancels a backoff wait: dial now. */
  #skipWait: (() => void) | undefined
  /** Connections made, the first included. */
  connections = 0

  constructor(settings: Settings, host: ConnectionHost) {
    this.#settings = settings
    this.#host = host
    this.#policy = { attempts: Number.POSITIVE_INFINITY, initialDelay: settings.initialDelay, maxDelay: settings.maxDelay, factor: 2, jitter: true }
  }

  /** The connection, while it is up. */
  get current(): NatsConnection | undefined {
    return this.#connection
  }

  /** Dials until `signal` aborts, then closes the connection. */
  async run(signal: AbortSignal): Promise<void> {
    const stopListening = this.#listenToPage(signal)
    let failures = 0
    try {
      while (!signal.aborted) {
        this.#host.status('connecting')
        let connection: NatsConnection
        try {
          connection = await this.#dial(signal)
        } catch (error) {
          if (signal.aborted) break
          failures++
          this.#host.status('disconnected', error)
          await this.#wait(backoffDelay(this.#policy, failures), signal)
          continue
        }
        if (signal.aborted) {
          await connection.close().catch(() => {})
          break
        }
        this.connections++
        this.#connection = connection
        const since = Date.now()
        this.#host.status('connected')
        this.#host.connected(connection)
        const closing = () => void connection.close().catch(() => {})
        signal.addEventListener('abort', closing, { once: true })
        const error = await connection.closed()
        signal.removeEventListener('abort', closing)
        this.#connection = undefined
        this.#host.disconnected()
        if (signal.aborted) break
        this.#host.status('disconnected', error ?? new Error('the connection closed'))
        failures = Date.now() - since < STABLE_MS ? failures + 1 : 0
        // A connection that lived: dial again at once (with a little jitter, so a server's clients do not all come back in one instant).
        await this.#wait(failures === 0 ? Math.random() * this.#settings.initialDelay : backoffDelay(this.#policy, failures), signal)
      }
    } finally {
      stopListening()
      const connection = this.#connection
      this.#connection = undefined
      await connection?.close().catch(() => {})
    }
  }

  /** Dial now instead of waiting; a connection that may have died while the page slept is checked. */
  wake(): void {
    if (this.#skipWait !== undefined) {
      this.#skipWait()
      return
    }
    const connection = this.#connection
    if (connection === undefined) return
    let timer: ReturnType<typeof setTimeout> | undefined
    const probe = new Promise<void>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`no answer to a ping within ${PROBE_MS} ms`)), PROBE_MS)
    })
    Promise.race([connection.flush(), probe]).then(
      () => clearTimeout(timer),
      () => {
        clearTimeout(timer)
        // Dead: closing it makes run() dial again at once.
        if (this.#connection === connection) void connection.close().catch(() => {})
      },
    )
  }

  async #dial(signal: AbortSignal): Promise<NatsConnection> {
    const { connection: options, servers, pingInterval, webSocket } = this.#settings
    const timeout = options.timeout ?? 10_000
    const dialing = wsconnect({
      ...(options as object),
      servers,
      timeout,
      // The bridge dials again itself, forever; the client's reconnect would give up and lose what it buffers.
      reconnect: false,
      pingInterval,
      maxPingOut: 2,
      // The server does not send this connection's own publishes back to its subscriptions.
      noEcho: true,
      ignoreClusterUpdates: false,
      wsFactory: (url: string) => Promise.resolve({ socket: new webSocket(url) as WebSocket, encrypted: /^wss:/i.test(url) }),
    })
    // wsconnect has its own timeout; this one also covers a socket that never opens nor fails.
    let timer: ReturnType<typeof setTimeout> | undefined
    let onAbort: (() => void) | undefined
    const bounded = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`no connection within ${timeout + 1000} ms`)), timeout + 1000)
      onAbort = () => reject(signal.reason)
      signal.addEventListener('abort', onAbort, { once: true })
    })
    try {
      return await Promise.race([dialing, bounded])
    } catch (error) {
      // A connection that arrives after we gave up on it is closed.
      dialing.then((late) => late.close().catch(() => {})).catch(() => {})
      throw error
    } finally {
      clearTimeout(timer)
      if (onAbort !== undefined) signal.removeEventListener('abort', onAbort)
    }
  }

  #wait(ms: number, signal: AbortSignal): Promise<void> {
    return new Promise((resolve) => {
      const done = (): void => {
        clearTimeout(timer)
        signal.removeEventListener('abort', done)
        this.#skipWait = undefined
        resolve()
      }
      const timer = setTimeout(done, ms)
      signal.addEventListener('abort', done, { once: true })
      this.#skipWait = done
    })
  }

  /** online, visibilitychange (to visible) and pageshow: the network or the page is back. */
  #listenToPage(signal: AbortSignal): () => void {
    const scope = globalThis as {
      addEventListener?: (type: string, listener: () => void, options: { signal: AbortSignal }) => void
      document?: { visibilityState?: string }
    }
    if (typeof scope.addEventListener !== 'function') return () => {}
    const listening = new AbortController()
    const options = { signal: AbortSignal.any([signal, listening.signal]) }
    const wake = (): void => this.wake()
    scope.addEventListener('online', wake, options)
    scope.addEventListener('pageshow', wake, options)
    // Fired at the document; it bubbles to the window.
    scope.addEventListener(
      'visibilitychange',
      () => {
        if (scope.document?.visibilityState !== 'hidden') wake()
      },
      options,
    )
    return () => listening.abort()
  }
}
