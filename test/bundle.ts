// Node worker threads and child processes run plain JavaScript: tests bundle a
// TypeScript entry (with the library) once, into a temporary folder.
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { build } from 'vite'

/** Bundles `entry` (a URL of a .ts file) to a plain .mjs file; returns its path and a clean-up. */
export async function bundle(entry: URL): Promise<{ file: string; dispose(): void }> {
  const directory = mkdtempSync(join(tmpdir(), 'crossbus-bundle-'))
  await build({
    configFile: false,
    logLevel: 'silent',
    build: {
      outDir: directory,
      ssr: true,
      minify: false,
      rollupOptions: { input: { entry: entry.pathname }, output: { entryFileNames: '[name].mjs' } },
    },
  })
  return { file: join(directory, 'entry.mjs'), dispose: () => rmSync(directory, { recursive: true, force: true }) }
}
