// The NATS part of `npm run bench`: tab → NATS → tab, in two browser contexts (two devices), crossbus
// (a bus and natsBridge in each tab) side by side with the raw @nats-io/nats-core client doing the same, in
// one run, against a real nats-server that this script starts on 127.0.0.1 (JetStream, WebSocket, free
// ports) and stops by its pid. Sections:
//   7. throughput: events/s from the first publish to the last delivery in the other device's tab
//   8. one-way latency of a paced stream: p50 / p99
//   9. events lost across a server restart (kill -9) mid-stream: crossbus's JetStream outbox against the
//      raw client's core publish and its JetStream publish
// Writes bench/results-nats.json. See bench/README.md.

import { mkdir, writeFile } from 'node:fs/promises'
import os from 'node:os'
import { fileURLToPath } from 'node:url'
import { jetstreamManager } from '@nats-io/jetstream'
import { wsconnect } from '@nats-io/nats-core'
import { chromium } from 'playwright'
import { createServer } from 'vite'
import { WebSocket } from 'ws'
import { chromiumLaunchOptions } from '../scripts/chromium.mjs'
import { freePort, startNatsServer } from '../test/nats-server.mjs'
import { rate, table, verdict } from './format.mjs'

const root = fileURLToPath(new URL('..', import.meta.url))

const ROUNDS = 5
const THROUGHPUT_COUNT = 50_000
const CHUNK = 1000
const LATENCY_RATE = 200
const LATENCY_COUNT = 2000
const LATENCY_SEGMENTS = 4
const LATENCY_WARMUP = 200
/** The restart: events in bursts of LOSS_BURST every LOSS_EVERY ms; the server is killed after LOSS_KILL_AT ms and back LOSS_DOWN_MS later. */
const LOSS_COUNT = 3000
const LOSS_BURST = 20
const LOSS_EVERY = 10
const LOSS_KILL_AT = 400
const LOSS_DOWN_MS = 1000
const COLLECT_TIMEOUT_MS = 30_000

const GOALS = { throughput: 0.8, latency: 1.1 }
const LABELS = { crossbus: 'crossbus', raw: 'raw nats-core', 'raw-jetstream': 'raw nats-core, js.publish' }

const median = (values) => {
  const sorted = [...values].sort((a, b) => a - b)
  const middle = sorted.length >> 1
  return sorted.length % 2 === 1 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2
}
const percentile = (sorted, p) => sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]
const ms = (value) => `${value.toFixed(3)} ms`
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))

export async function runNats({ sections = [9, 10, 11] } = {}) {
  const nats = await startNatsServer()
  const admin = await wsconnect({ servers: nats.wsUrl, wsFactory: (url) => Promise.resolve({ socket: new WebSocket(url), encrypted: false }) })
  const port = await freePort()
  const server = await createServer({
    configFile: false,
    root,
    define: { 'process.env.NODE_ENV': JSON.stringify('production') },
    logLevel: 'warn',
    clearScreen: false,
    // Cross-origin isolated pages: performance.now() has 5 µs resolution instead of 100 µs (a WebSocket is no subresource COEP blocks).
    server: {
      host: '127.0.0.1',
      port,
      strictPort: true,
      hmr: false,
      watch: null,
      headers: { 'Cross-Origin-Opener-Policy': 'same-origin', 'Cross-Origin-Embedder-Policy': 'require-corp' },
    },
    optimizeDeps: { include: ['@nats-io/nats-core', '@nats-io/jetstream', 'idb-keyval'], noDiscovery: true },
  })
  await server.listen()
  const url = `http://127.0.0.1:${port}/bench/nats/index.html`
  const launch = chromiumLaunchOptions()
  const browser = await chromium.launch({ headless: true, ...launch })
  const problems = []
  const results = { date: new Date().toISOString(), chromium: browser.version(), natsServer: '2.9', loadAverage: os.loadavg()[0] }
  let runs = 0
  const unique = (prefix) => `nats-${prefix}-${++runs}-${Date.now().toString(36)}`

  try {
    // Two devices: a browser context each.
    const devices = [await browser.newContext(), await browser.newContext()]
    const openPage = async (device, label) => {
      const page = await device.newPage()
      page.on('pageerror', (error) => problems.push(`${label}: ${String(error)}`))
      await page.goto(url)
      await page.waitForFunction(() => document.getElementById('status')?.textContent === 'ready')
      return page
    }
    const call = (page, method, ...args) => page.evaluate(({ method, args }) => window.natsBench[method](...args), { method, args })
    const pair = async (variant, extra = {}) => {
      const name = unique(variant)
      const subject = `bench.${name.replace(/[^a-z0-9]/gi, '')}`
      const sender = await openPage(devices[0], `${variant} sender`)
      const receiver = await openPage(devices[1], `${variant} receiver`)
      await call(receiver, 'open', { variant, role: 'receiver', servers: nats.wsUrl, name: `${name}-r`, subject, ...extra.receiver })
      await call(sender, 'open', { variant, role: 'sender', servers: nats.wsUrl, name: `${name}-s`, subject, ...extra.sender })
      return {
        variant,
        label: extra.label ?? LABELS[variant],
        sender,
        receiver,
        subject,
        close: async () => {
          await call(sender, 'close')
          await call(receiver, 'close')
          await sender.close()
          await receiver.close()
        },
      }
    }

    const [load] = os.loadavg()
    const cpus = os.cpus()
    console.log(
      `crossbus NATS bench: Chromium ${browser.version()} headless, nats-server on 127.0.0.1 (pid ${nats.pid}, WebSocket), ` +
        `${cpus.length} × ${cpus[0]?.model ?? 'unknown cpu'}, load average ${load.toFixed(2)}`,
    )
    console.log('two browser contexts (two devices): sender tab in one, receiver tab in the other; crossbus as a production build (NODE_ENV=production)\n')

    // ---- 7. throughput ----
    if (sections.includes(9)) {
      const entries = [
        await pair('crossbus'),
        await pair('raw'),
        await pair('crossbus', { label: 'crossbus, ids: true', sender: { ids: true } }),
        await pair('raw-header', { label: 'raw nats-core + the same header' }),
      ]
      for (const entry of entries) entry.rounds = []
      for (let round = 0; round <= ROUNDS; round++) {
        for (const entry of entries) {
          const count = round === 0 ? THROUGHPUT_COUNT / 5 : THROUGHPUT_COUNT
          const from = round * THROUGHPUT_COUNT
          await call(entry.receiver, 'arm', count)
          const { startedAt, publishMs } = await call(entry.sender, 'burst', count, CHUNK, from)
          const outcome = await call(entry.receiver, 'collect', COLLECT_TIMEOUT_MS)
          if (outcome.received < count) problems.push(`throughput ${entry.variant}: ${outcome.received} of ${count} arrived`)
          if (round > 0)
            entry.rounds.push({
              perSecond: (outcome.received * 1000) / (outcome.lastAt - startedAt),
              publishMs,
              ms: outcome.lastAt - startedAt,
              received: outcome.received,
              duplicates: outcome.duplicates,
            })
        }
      }
      for (const entry of entries) {
        const rates = entry.rounds.map((round) => round.perSecond)
        entry.perSecond = median(rates)
        entry.spread = (Math.max(...rates) - Math.min(...rates)) / entry.perSecond
        entry.stats = await call(entry.sender, 'stats')
        entry.receiverStats = await call(entry.receiver, 'stats')
      }
      const [crossbus, raw, crossbusIds, rawHeader] = entries
      console.log(
        `9. tab → NATS → tab throughput: ${THROUGHPUT_COUNT.toLocaleString('en')} events per round, ${CHUNK} published per task, JSON payloads; first publish → last delivery`,
      )
      table(
        ['variant', 'events', 'events/s', 'spread', 'lost', 'crossbus ÷ it'],
        entries.map((entry) => {
          const mine = entry === rawHeader ? crossbusIds : crossbus
          return [
            entry.label,
            THROUGHPUT_COUNT.toLocaleString('en'),
            rate(entry.perSecond),
            `${(entry.spread * 100).toFixed(0)}%`,
            entry.rounds.reduce((sum, round) => sum + (THROUGHPUT_COUNT - round.received), 0),
            entry === raw || entry === rawHeader ? `${(mine.perSecond / entry.perSecond).toFixed(2)}× (${mine.label})` : '',
          ]
        }),
      )
      const bridgeSent = crossbus.stats.bridge
      console.log(
        `   crossbus sender bridge: exported ${bridgeSent.exported}, dropped ${bridgeSent.dropped}; receiver bridge: imported ${crossbus.receiverStats.bridge.imported}, rejected ${crossbus.receiverStats.bridge.rejected}`,
      )
      const ratio = crossbus.perSecond / raw.perSecond
      console.log(`   goal ≥ ${GOALS.throughput}× the raw client: ${ratio.toFixed(2)}× ${verdict(ratio >= GOALS.throughput)}`)
      const withIds = crossbusIds.perSecond / rawHeader.perSecond
      console.log(`   with the id header on both sides (ids: true): ${withIds.toFixed(2)}× the raw client sending the same header\n`)
      results.throughput = entries.map(({ label, perSecond, spread, rounds }) => ({ variant: label, perSecond, spread, rounds }))
      for (const entry of entries) await entry.close()
    }

    // ---- 8. latency ----
    if (sections.includes(10)) {
      const entries = [await pair('crossbus'), await pair('raw')]
      for (const entry of entries) {
        entry.latencies = []
        await call(entry.receiver, 'arm', LATENCY_WARMUP)
        await call(entry.sender, 'paced', LATENCY_WARMUP, LATENCY_RATE, 0)
        await call(entry.receiver, 'collect', COLLECT_TIMEOUT_MS)
      }
      const perSegment = LATENCY_COUNT / LATENCY_SEGMENTS
      for (let segment = 1; segment <= LATENCY_SEGMENTS; segment++) {
        for (const entry of entries) {
          await call(entry.receiver, 'arm', perSegment)
          await call(entry.sender, 'paced', perSegment, LATENCY_RATE, segment * perSegment)
          const outcome = await call(entry.receiver, 'collect', COLLECT_TIMEOUT_MS)
          if (outcome.received < perSegment) problems.push(`latency ${entry.variant}: ${outcome.received} of ${perSegment} arrived`)
          entry.latencies.push(...outcome.latencies)
        }
      }
      const rows = entries.map((entry) => {
        const sorted = [...entry.latencies].sort((a, b) => a - b)
        return { variant: entry.variant, count: sorted.length, p50: percentile(sorted, 50), p99: percentile(sorted, 99), max: sorted[sorted.length - 1] }
      })
      const [crossbus, raw] = rows
      console.log(
        `10. one-way latency tab → NATS → tab, paced stream of ${LATENCY_RATE.toLocaleString('en')} events/s, one per task, ${LATENCY_COUNT.toLocaleString('en')} events ` +
          `(${LATENCY_SEGMENTS} segments taking turns); receiver wall clock − sender's stamp at publish`,
      )
      table(
        ['variant', 'events', 'p50', 'p99', 'max', 'crossbus ÷ it (p50, p99)'],
        rows.map((row) => [
          LABELS[row.variant],
          row.count,
          ms(row.p50),
          ms(row.p99),
          ms(row.max),
          row === crossbus ? '' : `${(crossbus.p50 / row.p50).toFixed(2)}×, ${(crossbus.p99 / row.p99).toFixed(2)}×`,
        ]),
      )
      const ratio = crossbus.p99 / raw.p99
      console.log(`   goal ≤ ${GOALS.latency}× the raw client's latency (p99): ${ratio.toFixed(2)}× ${verdict(ratio <= GOALS.latency)}`)
      const ratio50 = crossbus.p50 / raw.p50
      console.log(`   goal ≤ ${GOALS.latency}× the raw client's latency (p50): ${ratio50.toFixed(2)}× ${verdict(ratio50 <= GOALS.latency)}\n`)
      results.latency = rows
      for (const entry of entries) await entry.close()
    }

    // ---- 9. lost across a server restart ----
    if (sections.includes(11)) {
      const manager = await jetstreamManager(admin)
      const rows = []
      for (const variant of ['crossbus', 'raw', 'raw-jetstream']) {
        const streamName = unique('loss').replace(/[^a-z0-9]/gi, '')
        const extra = variant === 'crossbus' ? { sender: { stream: streamName }, receiver: { stream: streamName, durable: `${streamName}-in` } } : {}
        const entry = await pair(variant, extra)
        await manager.streams.add({ name: streamName, subjects: [entry.subject] })
        await call(entry.receiver, 'arm', LOSS_COUNT)
        const streaming = call(entry.sender, 'stream', LOSS_COUNT, LOSS_BURST, LOSS_EVERY)
        await sleep(LOSS_KILL_AT)
        await nats.kill()
        const killedAt = Date.now()
        await sleep(LOSS_DOWN_MS)
        await nats.start()
        const back = Date.now() - killedAt
        const sent = await streaming
        const outcome = await call(entry.receiver, 'collect', COLLECT_TIMEOUT_MS, 3000)
        // What the stream holds: the far end of an outbox, and what a raw JetStream publish got in.
        const admin2 = await wsconnect({ servers: nats.wsUrl, wsFactory: (url) => Promise.resolve({ socket: new WebSocket(url), encrypted: false }) })
        const inStream = (await (await jetstreamManager(admin2)).streams.info(streamName)).state.messages
        await admin2.close()
        const arrived = variant === 'raw-jetstream' ? sent.published - sent.failed : outcome.received
        rows.push({ variant, published: sent.published, arrived, lost: sent.published - arrived, duplicates: outcome.duplicates, inStream, downMs: back })
        await entry.close().catch(() => {})
      }
      console.log(
        `11. events lost across a server restart mid-stream: ${LOSS_COUNT.toLocaleString('en')} events, ${LOSS_BURST} every ${LOSS_EVERY} ms; ` +
          `the server is killed (-9) after ${LOSS_KILL_AT} ms and started again ${LOSS_DOWN_MS} ms later (same store)`,
      )
      table(
        ['variant', 'published', 'arrived', 'lost', 'duplicates delivered', 'in the stream', 'server down'],
        rows.map((row) => [
          row.variant === 'crossbus'
            ? 'crossbus, durable (JetStream outbox)'
            : row.variant === 'raw'
              ? 'raw nats-core, publish'
              : 'raw nats-core, js.publish awaited',
          row.published,
          row.variant === 'raw-jetstream' ? `${row.arrived} acked` : row.arrived,
          row.lost,
          row.variant === 'raw-jetstream' ? '—' : row.duplicates,
          row.inStream,
          `${row.downMs} ms`,
        ]),
      )
      const [crossbus, raw] = rows
      console.log(
        `   aim: 0 lost where the raw client loses (${raw.lost} lost by raw publish): crossbus lost ${crossbus.lost} ${verdict(crossbus.lost === 0)}\n`,
      )
      results.restart = rows
    }
    for (const device of devices) await device.close()
  } finally {
    await browser.close()
    await server.close()
    await admin.close().catch(() => {})
    await nats.dispose()
  }
  if (problems.length > 0) {
    console.log('problems:')
    for (const problem of problems.slice(0, 20)) console.log(`  ${problem}`)
  }
  await mkdir(new URL('.', import.meta.url), { recursive: true })
  await writeFile(new URL('./results-nats.json', import.meta.url), `${JSON.stringify({ ...results, problems }, null, 2)}\n`)
}
