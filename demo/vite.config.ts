// Vite config of the placeholder demo: `npm run demo` (dev server) and
// `npm run build:demo` (static build into demo-dist/). The demo imports the
// library source from ../src, so no library build is needed first.
import { resolve } from 'node:path'
import { defineConfig } from 'vite'

const demo = import.meta.dirname

export default defineConfig({
  root: demo,
  // Its own dependency cache: the e2e pages server (the root config) runs beside it and
  // would otherwise re-optimize the shared one on every start, breaking the other's pages.
  cacheDir: resolve(demo, '../node_modules/.vite-demo'),
  server: { host: '127.0.0.1', port: 5173 },
  preview: { host: '127.0.0.1', port: 4173 },
  build: {
    target: 'es2022',
    outDir: resolve(demo, '../demo-dist'),
    emptyOutDir: true,
  },
})
