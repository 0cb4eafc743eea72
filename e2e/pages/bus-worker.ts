// A dedicated worker with one bus linked to its page by messagePort(self).
// The first message carries the bus name and a control port (see kit.startWorker);
// it is taken before the bus listens, so the bus never sees it.
import { Ctx, messagePort, serve } from './kit.ts'

// The DOM lib has no worker scope types: a dedicated worker's self posts and listens like a Worker.
const scope = self as unknown as Worker

scope.addEventListener(
  'message',
  (message: MessageEvent<{ name: string; control: MessagePort }>) => {
    const { name, control } = message.data
    serve(control, new Ctx({ name, transports: [messagePort(scope)] }))
  },
  { once: true },
)
