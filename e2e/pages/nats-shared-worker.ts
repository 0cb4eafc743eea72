// A shared worker with a bus (BroadcastChannel, the default) and maybe a NATS bridge, made for its first caller;
// every connecting page may drive it (see nats-kit.startNatsSharedWorker).
import { NatsCtx, serveNats, type NatsSetup } from './nats-kit.ts'

let shared: NatsCtx | undefined
const scope = self as unknown as { onconnect: ((event: MessageEvent) => void) | null }
scope.onconnect = (event) => {
  const port = event.ports[0] as MessagePort
  serveNats(port, (setup: NatsSetup) => (shared ??= new NatsCtx(setup)))
}
