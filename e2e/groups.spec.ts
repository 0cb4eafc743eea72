// Work shared across contexts (issue 12): three tabs and their dedicated
// workers, the README's setup (a BroadcastChannel link plus messagePort(worker)
// per tab). The workers are one queue group: each job is handled once, spread
// among them; a request runs one worker's replier, not all three.
import type { Page } from '@playwright/test'
import { expect, test } from './fixtures.ts'
import type { Seen } from './pages/kit.ts'

/** A tab's bus linked to the other tabs and to a dedicated worker of its own, which joins queue group 'pool' on jobs.run. */
async function tabWithWorker(page: Page, name: string): Promise<string> {
  return page.evaluate(async (busName) => {
    const { kit } = window
    const { worker, remote, id } = await kit.startWorker(busName)
    window.state.worker = remote
    window.state.workerId = id
    window.ctx = new kit.Ctx({ name: busName, transports: [kit.broadcastChannel(), kit.messagePort(worker)] })
    await remote.call({ op: 'record', pattern: 'jobs.run', capacity: 5000, queue: 'pool' })
    await remote.call({ op: 'answer', pattern: 'work.*' })
    return id
  }, name)
}

const jobsIn = (page: Page): Promise<Seen[]> => page.evaluate(() => window.state.worker.call<Seen[]>({ op: 'events', key: 'jobs.run' }))

test('three tabs’ workers in one queue group share the jobs, each once; a request runs in one worker', async ({ open, name }) => {
  const tabs = [await open(), await open(), await open()]
  const workers: string[] = []
  for (const tab of tabs) workers.push(await tabWithWorker(tab, name))
  const [publisher] = tabs as [Page, Page, Page]
  // Every worker reachable from the publishing tab (two of them through another tab).
  await expect.poll(() => publisher.evaluate(() => window.ctx.peerIds()), { timeout: 10_000 }).toEqual(expect.arrayContaining(workers))
  // Until each worker's membership has reached the publisher, probes show who takes part.
  await expect
    .poll(
      async () => {
        await publisher.evaluate(() => window.ctx.publish('jobs.run', 1, -1))
        const counts = await Promise.all(tabs.map(async (tab) => (await jobsIn(tab)).length))
        return counts.filter((count) => count > 0).length
      },
      { timeout: 10_000 },
    )
    .toBe(3)
  const before = (await Promise.all(tabs.map(jobsIn))).flat().length
  const sent = await publisher.evaluate(() => window.ctx.publish('jobs.run', 600))
  await expect.poll(async () => (await Promise.all(tabs.map(jobsIn))).flat().length, { timeout: 10_000 }).toBe(before + 600)
  const handled = (await Promise.all(tabs.map(jobsIn))).map((events) => events.filter((event) => sent.includes(event.id)))
  const ids = handled.flat().map((event) => event.id)
  expect(new Set(ids).size).toBe(600)
  expect(ids.sort()).toEqual([...sent].sort())
  for (const share of handled) expect(share.length, 'each worker’s share of 600 jobs').toBeGreaterThan(100)

  // One request runs in one worker.
  const answered = (): Promise<number[]> => Promise.all(tabs.map((tab) => tab.evaluate(() => window.state.worker.call<number>({ op: 'answered' }))))
  const ready = await publisher.evaluate(() => window.ctx.request('work.ready', null))
  expect(workers).toContain((ready as { by: string }).by)
  const runsBefore = (await answered()).reduce((sum, count) => sum + count, 0)
  const answer = (await publisher.evaluate(() => window.ctx.request('work.sum', [1, 2, 3]))) as { by: string }
  expect(workers).toContain(answer.by)
  await expect.poll(async () => (await answered()).reduce((sum, count) => sum + count, 0)).toBe(runsBefore + 1)
})

test('the README’s pool: a page that publishes its jobs as it starts its three workers shares them with the workers, each job once', async ({ open, name }) => {
  const page = await open()
  const sent = await page.evaluate((busName) => {
    const { kit } = window
    // Nothing is awaited: the workers' buses start after the page has published every job.
    const workers = [1, 2, 3].map(() => kit.spawnWorker(busName, { pattern: 'jobs.run', queue: 'pool' }))
    window.state.workers = workers.map(({ remote }) => remote)
    window.ctx = new kit.Ctx({ name: busName, transports: [kit.broadcastChannel(), ...workers.map(({ worker }) => kit.messagePort(worker))] })
    window.ctx.record('jobs.run', { queue: 'pool', key: 'page' })
    return window.ctx.publish('jobs.run', 300)
  }, name)
  const shares = (): Promise<Seen[][]> =>
    page.evaluate(async () => [
      window.ctx.recordings.get('page') ?? [],
      ...(await Promise.all(window.state.workers.map((remote) => remote.call<Seen[]>({ op: 'events', key: 'jobs.run' })))),
    ])
  await expect.poll(async () => (await shares()).flat().length, { timeout: 10_000 }).toBe(300)
  const handled = await shares()
  expect(
    handled
      .flat()
      .map((event) => event.id)
      .sort(),
  ).toEqual([...sent].sort())
  // The page's member took at most one at once (it was idle); the rest were shared once the workers were known.
  for (const share of handled.slice(1)) expect(share.length, 'each worker’s share of 300 jobs').toBeGreaterThan(50)
  expect(await page.evaluate(() => window.ctx.bus.stats().dropped)).toBe(0)
})
