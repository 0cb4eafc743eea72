// `npm test`: every suite in one run, then one summary line.
//
//   1. typecheck  tsc --noEmit -p tsconfig.json (library + unit tests),
//                 tsc -p e2e/tsconfig.json (e2e, demo, playwright config), and the
//                 package's declarations (tsconfig.build.json): 1 test each
//   2. lint       biome check . (formatting and lint rules of biome.json): 1 test
//   3. package    scripts/check-package.mjs: npm run build, then attw --pack and publint
//                 on the tarball, both clean: 1 test
//   4. size       scripts/size.mjs: each entry's min+gzip size, and what crossbus adds to
//                 a small Vite app (default link ≤ 10 kB, IndexedDB store ≤ 13 kB gzip),
//                 within their limits: 1 test
//   5. unit       vitest run: node + browser projects, incl. the *.test-d.ts type tests
//   6. e2e        playwright test: real Chromium
//
// Each tool's output streams to the console. The very last line is
// `N passed, N failed` (plus `, N skipped` when there are any), summed over all
// suites; the exit code is non-zero when anything failed. A runner that exits
// non-zero without reporting a failed test (crash, unhandled error, no JSON)
// counts as one failed test, so a broken suite can never look green.
//
// Environment: CROSSBUS_STEP_TIMEOUT_MS (default 900000) kills a hung step.
import { spawn } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'

const root = fileURLToPath(new URL('..', import.meta.url))
const stepTimeout = Number(process.env.CROSSBUS_STEP_TIMEOUT_MS ?? 15 * 60_000)
const reports = mkdtempSync(join(tmpdir(), 'crossbus-test-'))

/** The JS file behind a package's bin, run with this Node (no shell, no npx). */
function bin(pkg, name) {
  const manifest = JSON.parse(readFileSync(join(root, 'node_modules', pkg, 'package.json'), 'utf8'))
  const file = typeof manifest.bin === 'string' ? manifest.bin : manifest.bin?.[name]
  if (!file) throw new Error(`${pkg} has no bin ${name}`)
  return join(root, 'node_modules', pkg, file)
}

function signalGroup(child, signal) {
  try {
    process.kill(-child.pid, signal)
  } catch {}
}

// Steps run in their own process group, so pass Ctrl-C / termination on to the running one.
let current
function forward(signal) {
  if (current?.pid) signalGroup(current, signal)
  process.exit(130)
}
process.on('SIGINT', () => forward('SIGINT'))
process.on('SIGTERM', () => forward('SIGTERM'))

/**
 * Runs a package's bin (or, with pkg null, a script of this repo) in its own
 * process group with inherited stdio; resolves { code, error }.
 */
function run(label, pkg, name, args, env = {}) {
  console.log(`\n=== ${label}: ${name} ${args.join(' ')}\n`)
  return new Promise((resolve) => {
    let file
    try {
      file = pkg === null ? join(root, name) : bin(pkg, name)
    } catch (error) {
      resolve({ code: null, error })
      return
    }
    const child = spawn(process.execPath, [file, ...args], {
      cwd: root,
      stdio: ['ignore', 'inherit', 'inherit'],
      env: { ...process.env, ...env },
      detached: true, // own process group: a timeout kills the tool and what it started
    })
    current = child
    let timedOut = false
    // On timeout: SIGINT first, so the runner stops what it started (Playwright's
    // web servers live in process groups of their own), then SIGKILL the group.
    let killer
    const timer = setTimeout(() => {
      timedOut = true
      console.error(`\n${label}: no result after ${stepTimeout} ms, stopping it`)
      signalGroup(child, 'SIGINT')
      killer = setTimeout(() => signalGroup(child, 'SIGKILL'), 15_000)
    }, stepTimeout)
    child.on('error', (error) => {
      clearTimeout(timer)
      clearTimeout(killer)
      current = undefined
      resolve({ code: null, error })
    })
    child.on('exit', (code, signal) => {
      clearTimeout(timer)
      clearTimeout(killer)
      current = undefined
      const error = timedOut ? new Error('timed out') : signal ? new Error(`killed by ${signal}`) : undefined
      resolve({ code, error })
    })
  })
}

function readJson(file) {
  try {
    return JSON.parse(readFileSync(file, 'utf8'))
  } catch {
    return undefined
  }
}

/** Counts of one suite; a non-zero exit with no failed test counts as one failure. */
function settle(label, result, counts) {
  const suite = counts ?? { passed: 0, failed: 0, skipped: 0 }
  const crashed = result.error !== undefined || result.code !== 0
  if (crashed && suite.failed === 0) {
    suite.failed = 1
    const why = result.error ? String(result.error.message ?? result.error) : `exit code ${result.code}`
    console.log(`\n${label}: runner failed (${why})${counts ? '' : ' before reporting results'}: counted as 1 failed`)
  }
  return { label, ...suite }
}

const suites = []

// 1. Typecheck.
// tsconfig.build.json emits the package's declarations (isolatedDeclarations): into a scratch folder here.
const typechecks = {
  'tsconfig.json': ['--noEmit'],
  'e2e/tsconfig.json': ['--noEmit'],
  'tsconfig.build.json': ['--outDir', join(reports, 'declarations')],
}
for (const [project, flags] of Object.entries(typechecks)) {
  const label = `typecheck ${project}`
  const result = await run(label, 'typescript', 'tsc', [...flags, '-p', project])
  const ok = result.code === 0 && result.error === undefined
  if (ok) console.log(`${label}: ok`)
  suites.push(settle(label, result, { passed: ok ? 1 : 0, failed: ok ? 0 : 1, skipped: 0 }))
}

// 2. Formatting and lint (Biome).
{
  const result = await run('lint', '@biomejs/biome', 'biome', ['check', '--error-on-warnings', '.'])
  const ok = result.code === 0 && result.error === undefined
  suites.push(settle('lint', result, { passed: ok ? 1 : 0, failed: ok ? 0 : 1, skipped: 0 }))
}

// 3. The package as a user installs it: build, then attw and publint on the packed tarball.
{
  const result = await run('package', null, 'scripts/check-package.mjs', [])
  const ok = result.code === 0 && result.error === undefined
  suites.push(settle('package', result, { passed: ok ? 1 : 0, failed: ok ? 0 : 1, skipped: 0 }))
}

// 4. Size of each public entry, min+gzip, and what crossbus adds to an app, against their limits.
{
  const result = await run('size', null, 'scripts/size.mjs', [])
  const ok = result.code === 0 && result.error === undefined
  suites.push(settle('size', result, { passed: ok ? 1 : 0, failed: ok ? 0 : 1, skipped: 0 }))
}

// 5. Unit tests (Vitest, all projects).
{
  const report = join(reports, 'vitest.json')
  const result = await run('unit', 'vitest', 'vitest', ['run', '--reporter=default', '--reporter=json', `--outputFile.json=${report}`])
  const json = readJson(report)
  const counts = json && {
    passed: json.numPassedTests ?? 0,
    failed: json.numFailedTests ?? 0,
    skipped: (json.numPendingTests ?? 0) + (json.numTodoTests ?? 0),
  }
  suites.push(settle('unit', result, counts))
}

// 6. End-to-end (Playwright); playwright.config.ts writes its JSON report where we say.
{
  const report = join(reports, 'playwright.json')
  const result = await run('e2e', '@playwright/test', 'playwright', ['test'], { CROSSBUS_E2E_JSON: report })
  const stats = readJson(report)?.stats
  const counts = stats && {
    passed: (stats.expected ?? 0) + (stats.flaky ?? 0),
    failed: stats.unexpected ?? 0,
    skipped: stats.skipped ?? 0,
  }
  suites.push(settle('e2e', result, counts))
}

rmSync(reports, { recursive: true, force: true })

const total = suites.reduce((sum, suite) => ({ passed: sum.passed + suite.passed, failed: sum.failed + suite.failed, skipped: sum.skipped + suite.skipped }), {
  passed: 0,
  failed: 0,
  skipped: 0,
})
console.log('')
for (const suite of suites) {
  console.log(`  ${suite.label}: ${suite.passed} passed, ${suite.failed} failed${suite.skipped > 0 ? `, ${suite.skipped} skipped` : ''}`)
}
console.log(`${total.passed} passed, ${total.failed} failed${total.skipped > 0 ? `, ${total.skipped} skipped` : ''}`)
process.exitCode = total.failed > 0 ? 1 : 0
