// The in-process part of `npm run bench` (after the build): measures the core
// side by side with peer emitters in one run, prints the tables and ratios,
// and writes the numbers to bench/results-core.json. See bench/README.md.

import { execFile } from 'node:child_process'
import { writeFile } from 'node:fs/promises'
import os from 'node:os'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { BURST, CAPACITY, LIBRARIES, PUBLISH_CASES, VARIANTS } from './core.mjs'
import { rate, table, verdict } from './format.mjs'

/** Goals from the issues: crossbus ÷ peer, in deliveries per second, at least this (issue 2; issue 9 aimed at 0.25× eventemitter3 on the way). */
const GOALS = { eventemitter3: 0.5, emittery: 5 }
const STEP_GOAL = { peer: 'eventemitter3', goal: 0.25, subs: 1 }
/**
 * crossbus runs as an app's production build does (NODE_ENV=production: envelopes
 * are not frozen); section 1 also shows it as a development build does.
 */
const PRODUCTION = { NODE_ENV: 'production' }
const DEVELOPMENT = { NODE_ENV: 'development' }
const SUBSCRIBER_COUNTS = [1, 10]
const TIMING = { time: 1000, warmupTime: 250 }
const HEAP_CHECKPOINTS = [100_000, 1_000_000]
const HEAP_CHUNK = 10_000
/** Heap counts as flat when 1M publishes grew it by at most this much more than 100k did. */
const FLAT_TOLERANCE_BYTES = 1024 * 1024
const MB = 1024 * 1024
/** Section 4: durable events published, and how many per task. */
const DURABLE_COUNT = 10_000
const DURABLE_PER_TASK = [1, 100]

const PUBLISH_LABELS = {
  none: 'no subscriber',
  keepingUp: 'subscriber keeping up',
  stalledDropNewest: 'stalled subscriber, drop-newest',
  stalledDropOldest: 'stalled subscriber, drop-oldest',
}

const caseScript = fileURLToPath(new URL('./case.mjs', import.meta.url))
const run = promisify(execFile)

/** Measures one case in a fresh Node process (see case.mjs); cases run one at a time. */
async function measure(spec, env = PRODUCTION) {
  const { stdout } = await run(process.execPath, ['--expose-gc', caseScript, JSON.stringify(spec)], { maxBuffer: 1 << 24, env: { ...process.env, ...env } })
  return JSON.parse(stdout)
}

/** Runs the core part; sets process.exitCode to 1 when crossbus lost events. */
export async function runCore() {
  const [load] = os.loadavg()
  const cpus = os.cpus()
  console.log(`crossbus core bench: Node ${process.version}, ${cpus.length} × ${cpus[0]?.model ?? 'unknown cpu'}, load average ${load.toFixed(2)}`)
  if (load >= cpus.length) console.log('WARNING: the machine is busy with other work; expect noisy numbers (see the ± column)')
  console.log(
    `each case in its own process, with NODE_ENV=production unless a row says otherwise; tinybench ${TIMING.time} ms per case after ${TIMING.warmupTime} ms of warm-up; ` +
      '± is the relative margin of error of the mean (95%)\n',
  )

  // 1. publish→deliver throughput.
  const throughput = []
  const ratios = {}
  for (const subs of SUBSCRIBER_COUNTS) {
    const rows = []
    for (const library of LIBRARIES) rows.push(await measure({ kind: 'throughput', library, subs, ...TIMING }))
    const development = {
      ...(await measure({ kind: 'throughput', library: 'crossbus', subs, ...TIMING }, DEVELOPMENT)),
      library: 'crossbus, development build',
    }
    // Rows of crossbus itself (a development build, process()): their last column is crossbus ÷ that row too.
    const own = [development]
    for (const variant of Object.keys(VARIANTS)) own.push(await measure({ kind: 'throughput', library: variant, subs, ...TIMING }))
    rows.splice(1, 0, ...own)
    throughput.push(...rows)
    const crossbus = rows.find((row) => row.library === 'crossbus')
    ratios[subs] = {}
    for (const row of rows) {
      if (row !== crossbus && !own.includes(row)) ratios[subs][row.library] = crossbus.deliveriesPerSecond / row.deliveriesPerSecond
    }

    console.log(`1. publish→deliver, bursts of ${BURST} events, ${subs} subscriber${subs === 1 ? '' : 's'}; each handler adds the data to a sum`)
    table(
      ['library', 'deliveries', 'publishes', '±', 'crossbus ÷ it'],
      rows.map((row) => [
        row.library,
        rate(row.deliveriesPerSecond),
        rate(row.publishesPerSecond),
        `${row.rme.toFixed(1)}%`,
        row === crossbus
          ? ''
          : own.includes(row)
            ? `${(crossbus.deliveriesPerSecond / row.deliveriesPerSecond).toFixed(2)}×`
            : `${ratios[subs][row.library].toFixed(2)}×`,
      ]),
    )
    for (const row of [crossbus, ...own]) {
      const complete = row.dropped === 0 && row.failed === 0 && row.delivered === row.published * subs
      console.log(
        `   ${row.library} stats: published ${row.published}, delivered ${row.delivered}, dropped ${row.dropped}, failed ${row.failed}` +
          (complete ? ' (every event delivered)' : ' — EVENTS LOST, these numbers are invalid'),
      )
      if (!complete) process.exitCode = 1
    }
    for (const [peer, goal] of Object.entries(GOALS)) {
      console.log(`   goal ≥ ${goal}× ${peer}: ${ratios[subs][peer].toFixed(2)}× ${verdict(ratios[subs][peer] >= goal)}`)
    }
    if (subs === STEP_GOAL.subs) {
      const ratio = ratios[subs][STEP_GOAL.peer]
      console.log(`   issue 9's aim ≥ ${STEP_GOAL.goal}× ${STEP_GOAL.peer}: ${ratio.toFixed(2)}× ${verdict(ratio >= STEP_GOAL.goal)}`)
    }
    const devRatio = development.deliveriesPerSecond / rows.find((row) => row.library === STEP_GOAL.peer).deliveriesPerSecond
    console.log(`   a development build (frozen envelopes): ${devRatio.toFixed(2)}× ${STEP_GOAL.peer}`)
    console.log()
  }

  // 2. Cost of one publish() call.
  const publishCost = []
  for (const scenario of PUBLISH_CASES) publishCost.push(await measure({ kind: 'publishCost', scenario, ...TIMING }))
  const none = publishCost.find((row) => row.scenario === 'none')
  console.log(`2. cost of one publish() call, in loops of ${BURST}; a stalled subscriber's handler never settles and its queue (${CAPACITY}) is full`)
  table(
    ['case', 'ns/publish', '±', '÷ no subscriber', 'dropped'],
    publishCost.map((row) => [
      PUBLISH_LABELS[row.scenario],
      row.nsPerPublish.toFixed(1),
      `${row.rme.toFixed(1)}%`,
      `${(row.nsPerPublish / none.nsPerPublish).toFixed(2)}×`,
      row.dropped,
    ]),
  )
  const keepingUp = publishCost.find((row) => row.scenario === 'keepingUp')
  const stalledDropAll = publishCost.filter((row) => row.scenario.startsWith('stalled')).every((row) => row.dropped === row.published - CAPACITY - 1)
  console.log(
    `   keeping up: dropped ${keepingUp.dropped} ${verdict(keepingUp.dropped === 0)}; ` +
      `stalled: every publish after the first ${CAPACITY + 1} dropped ${verdict(stalledDropAll)}`,
  )
  console.log()

  // 3. Heap under a stalled subscriber.
  const heap = []
  for (const overflow of ['drop-newest', 'drop-oldest']) {
    heap.push(await measure({ kind: 'heap', overflow, checkpoints: HEAP_CHECKPOINTS, chunk: HEAP_CHUNK }))
  }
  console.log(`3. heap growth while publishing to a stalled subscriber (capacity ${CAPACITY}), after gc, from a baseline with the queue full`)
  table(
    ['overflow', ...HEAP_CHECKPOINTS.map((count) => `after ${count.toLocaleString('en')}`), 'flat?', 'dropped'],
    heap.map((row) => {
      const first = row.deltas[0].heapDeltaBytes
      const last = row.deltas[row.deltas.length - 1].heapDeltaBytes
      return [
        row.overflow,
        ...row.deltas.map((delta) => `${(delta.heapDeltaBytes / MB).toFixed(2)} MB`),
        verdict(last - first <= FLAT_TOLERANCE_BYTES),
        row.dropped,
      ]
    }),
  )

  // 4. A live durable consumer on memoryStore.
  const durable = []
  for (const perTask of DURABLE_PER_TASK) durable.push(await measure({ kind: 'durableConsume', count: DURABLE_COUNT, perTask, laggard: true }))
  console.log(
    `\n4. a live durable consumer on memoryStore(): ${DURABLE_COUNT.toLocaleString('en')} durable events published N per task, timed until it handled the last; ` +
      'a second consumer that never acks keeps every event in the log',
  )
  table(
    ['case', 'events/s', 'ms', 'in the log at the end'],
    durable.map((row) => [`${row.perTask} per task`, rate(row.eventsPerSecond), row.ms.toFixed(0), row.logged.toLocaleString('en')]),
  )
  const lost = durable.filter((row) => row.delivered !== row.count || row.stored !== row.count)
  for (const row of lost) console.log(`   ${row.perTask} per task: stored ${row.stored}, delivered ${row.delivered} of ${row.count} — EVENTS LOST`)
  if (lost.length > 0) process.exitCode = 1
  const oneByOne = durable.find((row) => row.perTask === 1)
  const batched = durable.find((row) => row.perTask === 100)
  console.log(
    `   reads cost O(new events): 1 per task runs at ${(oneByOne.eventsPerSecond / batched.eventsPerSecond).toFixed(2)}× the rate of 100 per task ` +
      '(issue 10: before reads bisected the log, 3.3 k/s, 0.04×)',
  )

  const results = {
    date: new Date().toISOString(),
    node: process.version,
    cpus: cpus.length,
    cpu: cpus[0]?.model,
    loadAverage: load,
    burst: BURST,
    capacity: CAPACITY,
    timing: TIMING,
    throughput,
    ratios,
    publishCost,
    heap,
    durable,
  }
  await writeFile(new URL('./results-core.json', import.meta.url), `${JSON.stringify(results, null, 2)}\n`)
  console.log('\nwrote bench/results-core.json')
}
