// A dedicated worker with a bus (BroadcastChannel to its page's context, the default) and maybe a NATS bridge;
// the first message carries the control port (see nats-kit.startNatsWorker), taken before anything listens.
import { serveNats } from './nats-kit.ts'

const scope = self as unknown as Worker
scope.addEventListener('message', (message: MessageEvent<{ control: MessagePort }>) => serveNats(message.data.control), { once: true })
