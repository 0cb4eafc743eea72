// The Chromium part of `npm run bench`: crossbus across real browser contexts
// (tabs, a dedicated worker) side by side with raw BroadcastChannel and
// MessagePort calls and the `broadcast-channel` package, in one run. Prints one
// table per section with ratios and the issue's goals, and writes
// bench/results-browser.json. See bench/README.md for what each line measures.
//
// A Vite dev server on 127.0.0.1 serves bench/browser/ (the pages import the
// library source, /src/index.ts) with COOP/COEP headers, so the pages are
// cross-origin isolated: performance.now() then has 5 µs resolution instead
// of 100 µs, which the latency section needs. Chromium is launched headless
// with scripts/chromium.mjs's executable and flags, through Playwright's
// library API.

import { mkdir, readFile, writeFile } from 'node:fs/promises'
import net from 'node:net'
import os from 'node:os'
import { fileURLToPath } from 'node:url'
import { chromium } from 'playwright'
import { createServer } from 'vite'
import { chromiumLaunchOptions } from '../scripts/chromium.mjs'
import { rate, table, verdict } from './format.mjs'

const root = fileURLToPath(new URL('..', import.meta.url))

/** Measured rounds per variant, after one warm-up round; the tables show the median. */
const ROUNDS = 3
/** Events published per task in the throughput sections (a macrotask between chunks). */
const CHUNK = 1000
/** A round that has not completed after this long is reported as lost events. */
const ROUND_TIMEOUT_MS = 15_000

const LABELS = {
  crossbus: 'crossbus',
  'crossbus-novalidate': 'crossbus, validate: false',
  raw: 'raw, 1 event/message',
  'raw-batch': 'raw, 100 events/message',
  package: 'broadcast-channel package',
}

/**
 * Events per round for each variant: enough for a few hundred milliseconds at
 * the rates seen on this machine (fewer for the slow one-per-message variants);
 * the unit is the same whatever the count.
 */
const TAB_VARIANTS = [
  { variant: 'crossbus', count: 200_000 },
  { variant: 'crossbus-novalidate', count: 200_000 },
  { variant: 'raw', count: 50_000 },
  { variant: 'raw-batch', count: 200_000 },
  { variant: 'package', count: 20_000 },
]
const WORKER_VARIANTS = [
  { variant: 'crossbus', count: 200_000 },
  { variant: 'crossbus-novalidate', count: 200_000 },
  { variant: 'raw', count: 100_000 },
  { variant: 'raw-batch', count: 400_000 },
  { variant: 'package', count: 20_000 },
]
const FANOUT_RECEIVERS = 4
const FANOUT_VARIANTS = [
  { variant: 'crossbus', count: 100_000 },
  { variant: 'raw', count: 20_000 },
  { variant: 'raw-batch', count: 100_000 },
]

/** Paced stream for latency: events per second, this many events per variant (2 s) in LATENCY_SEGMENTS segments. */
const LATENCY_RATE = 1000
const LATENCY_COUNT = 2000
const LATENCY_WARMUP = 300
const LATENCY_SEGMENTS = 4

/** Memory under a stalled worker. */
const STALL_CHECKPOINTS = [100_000, 1_000_000]
const STALL_CHUNK = 10_000
/** How long the worker blocks its thread; the page terminates it before that. */
const STALL_MS = 120_000
const LINK_CAPACITY = 8192
/** JS heap counts as flat when 1M publishes grew it by at most this much more than 100k did. */
const FLAT_TOLERANCE_BYTES = 1024 * 1024
const MB = 1024 * 1024
/** Jobs per round of the pool (section 8). */
const POOL_JOBS = 20_000
/** New tabs opened per startup variant (section 7), after one warm-up tab each. */
const STARTUP_ROUNDS = 20

/** Goals from the issue. */
const GOALS = {
  throughputVsRawBatch: 0.6,
  throughputVsPackage: 10,
  fanoutVsRaw: 10,
  p99Ms: 1,
  durableVsSet: 10,
  durableVsSetMany: 0.8,
}

/** Durable writes: events per round for each variant (the slow `set` gets fewer). */
const DURABLE_VARIANTS = [
  { variant: 'crossbus-1', label: 'crossbus durable publish, 1 per task', count: 20_000 },
  { variant: 'crossbus-100', label: 'crossbus durable publish, 100 per task', count: 50_000 },
  { variant: 'set', label: 'idb-keyval set, awaited per event', count: 2_000 },
  { variant: 'setMany-100', label: 'idb-keyval setMany, 100 per call, awaited', count: 20_000 },
]

const median = (values) => {
  const sorted = [...values].sort((a, b) => a - b)
  const middle = sorted.length >> 1
  return sorted.length % 2 === 1 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2
}
const percentile = (sorted, p) => sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]
const ratio = (value) => `${value.toFixed(2)}×`
const ms = (value) => `${value.toFixed(3)} ms`

function freePort() {
  return new Promise((resolve, reject) => {
    const server = net.createServer()
    server.on('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address()
      server.close(() => resolve(port))
    })
  })
}

/** Resident set size of a process in bytes, from /proc (Linux); undefined elsewhere. */
async function rss(pid) {
  try {
    const status = await readFile(`/proc/${pid}/status`, 'utf8')
    const match = /^VmRSS:\s+(\d+) kB/m.exec(status)
    return match === null ? undefined : Number(match[1]) * 1024
  } catch {
    return undefined
  }
}

/** `sections`: which of the sections to run (all by default). */
export async function runBrowser({ profile = false, sections = [1, 2, 3, 4, 5, 6, 7, 8] } = {}) {
  const started = performance.now()
  const port = await freePort()
  const server = await createServer({
    configFile: false,
    root,
    // As an app's production build: the bundler says NODE_ENV is production (envelopes are not frozen).
    // CROSSBUS_BENCH_DEVELOPMENT=1 measures a development build instead.
    define: { 'process.env.NODE_ENV': JSON.stringify(process.env.CROSSBUS_BENCH_DEVELOPMENT === '1' ? 'development' : 'production') },
    logLevel: 'warn',
    clearScreen: false,
    server: {
      host: '127.0.0.1',
      port,
      strictPort: true,
      hmr: false,
      watch: null,
      headers: { 'Cross-Origin-Opener-Policy': 'same-origin', 'Cross-Origin-Embedder-Policy': 'require-corp' },
    },
    optimizeDeps: { include: ['broadcast-channel', 'idb-keyval'], noDiscovery: true },
  })
  await server.listen()
  const url = `http://127.0.0.1:${port}/bench/browser/index.html`

  const launch = chromiumLaunchOptions()
  const browser = await chromium.launch({ headless: true, ...launch })
  const context = await browser.newContext()
  const problems = []
  let invalid = false

  try {
    const browserSession = await browser.newBrowserCDPSession()
    const rendererRss = async () => {
      const { processInfo } = await browserSession.send('SystemInfo.getProcessInfo')
      let total = 0
      for (const info of processInfo) if (info.type === 'renderer') total += (await rss(info.id)) ?? Number.NaN
      return total
    }

    let pageCount = 0
    const openPage = async () => {
      const page = await context.newPage()
      const label = `tab ${++pageCount}`
      page.on('pageerror', (error) => problems.push(`${label}: ${String(error)}`))
      page.on('console', (message) => {
        if (message.type() === 'error' || message.type() === 'warning') problems.push(`${label} console.${message.type()}: ${message.text()}`)
      })
      const failed = new Promise((_, reject) => page.once('pageerror', (error) => reject(new Error(`${label} failed to load: ${String(error)}`))))
      await page.goto(url)
      await Promise.race([page.waitForFunction(() => document.getElementById('status')?.textContent === 'ready'), failed])
      return page
    }
    const call = (page, method, ...args) => page.evaluate(({ method, args }) => window.crossbusBench[method](...args), { method, args })

    const sender = await openPage()
    const receiverPage = await openPage()
    const info = await call(sender, 'info')
    const [load] = os.loadavg()
    const cpus = os.cpus()
    const { processInfo } = await browserSession.send('SystemInfo.getProcessInfo')
    const renderers = processInfo.filter((process) => process.type === 'renderer').length

    console.log(
      `crossbus browser bench: Chromium ${browser.version()} headless (${launch.executablePath ?? "Playwright's own"}), ` +
        `${cpus.length} × ${cpus[0]?.model ?? 'unknown cpu'}, load average ${load.toFixed(2)}`,
    )
    if (load >= cpus.length) console.log('WARNING: the machine is busy with other work; expect noisy numbers')
    console.log(
      `pages served by Vite from the library source; crossOriginIsolated ${info.crossOriginIsolated} ` +
        `(performance.now() resolution ${info.crossOriginIsolated ? '5 µs' : '100 µs'}); ${renderers} renderer processes with 2 tabs open; ` +
        `visibility ${info.visibilityState}`,
    )
    console.log(
      `each variant: 1 warm-up round, then ${ROUNDS} rounds interleaved with the other variants; median shown, ` +
        `spread = (max − min) ÷ median; ${CHUNK} events published per task\n`,
    )

    const results = {
      date: new Date().toISOString(),
      chromium: browser.version(),
      executablePath: launch.executablePath,
      cpus: cpus.length,
      cpu: cpus[0]?.model,
      loadAverage: load,
      crossOriginIsolated: info.crossOriginIsolated,
      rounds: ROUNDS,
      chunk: CHUNK,
    }
    let runs = 0
    const uniqueName = (prefix) => `bench-${prefix}-${++runs}-${Date.now().toString(36)}`

    /**
     * Throughput of each variant: a warm-up round, then ROUNDS rounds in which
     * the variants take turns. `arm(entry, count, round)` readies the receivers.
     */
    async function throughputRounds(entries, receiverCount, arm) {
      for (const entry of entries) entry.rounds = []
      for (let round = 0; round <= ROUNDS; round++) {
        for (const entry of entries) {
          if (entry.failed) continue
          const count = round === 0 ? Math.floor(entry.count / 4) : entry.count
          await arm(entry, count, round)
          const outcome = await call(sender, 'burst', entry.name, count, CHUNK, round, receiverCount, ROUND_TIMEOUT_MS)
          if (outcome.failed !== undefined) {
            entry.failed = outcome
            invalid = true
            continue
          }
          if (round > 0) entry.rounds.push({ count, ms: outcome.ms, publishMs: outcome.publishMs, perSecond: (count * receiverCount * 1000) / outcome.ms })
          entry.last = outcome
        }
      }
      for (const entry of entries) {
        if (entry.failed) continue
        const perSecond = entry.rounds.map((round) => round.perSecond)
        entry.perSecond = median(perSecond)
        entry.spread = (Math.max(...perSecond) - Math.min(...perSecond)) / entry.perSecond
        entry.publishShare = median(entry.rounds.map((round) => round.publishMs / round.ms))
      }
    }

    /** Checks the crossbus stats of the last round: nothing dropped, rejected or missing anywhere. */
    function crossbusCheck(entry, receiverCount) {
      if (entry.failed) {
        const lost = `${entry.failed.failed}: sender ${JSON.stringify(entry.failed.sender)}; ${entry.failed.diagnostics.slice(0, 2).join(' | ')}`
        return { ok: false, text: `${LABELS[entry.variant]} FAILED, ${lost}` }
      }
      const { sender: senderStats, receivers } = entry.last
      const receiverDropped = receivers.reduce((sum, receiver) => sum + receiver.stats.bus.dropped, 0)
      const rejected = receivers.reduce((sum, receiver) => sum + receiver.stats.bus.rejected, 0)
      const ok = senderStats.dropped === 0 && receiverDropped === 0 && rejected === 0 && receivers.length === receiverCount
      const diagnostics = [...entry.last.diagnostics, ...receivers.flatMap((receiver) => receiver.diagnostics)]
      return {
        ok,
        text:
          `${LABELS[entry.variant]} stats: sender published ${senderStats.published}, dropped ${senderStats.dropped}; ` +
          `receiver${receiverCount === 1 ? '' : 's'} dropped ${receiverDropped}, rejected ${rejected}` +
          (ok ? ' (every event delivered)' : ' — EVENTS LOST, the crossbus numbers are invalid') +
          (diagnostics.length > 0 ? `; diagnostics: ${diagnostics.slice(0, 3).join(' | ')}` : ''),
      }
    }

    function throughputTable(entries, unit, goals) {
      const crossbus = entries.find((entry) => entry.variant === 'crossbus')
      table(
        ['variant', 'events', unit, 'spread', 'published at', 'crossbus ÷ it'],
        entries.map((entry) => [
          LABELS[entry.variant],
          entry.count.toLocaleString('en'),
          entry.failed ? 'FAILED' : rate(entry.perSecond),
          entry.failed ? '' : `${(entry.spread * 100).toFixed(0)}%`,
          entry.failed ? '' : `${(entry.publishShare * 100).toFixed(0)}%`,
          entry === crossbus || entry.failed || crossbus.failed ? '' : ratio(crossbus.perSecond / entry.perSecond),
        ]),
      )
      for (const entry of entries.filter((entry) => entry.variant.startsWith('crossbus'))) {
        const check = crossbusCheck(entry, entry.receiverCount)
        if (!check.ok) invalid = true
        console.log(`   ${check.text}`)
      }
      const ratios = {}
      for (const entry of entries) if (entry !== crossbus && !entry.failed && !crossbus.failed) ratios[entry.variant] = crossbus.perSecond / entry.perSecond
      for (const [peer, goal] of goals) {
        const value = ratios[peer]
        console.log(`   goal ≥ ${goal}× ${LABELS[peer]}: ${value === undefined ? 'n/a MISSED' : `${ratio(value)} ${verdict(value >= goal)}`}`)
      }
      return ratios
    }

    const summarize = (entries) =>
      entries.map(({ variant, count, rounds, perSecond, spread, publishShare, failed, last }) => ({
        variant,
        count,
        perSecond,
        spread,
        publishShare,
        rounds,
        failed: failed?.failed,
        sender: last?.sender,
        receivers: last?.receivers,
      }))

    // ---- 1. tab → tab throughput ----
    if (sections.includes(1)) {
      const entries = TAB_VARIANTS.map((entry) => ({ ...entry, name: uniqueName(`tab-${entry.variant}`), receiverCount: 1 }))
      for (const entry of entries) {
        await call(receiverPage, 'receive', entry.variant, entry.name, 0, entry.count)
        await call(sender, 'openSender', entry.name, entry.variant, 'tab', entry.name, 1, entry.count)
      }
      await throughputRounds(entries, 1, (entry, count, round) => call(receiverPage, 'arm', entry.name, count, round, false))
      console.log('1. tab → tab throughput: two tabs of one browser context, BroadcastChannel; first publish → last delivery')
      const ratios = throughputTable(entries, 'events/s', [
        ['raw-batch', GOALS.throughputVsRawBatch],
        ['package', GOALS.throughputVsPackage],
      ])
      console.log()
      results.tabToTab = { variants: summarize(entries), ratios }
      for (const entry of entries) {
        await call(sender, 'closeSender', entry.name)
        await call(receiverPage, 'closeReceiver', entry.name)
      }
    }

    // ---- 2. page → dedicated worker throughput ----
    if (sections.includes(2)) {
      const entries = WORKER_VARIANTS.map((entry) => ({ ...entry, name: uniqueName(`worker-${entry.variant}`), receiverCount: 1 }))
      // The crossbus link's queue holds a whole round (like the subscription's): a worker that grants credit
      // slower than the page publishes would otherwise drop what exceeds the default 8192 (section 5).
      for (const entry of entries) await call(sender, 'openSender', entry.name, entry.variant, 'worker', entry.name, 1, entry.count, entry.count)
      await throughputRounds(entries, 1, (entry, count, round) => call(sender, 'armWorker', entry.name, count, round, false))
      console.log(
        '2. page → dedicated worker throughput: crossbus over messagePort(worker)/messagePort(self) vs worker.postMessage; first publish → last delivery',
      )
      const ratios = throughputTable(entries, 'events/s', [
        ['raw-batch', GOALS.throughputVsRawBatch],
        ['package', GOALS.throughputVsPackage],
      ])
      console.log()
      results.pageToWorker = { variants: summarize(entries), ratios }
      for (const entry of entries) await call(sender, 'closeSender', entry.name)
    }

    // ---- 3. one-way latency of a paced stream ----
    if (sections.includes(3)) {
      const rows = []
      const perSegment = LATENCY_COUNT / LATENCY_SEGMENTS
      for (const wire of ['tab', 'worker']) {
        const streams = []
        for (const variant of ['crossbus', 'raw']) {
          const name = uniqueName(`latency-${wire}-${variant}`)
          let clock
          if (wire === 'tab') {
            await call(receiverPage, 'receive', variant, name, 0, LATENCY_COUNT)
            await call(sender, 'openSender', name, variant, 'tab', name, 1, LATENCY_COUNT)
            clock = await call(sender, 'clockOffset', name, 50)
          } else {
            await call(sender, 'openSender', name, variant, 'worker', name, 1, LATENCY_COUNT)
            clock = await call(sender, 'workerClockOffset', name, 50)
          }
          const arm = (count, round) =>
            wire === 'tab' ? call(receiverPage, 'arm', name, count, round, true) : call(sender, 'armWorker', name, count, round, true)
          await arm(LATENCY_WARMUP, 0)
          await call(sender, 'paced', name, LATENCY_WARMUP, LATENCY_RATE, 0, 1)
          streams.push({ variant, name, clock, arm, latencies: [], published: 0, spanMs: 0, last: undefined })
        }
        // Segments of the two variants take turns, so both meet the same machine (a descheduled
        // process delays a run of consecutive events by milliseconds: that is what p99 sees here).
        for (let segment = 1; segment <= LATENCY_SEGMENTS; segment++) {
          for (const stream of streams) {
            await stream.arm(perSegment, segment)
            const outcome = await call(sender, 'paced', stream.name, perSegment, LATENCY_RATE, segment, 1)
            stream.latencies.push(...outcome.latencies)
            stream.published += perSegment - 1
            stream.spanMs += outcome.spanMs
            stream.last = outcome
          }
        }
        for (const stream of streams) {
          await call(sender, 'closeSender', stream.name)
          if (wire === 'tab') await call(receiverPage, 'closeReceiver', stream.name)
          const sorted = [...stream.latencies].sort((a, b) => a - b)
          const row = {
            wire,
            variant: stream.variant,
            count: sorted.length,
            achievedRate: stream.published / (stream.spanMs / 1000),
            p50: percentile(sorted, 50),
            p99: percentile(sorted, 99),
            max: sorted[sorted.length - 1],
            mean: sorted.reduce((sum, value) => sum + value, 0) / sorted.length,
            overOneMs: sorted.filter((value) => value > 1).length,
            clock: stream.clock,
            sender: stream.last.sender,
            receivers: stream.last.receivers,
          }
          if (stream.variant === 'crossbus') {
            const dropped = row.sender.dropped + row.receivers.reduce((sum, receiver) => sum + receiver.stats.bus.dropped, 0)
            if (dropped !== 0 || row.count !== LATENCY_COUNT) {
              invalid = true
              problems.push(`latency ${wire} crossbus: ${row.count} of ${LATENCY_COUNT} events, ${dropped} dropped`)
            }
          }
          rows.push(row)
        }
      }
      console.log(
        `3. one-way latency, paced stream of ${LATENCY_RATE.toLocaleString('en')} events/s, one event per task, ${LATENCY_COUNT.toLocaleString('en')} events ` +
          `(${LATENCY_SEGMENTS} segments taking turns with the other variant); receiver clock (timeOrigin + now) − stamp taken at publish`,
      )
      table(
        ['path', 'variant', 'rate', 'p50', 'p99', 'max', '> 1 ms', 'crossbus p99 ÷ it', 'clock offset ± rtt/2'],
        rows.map((row) => {
          const crossbus = rows.find((other) => other.wire === row.wire && other.variant === 'crossbus')
          return [
            row.wire === 'tab' ? 'tab → tab' : 'page → worker',
            LABELS[row.variant],
            `${row.achievedRate.toFixed(0)}/s`,
            ms(row.p50),
            ms(row.p99),
            ms(row.max),
            row.overOneMs,
            row === crossbus ? '' : ratio(crossbus.p99 / row.p99),
            `${row.clock.offsetMs >= 0 ? '+' : ''}${row.clock.offsetMs.toFixed(3)} ± ${(row.clock.rttMs / 2).toFixed(3)} ms`,
          ]
        }),
      )
      for (const row of rows.filter((row) => row.variant === 'crossbus')) {
        console.log(`   goal p99 < ${GOALS.p99Ms} ms, ${row.wire === 'tab' ? 'tab → tab' : 'page → worker'}: ${ms(row.p99)} ${verdict(row.p99 < GOALS.p99Ms)}`)
      }
      console.log()
      results.latency = rows
    }

    // ---- 4. fan-out to 4 tabs ----
    if (sections.includes(4)) {
      const receiverPages = [receiverPage]
      while (receiverPages.length < FANOUT_RECEIVERS) receiverPages.push(await openPage())
      const entries = FANOUT_VARIANTS.map((entry) => ({ ...entry, name: uniqueName(`fanout-${entry.variant}`), receiverCount: FANOUT_RECEIVERS }))
      for (const entry of entries) {
        for (const [index, page] of receiverPages.entries()) await call(page, 'receive', entry.variant, entry.name, index, entry.count)
        await call(sender, 'openSender', entry.name, entry.variant, 'tab', entry.name, FANOUT_RECEIVERS, entry.count)
      }
      await throughputRounds(entries, FANOUT_RECEIVERS, async (entry, count, round) => {
        for (const page of receiverPages) await call(page, 'arm', entry.name, count, round, false)
      })
      console.log(`4. fan-out: one tab publishes, ${FANOUT_RECEIVERS} tabs receive every event (BroadcastChannel); deliveries/s summed over the receivers`)
      const ratios = throughputTable(entries, 'deliveries/s', [['raw', GOALS.fanoutVsRaw]])
      console.log()
      results.fanout = { receivers: FANOUT_RECEIVERS, variants: summarize(entries), ratios }
      for (const entry of entries) {
        await call(sender, 'closeSender', entry.name)
        for (const page of receiverPages) await call(page, 'closeReceiver', entry.name)
      }
      // The first is the receiver tab the later sections use: only the tabs opened here close.
      for (const page of receiverPages.slice(1)) await page.close()
    }

    // ---- 5. sender memory while the worker is stalled ----
    if (sections.includes(5)) {
      // Only the sender tab stays open, so the renderer RSS below is its process (with its workers).
      const cdp = await context.newCDPSession(sender)
      const heapUsed = async () => {
        await cdp.send('HeapProfiler.collectGarbage')
        await cdp.send('HeapProfiler.collectGarbage')
        return (await cdp.send('Runtime.getHeapUsage')).usedSize
      }
      const rows = []
      for (const variant of ['crossbus', 'raw-batch']) {
        const name = uniqueName(`stall-${variant}`)
        await call(sender, 'openSender', name, variant, 'worker', name, 1, 1024)
        await call(sender, 'stall', name, STALL_MS)
        const before = await heapUsed()
        const rssBefore = await rendererRss()
        const checkpoints = []
        let published = 0
        let publishMs = 0
        for (const target of STALL_CHECKPOINTS) {
          const outcome = await call(sender, 'publishMany', name, target - published, STALL_CHUNK, published)
          publishMs += outcome.ms
          published = target
          checkpoints.push({
            published,
            heapDeltaBytes: (await heapUsed()) - before,
            rssDeltaBytes: (await rendererRss()) - rssBefore,
            sender: outcome.sender,
          })
        }
        await call(sender, 'closeSender', name)
        rows.push({ variant, checkpoints, publishMs })
      }
      await cdp.detach()
      console.log(
        `5. sender memory while its worker is stalled (thread blocked, never grants credit): ${STALL_CHECKPOINTS.at(-1).toLocaleString('en')} events published ` +
          `from the page, ${STALL_CHUNK.toLocaleString('en')} per task; JS heap of the page after gc, and RSS of the renderer (page + worker), from a baseline taken once the worker blocked`,
      )
      const crossbusRow = rows.find((row) => row.variant === 'crossbus')
      table(
        [
          'variant',
          ...STALL_CHECKPOINTS.map((count) => `heap after ${count.toLocaleString('en')}`),
          'flat?',
          `RSS after ${STALL_CHECKPOINTS.at(-1).toLocaleString('en')}`,
          'link queued',
          'sent',
          'dropped',
        ],
        rows.map((row) => {
          const first = row.checkpoints[0]
          const last = row.checkpoints.at(-1)
          const link = row.variant === 'crossbus' ? last.sender.transports[0] : undefined
          return [
            LABELS[row.variant],
            ...row.checkpoints.map((checkpoint) => `${(checkpoint.heapDeltaBytes / MB).toFixed(2)} MB`),
            verdict(last.heapDeltaBytes - first.heapDeltaBytes <= FLAT_TOLERANCE_BYTES),
            Number.isNaN(last.rssDeltaBytes) ? 'n/a' : `${(last.rssDeltaBytes / MB).toFixed(1)} MB`,
            link === undefined ? '—' : `${link.queued} / ${link.capacity}`,
            link === undefined ? 'all' : link.sent,
            link === undefined ? '—' : link.dropped,
          ]
        }),
      )
      const first = crossbusRow.checkpoints[0]
      const last = crossbusRow.checkpoints.at(-1)
      const link = last.sender.transports[0]
      const bounded =
        crossbusRow.checkpoints.every((checkpoint) => checkpoint.sender.transports[0].queued <= LINK_CAPACITY) &&
        last.heapDeltaBytes - first.heapDeltaBytes <= FLAT_TOLERANCE_BYTES
      // published counts the one request that found the worker's subscription before it blocked.
      const accounted = link.sent + link.queued + link.dropped === last.sender.published
      console.log(
        `   crossbus link: ${link.sent} sent before the credit ran out, ${link.queued} queued (capacity ${link.capacity}), ${link.dropped} dropped` +
          (accounted ? ` (sent + queued + dropped = ${last.sender.published} published)` : ` — does not add up to ${last.sender.published} published`),
      )
      console.log(
        `   goal: a stalled receiver never grows sender memory past its queue bound (${LINK_CAPACITY} events): ` +
          `heap +${(first.heapDeltaBytes / MB).toFixed(2)} MB at ${STALL_CHECKPOINTS[0].toLocaleString('en')}, ` +
          `+${(last.heapDeltaBytes / MB).toFixed(2)} MB at ${STALL_CHECKPOINTS.at(-1).toLocaleString('en')}: ${verdict(bounded && accounted)}`,
      )
      results.stalled = { linkCapacity: LINK_CAPACITY, rows }
    }

    // ---- 6. durable writes to IndexedDB ----
    if (sections.includes(6)) {
      const entries = DURABLE_VARIANTS.map((entry) => ({ ...entry, rounds: [] }))
      for (let round = 0; round <= ROUNDS; round++) {
        for (const entry of entries) {
          const count = round === 0 ? Math.floor(entry.count / 4) : entry.count
          const outcome = await call(sender, 'durable', entry.variant, count, uniqueName(`durable-${entry.variant}`))
          if (outcome.committed !== count || outcome.stored !== count) {
            invalid = true
            problems.push(`durable ${entry.variant}: ${outcome.committed} committed, ${outcome.stored} read back, of ${count}`)
          }
          if (round > 0) entry.rounds.push({ count, ms: outcome.ms, perSecond: (count * 1000) / outcome.ms, transactions: outcome.transactions })
        }
      }
      for (const entry of entries) entry.perSecond = median(entry.rounds.map((round) => round.perSecond))
      const of = (variant) => entries.find((entry) => entry.variant === variant)
      console.log(
        '6. durable writes: events committed to IndexedDB per second, in one tab; crossbus through indexedDbStore() (group commit), idb-keyval on its own store',
      )
      table(
        ['variant', 'events/s', 'transactions', '÷ set', '÷ setMany 100'],
        entries.map((entry) => [
          entry.label,
          rate(entry.perSecond),
          `${Math.round(median(entry.rounds.map((round) => round.transactions)))} for ${entry.count.toLocaleString('en')}`,
          ratio(entry.perSecond / of('set').perSecond),
          ratio(entry.perSecond / of('setMany-100').perSecond),
        ]),
      )
      const perEvent = of('crossbus-1').perSecond / of('set').perSecond
      const batched = of('crossbus-100').perSecond / of('setMany-100').perSecond
      console.log(`   goal ≥ ${GOALS.durableVsSet}× set per event (crossbus, 1 per task): ${ratio(perEvent)} ${verdict(perEvent >= GOALS.durableVsSet)}`)
      console.log(
        `   goal ≥ ${GOALS.durableVsSetMany}× setMany in batches of 100 (crossbus, 100 per task): ${ratio(batched)} ${verdict(batched >= GOALS.durableVsSetMany)}`,
      )
      console.log()
      results.durable = { variants: entries, ratios: { perEvent, batched } }
    }

    if (sections.includes(7)) {
      // A new tab each time: its createBus() (or new BroadcastChannel) and first publish at module evaluation.
      const variants = [
        { variant: 'crossbus', label: 'crossbus: createBus(), publish at once', delays: [] },
        { variant: 'raw', label: 'raw BroadcastChannel: new, postMessage at once', delays: [] },
      ]
      const startupUrl = url.replace('index.html', 'startup.html')
      for (let round = 0; round <= STARTUP_ROUNDS; round++) {
        for (const entry of variants) {
          const busName = uniqueName(`startup-${entry.variant}`)
          await call(receiverPage, 'startupArm', entry.variant, busName)
          const page = await context.newPage()
          page.on('pageerror', (error) => problems.push(`startup tab: ${String(error)}`))
          await page.goto(`${startupUrl}?variant=${entry.variant}&name=${encodeURIComponent(busName)}`)
          const delay = await Promise.race([
            call(receiverPage, 'startupWait'),
            new Promise((resolve) => setTimeout(() => resolve(Number.NaN), ROUND_TIMEOUT_MS)),
          ])
          await page.close()
          if (Number.isNaN(delay)) {
            invalid = true
            problems.push(`startup ${entry.variant}: the new tab's first event never arrived`)
          } else if (round > 0) entry.delays.push(delay)
        }
      }
      for (const entry of variants) {
        const sorted = [...entry.delays].sort((a, b) => a - b)
        entry.p50 = percentile(sorted, 50)
        entry.p90 = percentile(sorted, 90)
        entry.max = sorted[sorted.length - 1]
      }
      const [crossbus, raw] = variants
      console.log(
        `7. startup: a new tab publishes at module evaluation; time from its createBus() (raw: new BroadcastChannel) to the event's delivery in a tab already subscribed (wall clocks of the two tabs); ${STARTUP_ROUNDS} new tabs per variant, taking turns`,
      )
      table(
        ['variant', 'p50', 'p90', 'max', 'crossbus p50 ÷ it'],
        variants.map((entry) => [entry.label, ms(entry.p50), ms(entry.p90), ms(entry.max), entry === crossbus ? '' : ratio(crossbus.p50 / entry.p50)]),
      )
      console.log(`   every new tab's first event arrived: ${verdict(variants.every((entry) => entry.delays.length === STARTUP_ROUNDS))}`)
      console.log()
      results.startup = { variants, ratio: crossbus.p50 / raw.p50 }
    }

    if (sections.includes(8)) {
      const variants = [
        { variant: 'crossbus', label: 'crossbus: one queue group over messagePort links', rounds: [] },
        { variant: 'raw', label: 'raw: round-robin by hand over the workers’ ports', rounds: [] },
      ]
      for (let round = 0; round <= ROUNDS; round++) {
        for (const entry of variants) {
          const count = round === 0 ? POOL_JOBS / 4 : POOL_JOBS
          const outcome = await call(sender, 'runPool', entry.variant, count, uniqueName(`pool-${entry.variant}`), CHUNK)
          if (outcome.shares.reduce((sum, share) => sum + share, 0) !== count) {
            invalid = true
            problems.push(`pool ${entry.variant}: ${outcome.shares.join('+')} handled of ${count}`)
          }
          if (round > 0) entry.rounds.push(outcome)
        }
      }
      for (const entry of variants) {
        entry.perSecond = median(entry.rounds.map((round) => round.perSecond))
        const spread = (round) => Math.max(...round.shares) / Math.max(1, Math.min(...round.shares))
        // The shares shown are those of the round whose spread is the median one.
        const byspread = [...entry.rounds].sort((a, b) => spread(a) - spread(b))
        const middle = byspread[Math.floor(byspread.length / 2)]
        entry.spread = spread(middle)
        entry.shares = middle.shares
      }
      const [crossbus, raw] = variants
      console.log(
        `8. a pool of this page and three dedicated workers: ${POOL_JOBS.toLocaleString('en')} jobs of a few µs each, ${CHUNK} published per task; first publish → last job done; the shares are the page's and each worker's`,
      )
      table(
        ['variant', 'jobs/s', 'shares (page, workers)', 'max ÷ min share', 'crossbus ÷ it'],
        variants.map((entry) => [
          entry.label,
          rate(entry.perSecond),
          entry.shares.map((share) => share.toLocaleString('en')).join(' / '),
          `${entry.spread.toFixed(2)}×`,
          entry === crossbus ? '' : ratio(crossbus.perSecond / entry.perSecond),
        ]),
      )
      console.log()
      results.pool = { variants, ratio: crossbus.perSecond / raw.perSecond }
    }

    if (profile) results.profiles = await profileCrossbus({ openPage, call, context, uniqueName })

    if (problems.length > 0) {
      console.log(`\npage errors and console warnings (${problems.length}):`)
      for (const problem of problems.slice(0, 20)) console.log(`   ${problem}`)
    }
    results.problems = problems
    results.seconds = (performance.now() - started) / 1000
    await writeFile(new URL('./results-browser.json', import.meta.url), `${JSON.stringify(results, null, 2)}\n`)
    console.log('\nwrote bench/results-browser.json')
  } finally {
    await context.close().catch(() => {})
    await browser.close().catch(() => {})
    await server.close()
  }
  if (invalid) process.exitCode = 1
}

/**
 * --profile: CPU profiles (CDP Profiler, 100 µs sampling) of both tabs during
 * one crossbus tab → tab burst, of the sending tab during the same burst with
 * validate: false, and of the page during a page → worker burst;
 * written to bench/profiles/*.cpuprofile (open them in Chrome DevTools) and
 * summarized as the functions with the most self time.
 */
async function profileCrossbus({ openPage, call, context, uniqueName }) {
  const count = 200_000
  const directory = new URL('./profiles/', import.meta.url)
  await mkdir(directory, { recursive: true })
  const summaries = {}
  const sender = await openPage()
  const receiver = await openPage()
  const sessions = { sender: await context.newCDPSession(sender), receiver: await context.newCDPSession(receiver) }
  const record = async (label, which, run) => {
    for (const key of which) {
      await sessions[key].send('Profiler.enable')
      await sessions[key].send('Profiler.setSamplingInterval', { interval: 100 })
      await sessions[key].send('Profiler.start')
    }
    await run()
    for (const key of which) {
      const { profile } = await sessions[key].send('Profiler.stop')
      const file = new URL(`${label}-${key}.cpuprofile`, directory)
      await writeFile(file, JSON.stringify(profile))
      summaries[`${label}-${key}`] = summarizeProfile(profile)
    }
  }

  const tabName = uniqueName('profile-tab')
  await call(receiver, 'receive', 'crossbus', tabName, 0, count)
  await call(sender, 'openSender', tabName, 'crossbus', 'tab', tabName, 1, count)
  await call(receiver, 'arm', tabName, count / 4, 0, false)
  await call(sender, 'burst', tabName, count / 4, CHUNK, 0, 1, ROUND_TIMEOUT_MS)
  await call(receiver, 'arm', tabName, count, 1, false)
  await record('tab', ['sender', 'receiver'], () => call(sender, 'burst', tabName, count, CHUNK, 1, 1, ROUND_TIMEOUT_MS))

  // The same burst without the publish-time structuredClone check, to see what else the sender spends.
  const plainName = uniqueName('profile-tab-novalidate')
  await call(receiver, 'receive', 'crossbus-novalidate', plainName, 0, count)
  await call(sender, 'openSender', plainName, 'crossbus-novalidate', 'tab', plainName, 1, count)
  await call(receiver, 'arm', plainName, count / 4, 0, false)
  await call(sender, 'burst', plainName, count / 4, CHUNK, 0, 1, ROUND_TIMEOUT_MS)
  await call(receiver, 'arm', plainName, count, 1, false)
  await record('tab-novalidate', ['sender'], () => call(sender, 'burst', plainName, count, CHUNK, 1, 1, ROUND_TIMEOUT_MS))

  const workerName = uniqueName('profile-worker')
  await call(sender, 'openSender', workerName, 'crossbus', 'worker', workerName, 1, count, count)
  await call(sender, 'armWorker', workerName, count / 4, 0, false)
  await call(sender, 'burst', workerName, count / 4, CHUNK, 0, 1, ROUND_TIMEOUT_MS)
  await call(sender, 'armWorker', workerName, count, 1, false)
  await record('worker', ['sender'], () => call(sender, 'burst', workerName, count, CHUNK, 1, 1, ROUND_TIMEOUT_MS))

  console.log(`\nprofiles (bench/profiles/*.cpuprofile): self time of the busiest functions during one ${count.toLocaleString('en')}-event crossbus burst`)
  for (const [label, summary] of Object.entries(summaries)) {
    console.log(`${label} (${summary.totalMs.toFixed(0)} ms sampled, ${(100 * summary.idleShare).toFixed(0)}% idle)`)
    table(
      ['function', 'self ms', 'self %'],
      summary.top.map((row) => [row.name, row.selfMs.toFixed(1), `${(100 * row.share).toFixed(1)}%`]),
    )
  }
  await sender.close()
  await receiver.close()
  return summaries
}

/** Self time per function (name and location), busiest first; idle and program time apart. */
function summarizeProfile(profile) {
  const nodes = new Map(profile.nodes.map((node) => [node.id, node]))
  const self = new Map()
  let total = 0
  let idle = 0
  for (let index = 0; index < profile.samples.length; index++) {
    const node = nodes.get(profile.samples[index])
    const delta = (profile.timeDeltas[index] ?? 0) / 1000
    total += delta
    const { functionName, url, lineNumber } = node.callFrame
    if (functionName === '(idle)') {
      idle += delta
      continue
    }
    const file = url.replace(/^.*?\/\/[^/]+\//, '').replace(/\?.*$/, '')
    // Line numbers are those of the code Vite served (types stripped), so only anonymous functions get one.
    const name = functionName ? `${functionName}${file ? ` ${file}` : ''}` : `(anonymous)${file ? ` ${file}:${lineNumber + 1}` : ''}`
    self.set(name, (self.get(name) ?? 0) + delta)
  }
  const busy = total - idle
  const top = [...self.entries()]
    .sort((a, b) => b[1] - a[1])
    .slice(0, 15)
    .map(([name, selfMs]) => ({ name, selfMs, share: selfMs / busy }))
  return { totalMs: total, idleShare: idle / total, top }
}
