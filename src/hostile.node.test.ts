// Issue 11: one frame from a worker thread used to end a Node process (an
// exception in a message listener is fatal there). The script runs in a
// process of its own, so an exit status says what happened.
import { execFile } from 'node:child_process'
import { promisify } from 'node:util'
import { bundle } from '../test/bundle.js'
import { afterAll, beforeAll, expect, test } from 'vitest'

let garbageFile: string
let bundled: { file: string; dispose(): void }

beforeAll(async () => {
  bundled = await bundle(new URL('../test/garbage-process.ts', import.meta.url))
  garbageFile = bundled.file
})

afterAll(() => {
  bundled.dispose()
})

test('garbage from a worker thread is refused and counted; the process lives on and exits normally', async () => {
  const { stdout } = await promisify(execFile)(process.execPath, [garbageFile], { timeout: 20_000 })
  expect(JSON.parse(stdout)).toEqual({ rejected: 7, peers: ['worker'] })
})
