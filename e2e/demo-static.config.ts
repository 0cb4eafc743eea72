// The demo's e2e against its static build: `npm run build:demo`, served by
// `vite preview`, with no dev server behind it. Run it with
//   npx playwright test -c e2e/demo-static.config.ts
// (not part of `npm test`, which drives the dev server as `npm run demo` does).
// CROSSBUS_E2E_PORT moves the preview server too: it listens on that port + 2.
import { defineConfig } from '@playwright/test'
import { chromiumLaunchOptions } from '../scripts/chromium.mjs'

const PREVIEW_PORT = Number(process.env.CROSSBUS_E2E_PORT ?? 5174) + 2

export default defineConfig({
  testDir: '.',
  testMatch: /demo\.spec\.ts$/,
  outputDir: '../test-results/e2e-demo-static',
  fullyParallel: false,
  retries: 0,
  workers: 1,
  reporter: [['list']],
  use: {
    browserName: 'chromium',
    headless: true,
    launchOptions: chromiumLaunchOptions(),
    trace: 'retain-on-failure',
    baseURL: `http://127.0.0.1:${PREVIEW_PORT}`,
  },
  webServer: {
    command: `npm run build:demo && npx vite preview --config demo/vite.config.ts --host 127.0.0.1 --port ${PREVIEW_PORT} --strictPort`,
    cwd: '..',
    url: `http://127.0.0.1:${PREVIEW_PORT}/`,
    reuseExistingServer: false,
    timeout: 120_000,
  },
})
