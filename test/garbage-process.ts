// A Node process whose bus is linked to a worker thread that posts garbage,
// for hostile.node.test.ts: before issue 11, the first such frame threw in the
// link's message listener and Node ended the process with status 1. Prints
// the bus's counts as JSON once the worker's one good hello has arrived.
import { Worker } from 'node:worker_threads'
import { createBus } from '../src/bus.js'
import { messagePort } from '../src/transports/message-port.js'

const worker = new Worker(
  `
  const { parentPort } = require('node:worker_threads')
  const base = { crossbus: 1, bus: 'garbage', from: 'worker' }
  const record = { id: 'worker', version: 1, patterns: ['x'], replies: [] }
  const holes = []
  holes.length = 2
  holes[1] = record
  const noTopic = []
  noTopic.length = 1
  const frames = [
    { crossbus: { toString: 0 } },
    { ...base, kind: { toString: 0 } },
    { ...base, kind: 'hello', routes: holes },
    { ...base, kind: 'hello', routes: [{ ...record, patterns: holes }] },
    { ...base, kind: 'events', sources: ['worker'], topics: noTopic, src: [0], seq: [1], topic: [0], time: [0], data: ['forged'] },
    { ...base, kind: 'events', sources: ['worker'], topics: ['x'], src: [0], seq: [{ valueOf: 0 }], topic: [0], time: [0], data: [1] },
    { ...base, kind: 'retained', patterns: holes, ask: 1 },
  ]
  for (const frame of frames) parentPort.postMessage(frame)
  parentPort.postMessage({ ...base, kind: 'hello', routes: [{ ...record, version: 2 }] })
  `,
  { eval: true },
)

let joined!: () => void
const peerJoined = new Promise<void>((resolve) => {
  joined = resolve
})
const bus = createBus({
  name: 'garbage',
  transports: [messagePort(worker)],
  onDiagnostic: (diagnostic) => {
    if (diagnostic.type === 'peer-join') joined()
  },
})
const timeout = setTimeout(() => joined(), 5000)
await peerJoined
clearTimeout(timeout)
process.stdout.write(JSON.stringify({ rejected: bus.stats().rejected, peers: bus.peers().map((peer) => peer.id) }))
await bus.close()
await worker.terminate()
