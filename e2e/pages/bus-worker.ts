// A dedicated worker with one bus linked to its page by messagePort(self).
// The first message carries the bus name, a control port and maybe a queue group to join (see kit.startWorker);
// it is taken before the bus listens, so the bus never sees it.
import { Ctx, messagePort, serve } from './kit.ts'

// The DOM lib has no worker scope types: a dedicated worker's self posts and listens like a Worker.
const scope = self as unknown as Worker

scope.addEventListener(
  'message',
  (message: MessageEvent<{ name: string; control: MessagePort; join?: { pattern: string; queue: string } }>) => {
    const { name, control, join } = message.data
    const ctx = new Ctx({ name, transports: [messagePort(scope)] })
    // As a worker script does: its bus and its queue group membership at once, in its first task.
    if (join !== undefined) ctx.record(join.pattern, { queue: join.queue, capacity: 5000 })
    serve(control, ctx)
  },
  { once: true },
)
