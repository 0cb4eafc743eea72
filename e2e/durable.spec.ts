// Durable events in real Chromium (DESIGN.md, semantic 6): a log in IndexedDB
// shared by the tabs of an origin, durable consumers that survive a crash, a
// reload and a closed tab, one live instance per name (Web Locks).
// Every handled event is reported to this process before its handler returns,
// so what a page acked is already recorded here when the page dies.
import type { Page } from '@playwright/test'
import { crashTab, expect, test } from './fixtures.ts'
import type { DurableOptions } from './pages/kit.ts'

/** Capacity of the consumers' queues: what one read from the store brings in, at most. */
const BATCH = 64

interface Handled {
  id: string
  by: string
  at: number
}

/** Records, in this process, every event a page's durable consumer handles. */
async function reportTo(page: Page, handled: Handled[], by: string): Promise<void> {
  await page.exposeFunction('handled', (id: string) => void handled.push({ id, by, at: Date.now() }))
}

async function startConsumer(page: Page, options: DurableOptions): Promise<void> {
  await page.evaluate((settings) => {
    window.ctx = window.kit.startDurableConsumer(settings)
  }, options)
}

/** Starts publishing in the background; `published(page)` resolves with the ids once all are committed. */
async function startPublisher(page: Page, name: string, count: number, burst: number, every: number): Promise<void> {
  await page.evaluate(
    ({ busName, total, size, pause }) => {
      const { kit } = window
      window.ctx = new kit.Ctx({ name: busName, store: kit.indexedDbStore({ dbName: busName }) })
      window.state.published = kit.publishDurable(window.ctx, 'jobs.run', total, size, pause)
    },
    { busName: name, total: count, size: burst, pause: every },
  )
}

const published = (page: Page): Promise<string[]> => page.evaluate(() => window.state.published)

/** Whether a page's durable subscription is the live instance (false: on standby). */
const isLive = (page: Page): Promise<boolean> => page.evaluate(() => window.ctx.bus.stats().subscriptions[0]?.standby === false)

/** A tab whose durable consumer reports to `handled` as `by`; resolves once it is the live instance (unless it waits on standby). */
async function consumerTab(page: Page, handled: Handled[], by: string, options: DurableOptions, live = true): Promise<Page> {
  await reportTo(page, handled, by)
  await startConsumer(page, options)
  if (live) await expect.poll(() => isLive(page)).toBe(true)
  return page
}

/** Ids handled more than once, and ids of `all` never handled. */
function tally(all: readonly string[], handled: readonly Handled[]): { missing: string[]; duplicates: number } {
  const seen = new Set(handled.map((entry) => entry.id))
  return { missing: all.filter((id) => !seen.has(id)), duplicates: handled.length - seen.size }
}

test('2,000 durable events: a slow durable consumer crashed mid-stream and reopened handles every one at least once, duplicates within one batch', async ({
  open,
  name,
}) => {
  test.setTimeout(90_000)
  const handled: Handled[] = []
  const consumerOptions = { name, dbName: name, consumer: 'worker', pattern: 'jobs.>', delay: 2, capacity: BATCH }
  const publisher = await open()
  const first = await consumerTab(await open(), handled, 'first', consumerOptions)
  // 2,000 events in bursts of 100 every 100 ms: the crash comes while they are still arriving.
  await startPublisher(publisher, name, 2000, 100, 100)

  await expect.poll(() => handled.length, { timeout: 30_000 }).toBeGreaterThanOrEqual(300)
  await crashTab(first)
  const atCrash = handled.length

  await consumerTab(await open(), handled, 'reopened', consumerOptions, false)
  const ids = await published(publisher)
  expect(ids).toHaveLength(2000)
  await expect.poll(() => tally(ids, handled).missing.length, { timeout: 60_000, message: 'every published event handled' }).toBe(0)
  const { duplicates } = tally(ids, handled)
  test.info().annotations.push({
    type: 'durable crash',
    description: `${atCrash} handled before the crash, ${duplicates} handled twice, ${handled.length} handled in all`,
  })
  expect(atCrash).toBeLessThan(2000)
  expect(duplicates).toBeLessThanOrEqual(BATCH)
})

for (const ending of ['crashes', 'closes'] as const) {
  test(`a standby tab takes over within a second when the live consumer's tab ${ending}, and nothing is lost`, async ({ open, name }) => {
    test.setTimeout(60_000)
    const handled: Handled[] = []
    const consumerOptions = { name, dbName: name, consumer: 'crew', pattern: 'jobs.>', delay: 3, capacity: BATCH }
    const publisher = await open()
    const live = await consumerTab(await open(), handled, 'live', consumerOptions)
    const standby = await consumerTab(await open(), handled, 'standby', consumerOptions, false)
    expect(await isLive(standby)).toBe(false)
    await startPublisher(publisher, name, 600, 50, 50)

    await expect.poll(() => handled.length, { timeout: 20_000 }).toBeGreaterThanOrEqual(100)
    expect(handled.every((entry) => entry.by === 'live')).toBe(true)
    let endedAt: number
    if (ending === 'crashes') {
      await crashTab(live)
      endedAt = Date.now()
    } else {
      endedAt = Date.now()
      await live.close()
    }
    await expect.poll(() => handled.some((entry) => entry.by === 'standby'), { timeout: 5000 }).toBe(true)
    const tookOver = (handled.find((entry) => entry.by === 'standby') as Handled).at - endedAt
    test.info().annotations.push({ type: 'takeover', description: `${ending}: the standby handled its first event ${tookOver} ms later` })
    expect(tookOver).toBeLessThan(1000)
    expect(await isLive(standby)).toBe(true)

    const ids = await published(publisher)
    await expect.poll(() => tally(ids, handled).missing.length, { timeout: 30_000 }).toBe(0)
    expect(tally(ids, handled).duplicates).toBeLessThanOrEqual(BATCH)
  })
}

test('a consumer tab reloaded mid-stream picks up where its last ack left it', async ({ open, name }) => {
  test.setTimeout(60_000)
  const handled: Handled[] = []
  const consumerOptions = { name, dbName: name, consumer: 'reloader', pattern: 'jobs.>', delay: 2, capacity: BATCH }
  const publisher = await open()
  const consumer = await consumerTab(await open(), handled, 'consumer', consumerOptions)
  await startPublisher(publisher, name, 1000, 100, 50)
  await expect.poll(() => handled.length, { timeout: 20_000 }).toBeGreaterThanOrEqual(200)

  await consumer.reload()
  await expect(consumer.locator('#status')).toHaveText('ready')
  const atReload = handled.length
  await startConsumer(consumer, consumerOptions)
  const ids = await published(publisher)
  await expect.poll(() => tally(ids, handled).missing.length, { timeout: 30_000 }).toBe(0)
  const { duplicates } = tally(ids, handled)
  test.info().annotations.push({ type: 'reload', description: `${atReload} handled before the reload, ${duplicates} twice` })
  expect(atReload).toBeLessThan(1000)
  expect(duplicates).toBeLessThanOrEqual(BATCH)
})

test('a consumer that throws until its retries run out dead-letters each event, which then leaves the log', async ({ open, name }) => {
  const handled: Handled[] = []
  const publisher = await open()
  const consumer = await consumerTab(await open(), handled, 'consumer', {
    name,
    dbName: name,
    consumer: 'refuser',
    pattern: 'jobs.>',
    delay: 0,
    fail: { attempts: 2, deadLetter: 'dead.jobs' },
  })
  // The dead letters go to a durable auditor in the publisher's tab.
  await publisher.evaluate((busName) => {
    const { kit } = window
    window.ctx = new kit.Ctx({ name: busName, store: kit.indexedDbStore({ dbName: busName }) })
    window.ctx.record('dead.>', { durable: 'auditor' })
  }, name)
  await expect.poll(() => publisher.evaluate(() => window.ctx.bus.stats().subscriptions[0]?.standby)).toBe(false)
  const ids = await publisher.evaluate(async () => {
    const receipts = [1, 2, 3, 4, 5].map((n) => window.ctx.bus.publish('jobs.run', { n }, { durable: true }))
    await Promise.all(receipts.map((receipt) => receipt.persisted))
    return receipts.map((receipt) => receipt.id)
  })

  await expect.poll(() => publisher.evaluate(() => window.ctx.count('dead.>')), { timeout: 10_000 }).toBe(5)
  const letters = await publisher.evaluate(() => window.ctx.events('dead.>'))
  expect(letters.map((letter) => letter.data)).toEqual([1, 2, 3, 4, 5].map((n) => ({ n })))
  // Two attempts each.
  expect(ids.map((id) => handled.filter((entry) => entry.id === id).length)).toEqual([2, 2, 2, 2, 2])
  // Acked by the consumer (dead-lettered) and, as dead letters, by the auditor: compaction empties the log.
  await expect
    .poll(
      () =>
        consumer.evaluate(async (dbName) => {
          const store = window.kit.indexedDbStore({ dbName })
          await store.compact()
          const left = await store.read(0, 100)
          store.close()
          return left.map((stored) => stored.topic)
        }, name),
      { timeout: 10_000 },
    )
    .toEqual([])
})

test('a retained durable event outlives the tab that published it: a tab opened after it closed starts from it', async ({ open, name }) => {
  const first = await open()
  await first.evaluate(async (busName) => {
    const { kit } = window
    window.ctx = new kit.Ctx({ name: busName, store: kit.indexedDbStore({ dbName: busName }) })
    await window.ctx.bus.publish('settings.theme', { theme: 'dark' }, { durable: true, retain: true }).persisted
  }, name)
  await first.close()
  // No live context has it any more: only the log.
  const later = await open()
  const seen = await later.evaluate(async (busName) => {
    const { kit } = window
    window.ctx = new kit.Ctx({ name: busName, store: kit.indexedDbStore({ dbName: busName }) })
    const recorded = window.ctx.record('settings.*', { last: true })
    await kit.until(() => recorded.length > 0, 5000, 5, 'the retained event')
    return recorded.map((event) => event.data)
  }, name)
  expect(seen).toEqual([{ theme: 'dark' }])
})

test('the log deleted from another tab while a consumer runs: the consumer reports it and handles every event committed after', async ({ open, name }) => {
  test.setTimeout(60_000)
  const handled: Handled[] = []
  const consumer = await consumerTab(await open(), handled, 'consumer', { name, dbName: name, consumer: 'survivor', pattern: 'jobs.>', delay: 0 })
  const publisher = await open()
  await publisher.evaluate((busName) => {
    const { kit } = window
    window.ctx = new kit.Ctx({ name: busName, store: kit.indexedDbStore({ dbName: busName }) })
  }, name)
  const before = await publisher.evaluate(() => window.kit.publishDurable(window.ctx, 'jobs.run', 20, 20, 0))
  await expect.poll(() => tally(before, handled).missing.length, { timeout: 10_000 }).toBe(0)
  // A third tab deletes the database ("clear site data" does the same): positions start again at 1.
  const deleter = await open()
  await deleter.evaluate(
    (dbName) =>
      new Promise<void>((resolve, reject) => {
        const request = indexedDB.deleteDatabase(dbName)
        request.onsuccess = () => resolve()
        request.onerror = () => reject(request.error)
      }),
    name,
  )
  const after = await publisher.evaluate(() => window.kit.publishDurable(window.ctx, 'jobs.run', 50, 50, 0))
  expect(after).toHaveLength(50)
  await expect.poll(() => tally(after, handled).missing.length, { timeout: 15_000, message: 'every event committed after the deletion handled' }).toBe(0)
  const reports = await consumer.evaluate(() =>
    window.ctx.diagnostics.filter((diagnostic) => diagnostic.type === 'storage-error').map((diagnostic) => diagnostic.message),
  )
  expect(reports.some((message) => /deleted or replaced/.test(message))).toBe(true)
})

test("FIFO per source across tabs: a durable subscription gets another tab's durable and plain events in publish order", async ({ open, name }) => {
  const consumer = await open()
  await consumer.evaluate((busName) => {
    const { kit } = window
    window.ctx = new kit.Ctx({ name: busName, store: kit.indexedDbStore({ dbName: busName }) })
    window.ctx.record('orders.*', { durable: 'ordered' })
  }, name)
  await expect.poll(() => consumer.evaluate(() => window.ctx.bus.stats().subscriptions[0]?.standby)).toBe(false)
  const publisher = await open()
  const expected = await publisher.evaluate(async (busName) => {
    const { kit } = window
    window.ctx = new kit.Ctx({ name: busName, store: kit.indexedDbStore({ dbName: busName }) })
    await window.ctx.wanted('orders.probe')
    const sent: number[] = []
    // Ten rounds of A1 durable, A2, A3 durable, A4, one round per task.
    for (let round = 0; round < 10; round++) {
      for (let index = 0; index < 4; index++) {
        const n = round * 4 + index
        sent.push(n)
        window.ctx.bus.publish('orders.placed', { n }, { durable: index % 2 === 0 })
      }
      await new Promise((resolve) => setTimeout(resolve, 0))
    }
    await window.ctx.bus.flush()
    return sent
  }, name)
  await expect.poll(() => consumer.evaluate(() => window.ctx.count('orders.*')), { timeout: 10_000 }).toBe(expected.length)
  const order = await consumer.evaluate(() => window.ctx.events('orders.*').map((event) => (event.data as { n: number }).n))
  expect(order).toEqual(expected)
})
