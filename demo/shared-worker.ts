// The shared worker every tab of the origin connects to: one bus, linked by
// messagePort(self) to each connecting tab (a link per tab, closed when it leaves).
import { messagePort, type MessagePortTarget } from '../src/transports/index.ts'
import { startContext } from './context.ts'

// The DOM lib has no SharedWorkerGlobalScope: the adapter recognises it by `onconnect`.
const scope = self as unknown as MessagePortTarget

startContext({ kind: 'shared-worker', transports: [messagePort(scope)] })
