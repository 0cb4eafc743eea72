// Issue 11: one frame from a worker thread used to end a Node process (an
// exception in a message listener is fatal there). The script runs in a
// process of its own, so an exit status says what happened.
import { execFile } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { build } from 'vite'
import { afterAll, beforeAll, expect, test } from 'vitest'

let directory: string

beforeAll(async () => {
  directory = mkdtempSync(join(tmpdir(), 'crossbus-garbage-'))
  await build({
    configFile: false,
    logLevel: 'silent',
    build: {
      outDir: directory,
      ssr: true,
      minify: false,
      rollupOptions: { input: { garbage: new URL('../test/garbage-process.ts', import.meta.url).pathname }, output: { entryFileNames: '[name].mjs' } },
    },
  })
})

afterAll(() => {
  rmSync(directory, { recursive: true, force: true })
})

test('garbage from a worker thread is refused and counted; the process lives on and exits normally', async () => {
  const { stdout } = await promisify(execFile)(process.execPath, [join(directory, 'garbage.mjs')], { timeout: 20_000 })
  expect(JSON.parse(stdout)).toEqual({ rejected: 7, peers: ['worker'] })
})
