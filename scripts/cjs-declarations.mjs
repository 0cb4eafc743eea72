// Gives the CommonJS build its own types: writes each dist/**/*.d.ts (emitted by
// `tsc -p tsconfig.build.json`) again as .d.cts, with its relative imports
// pointing at the .d.cts beside it ('./bus.js' → './bus.cjs').
//
// Why: the package is "type": "module", so TypeScript reads every .d.ts in it as
// ESM. A `require('crossbus')` resolves to dist/index.cjs; its types must be CJS
// too (.d.cts), or TypeScript under moduleResolution node16/nodenext reports the
// require of an ESM-only module, and types and code disagree on the format.
//
// Usage: node scripts/cjs-declarations.mjs [dir]   (default: dist)
import { readdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join, relative } from 'node:path'
import { fileURLToPath } from 'node:url'

const root = fileURLToPath(new URL('..', import.meta.url))
const dir = process.argv[2] ?? join(root, 'dist')

/** `from '…'`, `import '…'`, `import('…')` and `export … from '…'`: the specifiers a declaration file can hold. */
const SPECIFIER = /(\bfrom\s*|\bimport\s*\(\s*|\bimport\s+)(['"])([^'"]+)\2/g

let written = 0
const problems = []
for (const entry of readdirSync(dir, { recursive: true, withFileTypes: true })) {
  if (!entry.isFile() || !entry.name.endsWith('.d.ts')) continue
  const file = join(entry.parentPath, entry.name)
  const text = readFileSync(file, 'utf8').replace(SPECIFIER, (match, keyword, quote, specifier) => {
    if (!specifier.startsWith('./') && !specifier.startsWith('../')) return match // a package: resolved by its own exports
    if (!specifier.endsWith('.js')) {
      problems.push(`${relative(root, file)}: relative import '${specifier}' has no .js extension`)
      return match
    }
    return `${keyword}${quote}${specifier.slice(0, -'.js'.length)}.cjs${quote}`
  })
  writeFileSync(`${file.slice(0, -'.d.ts'.length)}.d.cts`, text)
  written++
}

if (problems.length > 0) {
  console.error(`cjs-declarations: ${problems.join('\n')}`)
  process.exit(1)
}
if (written === 0) {
  console.error(`cjs-declarations: no .d.ts under ${relative(root, dir) || dir}; run tsc -p tsconfig.build.json first`)
  process.exit(1)
}
console.log(`cjs-declarations: ${written} .d.cts files written under ${relative(root, dir) || dir}`)
