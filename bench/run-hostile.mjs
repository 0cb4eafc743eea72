// The hostile-input part of `npm run bench` (issue 11): floods of what a peer
// can make a context hold, the heap after each, the cost of a publish under a
// peer's huge interest list, and the time one oversized frame takes. Each case
// runs in a fresh process (hostile.mjs). With `--baseline=<dist directory of
// another build>` every case also runs against that build, side by side, so
// figures before and after a change come from one sitting. Writes
// bench/results-hostile.json. See bench/README.md.

import { execFile } from 'node:child_process'
import { writeFile } from 'node:fs/promises'
import os from 'node:os'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { table } from './format.mjs'

const script = fileURLToPath(new URL('./hostile.mjs', import.meta.url))
const run = promisify(execFile)
const MB = 1024 * 1024

const HEAP_CASES = ['sources', 'windows', 'retained', 'peers', 'patterns', 'indexed']
const PUBLISH_CASES = [
  ['none', 'a peer with no interest (no flood)'],
  ['patterns', 'one peer advertising 100,000 patterns'],
  ['indexed', '16,384 patterns in 64 records, none matching'],
]
const FRAME_CASES = [1_000_000, 4096]

async function measure(spec) {
  const { stdout } = await run(process.execPath, ['--expose-gc', script, JSON.stringify(spec)], {
    maxBuffer: 1 << 24,
    env: { ...process.env, NODE_ENV: 'production' },
    timeout: 600_000,
  })
  return JSON.parse(stdout)
}

/** Runs a case against this build and, when given, the baseline build. */
async function both(spec, baseline) {
  const current = await measure(spec)
  const before = baseline === undefined ? undefined : await measure({ ...spec, dist: baseline })
  return { current, before }
}

const mb = (bytes) => `${(bytes / MB).toFixed(2)} MB`
const counted = (row) => `${row.received} / ${row.rejected} / ${row.dropped} / ${row.peers}`

export async function runHostile({ baseline } = {}) {
  const [load] = os.loadavg()
  console.log(
    `crossbus hostile-input bench: Node ${process.version}, load average ${load.toFixed(2)}; each case in its own process, NODE_ENV=production` +
      (baseline === undefined ? '' : `; baseline build: ${baseline}`),
  )
  const label = baseline === undefined ? '' : ' (this build)'

  const heapRows = []
  for (const name of HEAP_CASES) heapRows.push(await both({ case: name }, baseline))
  console.log('\nH1. heap of a context after a flood from one peer, after gc, against the same context before it')
  table(
    [
      'flood',
      'frames',
      `heap${label}`,
      'received / rejected / dropped / peers',
      ...(baseline === undefined ? [] : ['heap (baseline)', 'received / rejected / dropped / peers (baseline)']),
    ],
    heapRows.map(({ current, before }) => [
      current.what,
      current.frames,
      mb(current.heapDeltaBytes),
      counted(current),
      ...(before === undefined ? [] : [mb(before.heapDeltaBytes), counted(before)]),
    ]),
  )

  const publishRows = []
  for (const [name] of PUBLISH_CASES) publishRows.push(await both({ case: `publish:${name}` }, baseline))
  const none = publishRows[0]
  console.log('\nH2. cost of one publish() to a topic never published before (no cache helps), by what the one peer advertises')
  table(
    ['peer', `µs/publish${label}`, '÷ no flood', ...(baseline === undefined ? [] : ['µs/publish (baseline)', '÷ no flood (baseline)'])],
    publishRows.map(({ current, before }, index) => [
      PUBLISH_CASES[index][1],
      (current.nsPerPublish / 1000).toFixed(2),
      `${(current.nsPerPublish / none.current.nsPerPublish).toFixed(2)}×`,
      ...(before === undefined ? [] : [(before.nsPerPublish / 1000).toFixed(2), `${(before.nsPerPublish / none.before.nsPerPublish).toFixed(2)}×`]),
    ]),
  )

  const frameRows = []
  for (const count of FRAME_CASES) frameRows.push(await both({ case: `frame:${count}` }, baseline))
  console.log('\nH3. one frame from a peer: time from posting it until the bus has dealt with it (taken, or refused whole)')
  table(
    [
      'events in the frame',
      'clone alone',
      `ms${label}`,
      'received / rejected',
      ...(baseline === undefined ? [] : ['clone alone (baseline run)', 'ms (baseline)', 'received / rejected (baseline)']),
    ],
    frameRows.map(({ current, before }) => [
      current.events.toLocaleString('en'),
      `${current.platformMs.toFixed(1)} ms`,
      `${current.ms.toFixed(1)} ms`,
      `${current.received} / ${current.rejected}`,
      ...(before === undefined ? [] : [`${before.platformMs.toFixed(1)} ms`, `${before.ms.toFixed(1)} ms`, `${before.received} / ${before.rejected}`]),
    ]),
  )
  console.log('   clone alone: the same frame posted to a port whose listener does nothing (the structured clone both pay)')

  await writeFile(
    new URL('./results-hostile.json', import.meta.url),
    `${JSON.stringify({ date: new Date().toISOString(), node: process.version, loadAverage: load, baseline, heap: heapRows, publish: publishRows, frames: frameRows }, null, 2)}\n`,
  )
  console.log('\nwrote bench/results-hostile.json')
}
