// A SharedWorker hub: one bus, linked by messagePort(self) to every tab that
// connects (a link per connection). Its name is the SharedWorker's name.
// It answers 'hub.info' with what it sees, so tests can look inside it.
import { Ctx, messagePort, type MessagePortTarget } from './kit.ts'

// The DOM lib has no SharedWorkerGlobalScope: the adapter recognises it by `onconnect`.
const scope = self as unknown as MessagePortTarget & { name: string }
const ctx = new Ctx({ name: scope.name, transports: [messagePort(scope)] })
ctx.bus.reply('hub.info', () => ({
  by: ctx.id,
  links: ctx.bus.stats().transports.length,
  peers: ctx.peerIds(),
}))
