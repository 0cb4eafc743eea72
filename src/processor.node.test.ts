// Node only: EventTarget warns past 10 listeners of one kind (MaxListenersExceededWarning).
import { expect, test, vi } from 'vitest'
import { createBus } from './bus.js'

test('a processor running 50 attempts at once adds no listener per attempt to one signal (no MaxListenersExceededWarning)', async () => {
  const warnings: string[] = []
  const onWarning = (warning: Error): void => void warnings.push(warning.name)
  process.on('warning', onWarning)
  try {
    const bus = createBus({ transports: [] })
    const release: (() => void)[] = []
    bus.process('work.>', () => new Promise<void>((resolve) => release.push(resolve)), { concurrency: 50 })
    for (let index = 0; index < 50; index++) bus.publish('work.item', index)
    await vi.waitFor(() => expect(release).toHaveLength(50))
    for (const resolve of release) resolve()
    await bus.close()
    // Warnings are emitted on the next tick.
    await new Promise((resolve) => setImmediate(resolve))
    expect(warnings.filter((name) => name === 'MaxListenersExceededWarning')).toEqual([])
  } finally {
    process.off('warning', onWarning)
  }
})
