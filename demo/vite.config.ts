// Vite config of the demo: `npm run demo` (dev server) and `npm run build:demo`
// (static build into demo-dist/, which works from any path: base './'). The
// demo imports the library source from ../src, so no library build is needed.
//
// Workers: Vite bundles `new Worker(new URL('./worker.ts', import.meta.url))`
// and the SharedWorker alike. A service worker controls only the pages at or
// below its script's path, so sw.ts is built as an entry of its own at the
// root of the build, sw.js (main.ts registers sw.ts in development, sw.js built).
import { resolve } from 'node:path'
import { defineConfig } from 'vite'

const demo = import.meta.dirname

export default defineConfig({
  root: demo,
  base: './',
  server: { host: '127.0.0.1', port: 5173 },
  preview: { host: '127.0.0.1', port: 4173 },
  // Its own dependency cache: the e2e pages server, with the root config, uses node_modules/.vite.
  cacheDir: resolve(demo, '../node_modules/.vite-demo'),
  // Found at start rather than on first use, which would reload the page.
  // nats.js only loads with ?nats=…, but is pre-bundled either way (it is CommonJS).
  optimizeDeps: { include: ['idb-keyval', '@nats-io/nats-core', '@nats-io/jetstream'] },
  worker: { format: 'es' },
  build: {
    target: 'es2022',
    outDir: resolve(demo, '../demo-dist'),
    emptyOutDir: true,
    rolldownOptions: {
      input: { index: resolve(demo, 'index.html'), sw: resolve(demo, 'sw.ts') },
      output: {
        entryFileNames: (chunk) => (chunk.name === 'sw' ? 'sw.js' : 'assets/[name]-[hash].js'),
      },
    },
  },
})
