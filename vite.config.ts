import { resolve } from 'node:path'
import { cloudflareTest } from '@cloudflare/vitest-pool-workers'
import { playwright } from '@vitest/browser-playwright'
import { defineConfig } from 'vitest/config'
import { chromiumLaunchOptions } from './scripts/chromium.mjs'

const root = import.meta.dirname

/**
 * Library entries: the keys become dist/<key>.js (ESM) and dist/<key>.cjs (CommonJS),
 * matching package.json "exports"; scripts/cjs-declarations.mjs gives the CommonJS
 * files their own .d.cts types.
 */
const entries = {
  index: resolve(root, 'src/index.ts'),
  transports: resolve(root, 'src/transports/index.ts'),
  idb: resolve(root, 'src/store/idb.ts'),
  memory: resolve(root, 'src/store/memory.ts'),
  store: resolve(root, 'src/store/index.ts'),
  nats: resolve(root, 'src/bridges/nats.ts'),
}

export default defineConfig({
  // The e2e pages import the NATS bridge: pre-bundled at start (nats.js is CommonJS), so no page is reloaded
  // when the dev server meets it for the first time.
  optimizeDeps: { include: ['@nats-io/nats-core', '@nats-io/jetstream'] },
  build: {
    target: 'es2022',
    outDir: 'dist',
    emptyOutDir: true,
    sourcemap: true,
    minify: false,
    lib: { entry: entries, formats: ['es', 'cjs'] },
    rolldownOptions: { external: ['idb-keyval', /^@nats-io\//] },
  },
  test: {
    projects: [
      {
        test: {
          name: 'node',
          environment: 'node',
          include: ['src/**/*.test.ts'],
          // *.browser.test.ts files need a browser (Web Locks): the Chromium project runs them.
          exclude: ['src/**/*.workerd.test.ts', 'src/**/*.browser.test.ts'],
          typecheck: { enabled: true, only: false, include: ['src/**/*.test-d.ts'], tsconfig: './tsconfig.json' },
        },
      },
      {
        // The same unit tests in headless Chromium; *.node.test.ts files are Node-only.
        test: {
          name: 'browser',
          include: ['src/**/*.test.ts'],
          exclude: ['src/**/*.node.test.ts', 'src/**/*.workerd.test.ts'],
          browser: {
            enabled: true,
            headless: true,
            instances: [{ browser: 'chromium' }],
            provider: playwright({ launchOptions: chromiumLaunchOptions() }),
            // Failure screenshots go beside the other test output, not into src/.
            screenshotDirectory: resolve(root, 'test-results/vitest-screenshots'),
          },
        },
      },
      {
        // Cloudflare Workers: the workerd runtime itself, through Miniflare. The core's unit tests
        // run here unchanged; link tests that need BroadcastChannel (absent in workerd) do not.
        plugins: [cloudflareTest({ miniflare: { compatibilityDate: '2026-04-01', compatibilityFlags: ['nodejs_compat'] } })],
        // The NATS bridge's test there needs a real nats-server: the global set-up starts one (and stops it by pid).
        test: {
          name: 'workerd',
          include: ['src/**/*.workerd.test.ts', 'src/{bus,process,stream,request,topic,queue,retry,ids,durable}.test.ts'],
          globalSetup: ['test/nats-global-setup.ts'],
        },
      },
    ],
  },
})
