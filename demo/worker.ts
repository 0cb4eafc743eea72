// The dedicated worker each tab starts: one bus, linked to its tab by messagePort(self).
// Its first message is a MessagePort on which it says its bus id, so the tab
// knows which worker card is its own; the message is taken before the bus
// listens, so the bus never sees it.
import { messagePort } from '../src/transports/index.ts'
import { startContext } from './context.ts'

// The DOM lib has no worker scope types: a dedicated worker's self posts and listens like a Worker.
const scope = self as unknown as Worker

scope.addEventListener(
  'message',
  (message: MessageEvent<unknown>) => {
    const context = startContext({ kind: 'worker', transports: [messagePort(scope)], links: ['port: its tab'] })
    const reply = message.data
    if (reply instanceof MessagePort) {
      reply.postMessage(context.bus.id)
      reply.close()
    }
  },
  { once: true },
)
