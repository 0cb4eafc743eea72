// Global set-up of the workerd project: a real nats-server (127.0.0.1, JetStream, WebSocket) for
// src/bridges/nats.workerd.test.ts, and a Node process's bus on the same subjects, bridged with `ws`:
// it answers every `edge.ping` with an `edge.pong` carrying the same data.
// The server's WebSocket URL reaches the worker through inject('natsWsUrl').
import type { TestProject } from 'vitest/node'
import { WebSocket } from 'ws'
import { natsBridge } from '../src/bridges/nats.js'
import { createBus } from '../src/bus.js'
import { createStream, rawClient, startNatsServer } from './nats.js'

declare module 'vitest' {
  export interface ProvidedContext {
    natsWsUrl: string
  }
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const server = await startNatsServer()
  const admin = await rawClient(server.wsUrl)
  await createStream(admin, 'EDGE', ['wd.>'])
  await admin.close()
  const bus = createBus({ name: 'node-responder', transports: [] })
  bus.subscribe('edge.ping', (event) => void bus.publish('edge.pong', event.data))
  const bridge = natsBridge(bus, {
    servers: server.wsUrl,
    webSocket: WebSocket,
    prefix: 'wd',
    import: ['edge.ping'],
    export: ['edge.pong'],
    name: 'responder',
    onDiagnostic: () => {},
  })
  project.provide('natsWsUrl', server.wsUrl)
  return async () => {
    await bridge.close()
    await bus.close()
    await server.dispose()
  }
}
