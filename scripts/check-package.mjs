// Builds the package, then checks the tarball a user would install:
//   1. npm run build                 dist/: ESM, CommonJS, .d.ts and .d.cts
//   2. attw --pack .                 @arethetypeswrong/cli: every entry's types under
//                                    node10, node16 (from CJS and from ESM) and bundler
//   3. publint                       exports, files and fields of package.json against the
//                                    packed files; any message, a suggestion included, fails
// Exits non-zero when any of them fails. `npm test` runs it as its "package" step.
// Usage: node scripts/check-package.mjs
import { spawnSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { publint } from 'publint'
import { formatMessage } from 'publint/utils'

const root = fileURLToPath(new URL('..', import.meta.url))

/** The JS file behind a package's bin. */
function bin(pkg, name) {
  const manifest = JSON.parse(readFileSync(join(root, 'node_modules', pkg, 'package.json'), 'utf8'))
  const file = typeof manifest.bin === 'string' ? manifest.bin : manifest.bin?.[name]
  if (!file) throw new Error(`${pkg} has no bin ${name}`)
  return join(root, 'node_modules', pkg, file)
}

function step(label, command, args) {
  console.log(`\n--- ${label}: ${[command === process.execPath ? 'node' : command, ...args].join(' ')}`)
  const result = spawnSync(command, args, { cwd: root, stdio: 'inherit' })
  if (result.error) console.error(`${label}: ${result.error.message}`)
  return result.status === 0
}

const failed = []
if (!step('build', 'npm', ['run', 'build', '--silent'])) {
  failed.push('build')
} else {
  const attw = [bin('@arethetypeswrong/cli', 'attw'), '--pack', '.', '--format', 'table', ...(process.stdout.isTTY ? [] : ['--no-color'])]
  if (!step('attw', process.execPath, attw)) failed.push('attw')

  console.log('\n--- publint (packs with npm; suggestions count as failures)')
  const { messages, pkg } = await publint({ pkgDir: root, pack: 'npm', strict: true })
  for (const message of messages) console.log(`${message.type}: ${formatMessage(message, pkg) ?? message.code}`)
  if (messages.length > 0) failed.push('publint')
  else console.log('publint: all good')
}

console.log(failed.length === 0 ? '\npackage: ok (build, attw, publint)' : `\npackage: FAILED (${failed.join(', ')})`)
process.exitCode = failed.length === 0 ? 0 : 1
