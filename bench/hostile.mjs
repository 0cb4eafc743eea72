// One hostile-input case of `npm run bench` (issue 11), measured in this
// process and printed as JSON:
//   node --expose-gc bench/hostile.mjs '{"case":"sources","dist":"/path/to/dist"}'
// A context (one bus, NODE_ENV=production) is linked by a MessageChannel to a
// raw peer that floods it with frames, as a page's BroadcastChannel or a
// worker's port could. Frames go in slices, each slice followed by a marker
// event the bus must deliver, so the bus has taken everything before the next
// slice (no polling, no sleeping). The heap is measured after gc, against a
// baseline taken from the same context once linked, before the flood. `dist`
// names the build to load (this tree's dist/ by default), so the same cases
// run against another build in the same sitting (run-hostile.mjs --baseline).

import { MessageChannel } from 'node:worker_threads'
import { pathToFileURL } from 'node:url'

const spec = JSON.parse(process.argv[2] ?? '{}')
const dist = spec.dist ?? new URL('../dist/', import.meta.url).pathname
const { createBus } = await import(pathToFileURL(`${dist}/index.js`).href)
const { messagePort } = await import(pathToFileURL(`${dist}/transports.js`).href)

const NAME = 'flood'
const RAW = 'raw'
/** Events per frame: the new wire limit, which the old build takes too. */
const FRAME = 4096
/** Frames posted before the bus must have taken them (a marker is delivered). */
const SLICE = 32

const gc = () => {
  for (let round = 0; round < 3; round++) globalThis.gc()
}
const heap = () => {
  gc()
  return process.memoryUsage().heapUsed
}

/** A context linked to a raw peer; the raw side discards what it receives. */
async function context(options = {}) {
  const { port1, port2 } = new MessageChannel()
  port2.on('message', () => {})
  const bus = createBus({ name: NAME, transports: [messagePort(port1, { capacity: 100_000 })], onDiagnostic: () => {}, ...options })
  let delivered = 0
  const waiters = []
  bus.subscribe('bench.marker', () => {
    delivered++
    for (const waiter of waiters.splice(0)) waiter()
  })
  const post = (body, from = RAW) => port2.postMessage({ crossbus: 1, bus: NAME, from, ...body })
  let markers = 0
  /** Posts a marker and resolves once the bus delivered it: everything posted before is taken. */
  const settled = () => {
    const target = ++markers
    post(events([{ source: 'marker', seq: target, topic: 'bench.marker', data: target }]))
    return new Promise((resolve) => {
      const check = () => (delivered >= target ? resolve() : waiters.push(check))
      check()
    })
  }
  post({ kind: 'hello', routes: [{ id: RAW, version: 1, patterns: [], replies: [] }] })
  await settled()
  return { bus, post, settled, close: () => port2.close() }
}

/** An events frame body from a list of { source, seq, topic, data, retained? }. */
function events(list) {
  const sources = []
  const topics = []
  const sourceAt = new Map()
  const topicAt = new Map()
  const count = list.length
  const src = new Uint32Array(count)
  const seq = new Float64Array(count)
  const topic = new Uint32Array(count)
  const data = new Array(count)
  const retained = []
  for (let index = 0; index < count; index++) {
    const event = list[index]
    let at = sourceAt.get(event.source)
    if (at === undefined) sourceAt.set(event.source, (at = sources.push(event.source) - 1))
    let t = topicAt.get(event.topic)
    if (t === undefined) topicAt.set(event.topic, (t = topics.push(event.topic) - 1))
    src[index] = at
    seq[index] = event.seq
    topic[index] = t
    data[index] = event.data
    if (event.retained) retained.push(index)
  }
  return { kind: 'events', sources, topics, src, seq, topic, time: new Float64Array(count), data, ...(retained.length > 0 ? { retained } : {}) }
}

/** Posts frames in slices, waiting after each for the bus to take them. */
async function flood(rig, frames) {
  let posted = 0
  for (const frame of frames) {
    rig.post(frame.body, frame.from)
    if (++posted % SLICE === 0) await rig.settled()
  }
  await rig.settled()
  return posted
}

function* sourceFlood() {
  // 100,000 made-up sources, one event each.
  const total = 100_000
  for (let start = 0; start < total; start += FRAME) {
    const list = []
    for (let index = start; index < Math.min(total, start + FRAME); index++) list.push({ source: `s${index}`, seq: 1, topic: 'flood.x', data: 0 })
    yield { body: events(list) }
  }
}

function* windowFlood() {
  // 1,024 sources × 8,192 seqs each (the most a window held before issue 11 without trimming), source by source in turns.
  const sources = 1024
  const seqs = 8192
  for (let from = 1; from <= seqs; from += FRAME) {
    for (let source = 0; source < sources; source++) {
      const list = []
      for (let seq = from; seq < from + FRAME; seq++) list.push({ source: `w${source}`, seq, topic: 'flood.x', data: 0 })
      yield { body: events(list) }
    }
  }
}

function* retainedFlood() {
  // 100,000 retained topics, 100 B of data each.
  const total = 100_000
  const payload = 'x'.repeat(100)
  for (let start = 0; start < total; start += FRAME) {
    const list = []
    for (let index = start; index < Math.min(total, start + FRAME); index++)
      list.push({ source: RAW, seq: index + 1, topic: `state.t${index}`, data: payload, retained: true })
    yield { body: events(list) }
  }
}

function* peerFlood() {
  // 100,000 made-up peers, each saying hello (with its own record) while a last: true subscription waits.
  for (let index = 0; index < 100_000; index++) {
    const id = `p${index}`
    yield { from: id, body: { kind: 'hello', routes: [{ id, version: 1, patterns: [], replies: [] }] } }
  }
}

const patterns = (count, prefix = 'p') => Array.from({ length: count }, (_, index) => `${prefix}${index}.*`)

function* patternFlood() {
  // One peer advertising 100,000 patterns.
  yield { body: { kind: 'hello', routes: [{ id: RAW, version: 2, patterns: patterns(100_000), replies: [] }] } }
}

function* indexedPatterns() {
  // 16,384 patterns in 64 records of 256 (within every bound: each one is indexed), none matching what is published.
  const routes = [{ id: RAW, version: 2, patterns: [], replies: [] }]
  for (let record = 0; record < 64; record++) routes.push({ id: `r${record}`, version: 1, patterns: patterns(256, `r${record}x`), replies: [] })
  yield { body: { kind: 'hello', routes } }
}

const FLOODS = {
  sources: { frames: sourceFlood, what: '100,000 made-up sources, one event each' },
  windows: { frames: windowFlood, what: '1,024 sources × 8,192 seqs' },
  retained: { frames: retainedFlood, what: '100,000 retained topics of 100 B' },
  peers: {
    frames: peerFlood,
    what: '100,000 peers saying hello, a last: true subscription waiting',
    setup: (bus) => bus.subscribe('waiting.*', () => {}, { last: true }),
  },
  patterns: { frames: patternFlood, what: 'one peer advertising 100,000 patterns' },
  indexed: { frames: indexedPatterns, what: '16,384 patterns in 64 records of 256' },
}

/** Heap of the context after a flood, against the same context before it. */
async function heapCase(name) {
  const chosen = FLOODS[name]
  const rig = await context()
  chosen.setup?.(rig.bus)
  await rig.settled()
  const before = heap()
  const started = performance.now()
  const frames = await flood(rig, chosen.frames())
  const seconds = (performance.now() - started) / 1000
  const after = heap()
  const stats = rig.bus.stats()
  const result = {
    case: name,
    what: chosen.what,
    frames,
    seconds,
    heapDeltaBytes: after - before,
    received: stats.received,
    rejected: stats.rejected,
    dropped: stats.dropped,
    peers: stats.peers,
  }
  await rig.bus.close()
  rig.close()
  return result
}

/** ns per publish to a topic never published before (so no cache helps), with the peer's interest given by `flood`. */
async function publishCase(name) {
  const rig = await context()
  if (name !== 'none') await flood(rig, FLOODS[name].frames())
  const { bus } = rig
  const rounds = []
  let topic = 0
  for (let round = 0; round < 7; round++) {
    // At least 50 ms or 20,000 publishes a round: the slow cases (0.1 ms and more each) still finish quickly.
    let count = 0
    const started = performance.now()
    let elapsed = 0
    while (count < 20_000 && (elapsed < 50 || count < 20)) {
      for (let index = 0; index < 10; index++) bus.publish(`fresh.t${++topic}`, index)
      count += 10
      elapsed = performance.now() - started
    }
    rounds.push((elapsed * 1e6) / count)
    // Let the link send or drop what it took, outside the timed part.
    await rig.settled()
  }
  rounds.sort((a, b) => a - b)
  const result = { case: name, nsPerPublish: rounds[Math.floor(rounds.length / 2)], spread: (rounds[rounds.length - 1] - rounds[0]) / rounds[3] }
  await bus.close()
  rig.close()
  return result
}

/**
 * Milliseconds from posting one frame of `count` events until the bus has
 * dealt with it (taken it, or refused it whole), and the same for a port
 * whose listener does nothing: the platform's share (structured clone). A
 * frame the bus takes is measured warm, as the median of 31 after 30; an
 * oversized one once (the old build takes it, and then every later one is old).
 */
async function frameCase(count) {
  const repeat = count <= FRAME ? 61 : 1
  let seq = 10
  const next = () => events(Array.from({ length: count }, () => ({ source: RAW, seq: seq++, topic: 'big.x', data: 0 })))
  const median = (times) => {
    const measured = times.slice(Math.floor(times.length / 2)).sort((a, b) => a - b)
    return measured[Math.floor(measured.length / 2)]
  }
  // The platform alone: a port that only waits for the marker behind the frame.
  const control = new MessageChannel()
  let arrived
  control.port1.on('message', (message) => {
    if (message === 'marker') arrived()
  })
  const platform = []
  for (let index = 0; index < repeat; index++) {
    const frame = { crossbus: 1, bus: NAME, from: RAW, ...next() }
    const seen = new Promise((resolve) => {
      arrived = resolve
    })
    const started = performance.now()
    control.port2.postMessage(frame)
    control.port2.postMessage('marker')
    await seen
    platform.push(performance.now() - started)
  }
  control.port1.close()
  const rig = await context()
  rig.bus.subscribe('big.x', () => {}, { capacity: 10 })
  const times = []
  for (let index = 0; index < repeat; index++) {
    const frame = next()
    const started = performance.now()
    rig.post(frame)
    await rig.settled()
    times.push(performance.now() - started)
  }
  const stats = rig.bus.stats()
  await rig.bus.close()
  rig.close()
  return { case: `frame${count}`, events: count, ms: median(times), platformMs: median(platform), received: stats.received, rejected: stats.rejected }
}

let result
if (spec.case.startsWith('publish:')) result = await publishCase(spec.case.slice('publish:'.length))
else if (spec.case.startsWith('frame:')) result = await frameCase(Number(spec.case.slice('frame:'.length)))
else result = await heapCase(spec.case)
process.stdout.write(JSON.stringify(result))
