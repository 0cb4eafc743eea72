export interface NatsTestServer {
  readonly host: string
  readonly port: number
  readonly wsPort: number
  /** `ws://127.0.0.1:<wsPort>`: for nats-core's wsconnect. */
  readonly wsUrl: string
  /** `nats://127.0.0.1:<port>`. */
  readonly url: string
  readonly storeDir: string
  readonly pid: number | undefined
  readonly running: boolean
  /** Starts (or restarts, same ports and store) the process; resolves when it accepts clients. */
  start(): Promise<void>
  /** `kill -9`; resolves once the process is gone. */
  kill(): Promise<void>
  /** SIGTERM (SIGKILL after 5 s). */
  stop(): Promise<void>
  /** Kills the process and removes its store. */
  dispose(): Promise<void>
}

export declare function natsServerBinary(): string
export declare function freePort(): Promise<number>
export declare function startNatsServer(options?: { maxPayload?: number; jetstream?: boolean }): Promise<NatsTestServer>
