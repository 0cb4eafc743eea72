// Prints the minified and gzipped size of each public entry, as an app bundler
// would ship it, and fails when an entry exceeds its limit.
// Usage: node scripts/size.mjs [--json]
import { gzipSync } from 'node:zlib'
import { fileURLToPath } from 'node:url'
import { build } from 'vite'

const root = fileURLToPath(new URL('..', import.meta.url))

/** entry → limit in bytes, min+gzip. */
const LIMITS = {
  crossbus: { file: 'src/index.ts', limit: 15872 },
  'crossbus/transports': { file: 'src/transports/index.ts', limit: 3072 },
  'crossbus/idb': { file: 'src/store/idb.ts', limit: 3072 },
  'crossbus/memory': { file: 'src/store/memory.ts', limit: 2048 },
}

const results = []
for (const [name, { file, limit }] of Object.entries(LIMITS)) {
  const output = await build({
    root,
    configFile: false,
    logLevel: 'silent',
    build: {
      write: false,
      minify: true,
      target: 'es2022',
      lib: { entry: file, formats: ['es'], fileName: 'entry' },
      rolldownOptions: { external: ['idb-keyval', /^@nats-io\//], output: { minify: true } },
    },
  })
  const chunks = (Array.isArray(output) ? output : [output]).flatMap((result) => result.output)
  const code = chunks
    .filter((chunk) => chunk.type === 'chunk')
    .map((chunk) => chunk.code)
    .join('\n')
  const minified = Buffer.byteLength(code)
  const gzipped = gzipSync(code, { level: 9 }).length
  results.push({ name, minified, gzipped, limit })
}

if (process.argv.includes('--json')) {
  console.log(JSON.stringify(results))
} else {
  for (const { name, minified, gzipped, limit } of results) {
    const verdict = gzipped <= limit ? 'ok' : 'OVER LIMIT'
    console.log(
      `${name}: ${(minified / 1024).toFixed(2)} kB min, ${(gzipped / 1024).toFixed(2)} kB min+gzip (limit ${(limit / 1024).toFixed(2)} kB) ${verdict}`,
    )
  }
}
process.exitCode = results.every((result) => result.gzipped <= result.limit) ? 0 : 1
