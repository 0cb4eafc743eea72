// A crossbus context in a Node worker thread, for worker-threads.node.test.ts.
import { parentPort, workerData } from 'node:worker_threads'
import { createBus } from '../src/bus.js'
import { broadcastChannel } from '../src/transports/broadcast-channel.js'
import { messagePort } from '../src/transports/message-port.js'

const { name, channel } = workerData as { name: string; channel: string }
if (parentPort === null) throw new Error('test-worker-entry runs in a worker thread (test/worker-entry.ts)')

const bus = createBus({ name, transports: [messagePort(parentPort), broadcastChannel({ channel })] })
bus.reply('worker.echo', (event) => ({ echoed: event.data, by: bus.id }))
bus.subscribe('to.worker', (event) => {
  bus.publish('from.worker', event.data)
})
bus.subscribe('worker.close', () => {
  void bus.close()
})
