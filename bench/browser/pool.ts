// Section 8 of the bench: a pool of this page and three dedicated workers
// sharing jobs. crossbus: one queue group ('pool') over messagePort links;
// raw: the page posts each job round-robin over the workers' ports by hand and
// takes every fourth itself. Every member does the same small work per job
// and tells the page its count once per task over a control port.
import { type Bus, createBus } from '../../src/index.ts'
import { messagePort } from '../../src/transports/index.ts'

export type PoolVariant = 'crossbus' | 'raw'

/** The work of one job: a few microseconds of arithmetic. */
export function work(seed: number): number {
  let x = seed
  for (let index = 0; index < 2000; index++) x = (x * 31 + index) | 0
  return x
}

/** Counts jobs and reports the count on `port` at most once per task. */
export function counter(report: (count: number) => void): () => void {
  let count = 0
  let scheduled = false
  return () => {
    count++
    if (scheduled) return
    scheduled = true
    setTimeout(() => {
      scheduled = false
      report(count)
    }, 0)
  }
}

export interface PoolResult {
  ms: number
  perSecond: number
  /** Jobs each member handled: the page first. */
  shares: number[]
}

/** Runs `count` jobs through a pool of this page and three workers; resolves once every job is handled. */
export async function runPool(variant: PoolVariant, count: number, name: string, chunk: number): Promise<PoolResult> {
  const workers = [0, 1, 2].map(() => new Worker(new URL('./pool-worker.ts', import.meta.url), { type: 'module' }))
  const shares = [0, 0, 0, 0]
  let resolveDone: () => void = () => {}
  const done = new Promise<void>((resolve) => {
    resolveDone = resolve
  })
  const total = (): number => shares.reduce((sum, share) => sum + share, 0)
  const controls = workers.map((worker, index) => {
    const control = new MessageChannel()
    control.port1.onmessage = (message: MessageEvent<{ type: string; count?: number }>) => {
      if (message.data.type !== 'count') return
      shares[index + 1] = message.data.count as number
      if (total() >= count) resolveDone()
    }
    worker.postMessage({ variant, name, control: control.port2 }, [control.port2])
    return control.port1
  })
  await Promise.all(controls.map((port) => new Promise((resolve) => port.addEventListener('message', resolve, { once: true }))))
  const ownCount = counter((value) => {
    shares[0] = value
    if (total() >= count) resolveDone()
  })
  let sink = 0
  let start = 0
  if (variant === 'crossbus') {
    const bus = createBus({ name, transports: workers.map((worker) => messagePort(worker)), onDiagnostic: () => {} })
    bus.process(
      'bench.job',
      (event) => {
        if ((event.data as number) < 0) return
        sink ^= work(event.data as number)
        ownCount()
      },
      { queue: 'pool', capacity: 4096 },
    )
    // Every worker is a member the page knows of: probes (negative) until each has taken one.
    for (let attempt = 0; attempt < 500 && (await probeMembers(bus, controls)) < 3; attempt++);
    shares.fill(0)
    start = performance.now()
    for (let sent = 0; sent < count; sent += chunk) {
      for (let index = sent; index < Math.min(count, sent + chunk); index++) bus.publish('bench.job', index)
      await new Promise((resolve) => setTimeout(resolve, 0))
    }
    await done
    const ms = performance.now() - start
    await bus.close({ timeout: 0 })
    for (const worker of workers) worker.terminate()
    return { ms, perSecond: (count * 1000) / ms, shares: [...shares] }
  }
  const ports = workers.map((worker) => worker)
  start = performance.now()
  let next = 0
  for (let sent = 0; sent < count; sent += chunk) {
    for (let index = sent; index < Math.min(count, sent + chunk); index++) {
      const member = next++ % 4
      if (member === 0) {
        sink ^= work(index)
        ownCount()
      } else (ports[member - 1] as Worker).postMessage(index)
    }
    await new Promise((resolve) => setTimeout(resolve, 0))
  }
  await done
  const ms = performance.now() - start
  for (const worker of workers) worker.terminate()
  if (sink === 42) console.log('')
  return { ms, perSecond: (count * 1000) / ms, shares: [...shares] }
}

/** Publishes one probe job and resolves with how many workers have handled one (their count went above 0). */
async function probeMembers(bus: Bus, controls: MessagePort[]): Promise<number> {
  bus.publish('bench.job', -1)
  const counts = await Promise.all(
    controls.map(
      (port) =>
        new Promise<number>((resolve) => {
          const answer = (message: MessageEvent<{ type: string; probes?: number }>): void => {
            if (message.data.type !== 'probes') return
            port.removeEventListener('message', answer)
            resolve(message.data.probes as number)
          }
          port.addEventListener('message', answer)
          port.postMessage('probes')
        }),
    ),
  )
  return counts.filter((probes) => probes > 0).length
}
