/**
 * The context that holds the connection, for as long as it holds it: the
 * exporter and the importer over one connection engine. Built when this
 * context wins the election, run until its term ends.
 */
import type { JetStreamClient, JetStreamManager } from '@nats-io/jetstream'
import type { NatsConnection } from '@nats-io/nats-core'
import { errorMessage, quote } from '../../errors.js'
import type { Bus } from '../../types.js'
import { Connection } from './connection.js'
import { type Counters, createCounters } from './counters.js'
import { Exporter } from './exporter.js'
import { Importer } from './importer.js'
import { DEFAULT_MAX_PAYLOAD, type Settings } from './options.js'
import type { NatsBridgeStats, NatsDiagnostic, NatsStatus } from './types.js'

export interface HolderHost {
  readonly bus: Bus
  readonly settings: Settings
  readonly origin: string
  report(diagnostic: NatsDiagnostic): void
  /** The status changed (`urgent`) or counters did. */
  changed(urgent: boolean): void
}

type JetStreamModule = typeof import('@nats-io/jetstream')

export class Holder {
  readonly counters: Counters = createCounters()
  readonly #host: HolderHost
  readonly #connection: Connection
  readonly #exporter: Exporter
  readonly #importer: Importer
  status: NatsStatus = 'connecting'
  lastError: string | undefined
  server: string | undefined
  maxPayload: number = DEFAULT_MAX_PAYLOAD
  /** Loaded once, the first time a connection needs it: an app without JetStream never loads it. */
  #jetstream: Promise<JetStreamModule> | undefined

  constructor(host: HolderHost) {
    this.#host = host
    const changed = (): void => host.changed(false)
    const parts = {
      bus: host.bus,
      settings: host.settings,
      counters: this.counters,
      origin: host.origin,
      report: (d: NatsDiagnostic) => host.report(d),
      changed,
    }
    this.#exporter = new Exporter({ ...parts, maxPayload: () => this.maxPayload })
    this.#importer = new Importer(parts)
    this.#connection = new Connection(host.settings, {
      connected: (connection) => this.#connected(connection),
      disconnected: () => {
        this.#exporter.disconnected()
        this.#importer.disconnected()
      },
      status: (status, error) => this.#status(status, error),
    })
  }

  /** Subscribes to the exports, then connects and reconnects until `term` aborts; then shuts down. */
  async run(term: AbortSignal): Promise<void> {
    this.#exporter.start()
    try {
      await this.#connection.run(term)
    } finally {
      this.#exporter.stop()
      this.#importer.stop()
    }
  }

  stats(holderId: string): NatsBridgeStats {
    const { counters } = this
    return {
      status: this.status,
      holder: true,
      holderId,
      server: this.server,
      maxPayload: this.maxPayload,
      ...counters,
      queued: this.#exporter.queued,
      outbox: this.#exporter.outbox,
      inFlight: this.#exporter.inFlight,
      reconnects: Math.max(0, this.#connection.connections - 1),
      lastError: this.lastError,
    }
  }

  #status(status: NatsStatus, error?: unknown): void {
    if (error !== undefined) this.lastError = errorMessage(error)
    if (status === this.status && error === undefined) return
    const previous = this.status
    this.status = status
    const servers = this.#host.settings.servers.join(', ')
    const message =
      status === 'connected'
        ? `crossbus: the NATS bridge is connected to ${this.server}`
        : status === 'disconnected'
          ? `crossbus: the NATS bridge lost ${previous === 'connected' ? 'its connection to' : 'its way to'} ${servers}${this.lastError === undefined ? '' : ` (${this.lastError})`}; it keeps trying, with backoff`
          : `crossbus: the NATS bridge is connecting to ${servers}`
    this.#host.report({ type: 'status', status, message, ...(error === undefined ? {} : { error }) })
    this.#host.changed(true)
  }

  #connected(connection: NatsConnection): void {
    this.server = connection.getServer()
    const info = connection.info
    if (info !== undefined && Number.isInteger(info.max_payload) && info.max_payload > 0) this.maxPayload = info.max_payload
    const { settings } = this.#host
    if (settings.jetstream === undefined) {
      this.#exporter.connected(connection, undefined)
      this.#importer.connected(connection, undefined, undefined)
      return
    }
    // Core publishes wait for nothing; the outbox and the consumers wait for the JetStream client.
    this.#exporter.connected(connection, undefined)
    void this.#connectJetStream(connection, settings.jetstream.stream)
  }

  async #connectJetStream(connection: NatsConnection, stream: string): Promise<void> {
    let client: JetStreamClient
    let manager: JetStreamManager
    try {
      const module = await (this.#jetstream ??= import('@nats-io/jetstream'))
      client = module.jetstream(connection)
      manager = await module.jetstreamManager(connection, { checkAPI: false })
    } catch (error) {
      this.#host.report({ type: 'nats-error', error, message: `crossbus: the NATS bridge cannot use JetStream: ${errorMessage(error)}` })
      return
    }
    if (this.#connection.current !== connection) return
    this.#exporter.connected(connection, client)
    this.#importer.connected(connection, client, manager)
    // A missing stream is the usual first mistake: said once per connection, the outbox keeps its events meanwhile.
    manager.streams.info(stream).catch((error: unknown) => {
      if (this.#connection.current !== connection) return
      this.#host.report({
        type: 'nats-error',
        error,
        message: `crossbus: JetStream stream ${quote(stream)} is not there (${errorMessage(error)}): create it with subjects covering the exported ones; durable events wait in the log until then`,
      })
    })
  }
}
