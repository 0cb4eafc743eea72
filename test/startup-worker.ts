// A Node worker thread that starts a bus and at once does what its workerData
// says (src/startup.node.test.ts): publish as it starts, or serve jobs.
import { parentPort, workerData } from 'node:worker_threads'
import { createBus } from '../src/bus.js'
import { broadcastChannel } from '../src/transports/broadcast-channel.js'
import { messagePort } from '../src/transports/message-port.js'

interface StartupWork {
  name: string
  channel: string
  /** How the worker is linked: its parentPort, or a BroadcastChannel only. */
  link: 'port' | 'broadcast'
  /**
   * 'publish': publish at module evaluation, in a microtask and in a timer;
   * 'serve': process jobs until told to quit; 'pool': a member of queue group
   * 'pool' for jobs.run, saying who did each on jobs.done, and a replier on work.*.
   */
  work: 'publish' | 'serve' | 'pool'
  keepAlive?: boolean
}

const { name, channel, link, work, keepAlive } = workerData as StartupWork
if (parentPort === null) throw new Error('test/startup-worker.ts runs in a worker thread')
const transports = link === 'port' ? [messagePort(parentPort)] : [broadcastChannel({ channel })]
const bus = createBus({ name, transports, ...(keepAlive === undefined ? {} : { keepAlive }) })

if (work === 'publish') {
  bus.publish('started.evaluation', bus.id)
  queueMicrotask(() => bus.publish('started.microtask', bus.id))
  setTimeout(() => bus.publish('started.timer', bus.id), 0)
} else if (work === 'pool') {
  bus.process('jobs.run', (event) => void bus.publish('jobs.done', { by: bus.id, job: event.data }), { queue: 'pool' })
  bus.reply('work.*', async (event) => {
    await new Promise((resolve) => setTimeout(resolve, 50))
    return { by: bus.id, data: event.data }
  })
} else {
  bus.process('jobs.run', (event) => {
    bus.publish('jobs.done', event.data)
  })
  bus.subscribe('jobs.quit', () => {
    void bus.close()
  })
}
