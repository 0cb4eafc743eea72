// Helpers of the NATS bridge's tests (Node): a raw nats-core client over `ws`,
// and what a JetStream stream holds.
import { jetstreamManager } from '@nats-io/jetstream'
import { type NatsConnection, wsconnect } from '@nats-io/nats-core'
import { WebSocket } from 'ws'

export { startNatsServer, type NatsTestServer } from './nats-server.mjs'

/** A raw client (no bridge) on the server's WebSocket port. */
export function rawClient(wsUrl: string): Promise<NatsConnection> {
  return wsconnect({
    servers: wsUrl,
    reconnect: false,
    wsFactory: (url: string) => Promise.resolve({ socket: new WebSocket(url) as unknown as globalThis.WebSocket, encrypted: false }),
  })
}

/** Creates a stream (file storage) capturing `subjects`. */
export async function createStream(connection: NatsConnection, name: string, subjects: string[]): Promise<void> {
  const manager = await jetstreamManager(connection)
  await manager.streams.add({ name, subjects })
}

/** Every message the stream holds, oldest first: subject, Nats-Msg-Id, data as text. */
export async function streamContents(connection: NatsConnection, name: string): Promise<{ subject: string; msgId: string; data: string }[]> {
  const manager = await jetstreamManager(connection)
  const { state } = await manager.streams.info(name)
  const contents: { subject: string; msgId: string; data: string }[] = []
  for (let seq = state.first_seq; seq <= state.last_seq && state.messages > 0; seq++) {
    const message = await manager.streams.getMessage(name, { seq })
    if (message === null) continue
    contents.push({ subject: message.subject, msgId: message.header?.get('Nats-Msg-Id') ?? '', data: new TextDecoder().decode(message.data) })
  }
  return contents
}

/** How many messages the stream holds (one request, for polling). */
export async function streamCount(connection: NatsConnection, name: string): Promise<number> {
  const manager = await jetstreamManager(connection)
  return (await manager.streams.info(name)).state.messages
}
