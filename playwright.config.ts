import { defineConfig } from '@playwright/test'
import { chromiumLaunchOptions } from './scripts/chromium.mjs'

/**
 * Vite serving the repository root: e2e pages import the library source (`/src/index.ts`).
 * The same server is three origins to the browser, for the cross-origin iframe
 * tests: http://127.0.0.1:5174, http://localhost:5174 and http://foreign.localhost:5174
 * (Chromium resolves *.localhost to loopback; Vite allows localhost hosts by default).
 * CROSSBUS_E2E_PORT moves both servers (it and the next port), for two checkouts side by side.
 */
const PAGES_PORT = Number(process.env.CROSSBUS_E2E_PORT ?? 5174)
/** Vite serving the demo with its own config, as `npm run demo` does. */
const DEMO_PORT = PAGES_PORT + 1
/** The demo's static build (`npm run build:demo`), served by `vite preview`. */
const STATIC_DEMO_PORT = PAGES_PORT + 2

/** Flags Playwright passes by default that stop Chromium from throttling hidden tabs. */
const THROTTLING_OFF_FLAGS = ['--disable-background-timer-throttling', '--disable-renderer-backgrounding', '--disable-backgrounding-occluded-windows']

/** Read by scripts/test.mjs for the pass/fail counts. */
export const JSON_REPORT = process.env.CROSSBUS_E2E_JSON ?? 'test-results/e2e-report.json'

export default defineConfig({
  testDir: 'e2e',
  outputDir: 'test-results/e2e',
  fullyParallel: false,
  forbidOnly: !!process.env.CI,
  retries: 0,
  workers: 2,
  timeout: 30_000,
  reporter: [['list'], ['json', { outputFile: JSON_REPORT }]],
  use: {
    browserName: 'chromium',
    headless: true,
    launchOptions: chromiumLaunchOptions(),
    trace: 'retain-on-failure',
  },
  projects: [
    {
      name: 'chromium',
      testIgnore: [/demo\.spec\.ts$/, /hidden-tab\.spec\.ts$/],
      use: { baseURL: `http://127.0.0.1:${PAGES_PORT}` },
    },
    {
      // A browser that throttles hidden tabs as a user's does: without the flags
      // Playwright adds to keep background pages at full speed.
      name: 'hidden',
      testMatch: /hidden-tab\.spec\.ts$/,
      use: {
        baseURL: `http://127.0.0.1:${PAGES_PORT}`,
        launchOptions: { ...chromiumLaunchOptions(), ignoreDefaultArgs: THROTTLING_OFF_FLAGS },
      },
    },
    {
      name: 'demo',
      testMatch: /demo\.spec\.ts$/,
      use: { baseURL: `http://127.0.0.1:${DEMO_PORT}` },
    },
    {
      // The same demo tests against the static build, with no dev server behind it.
      name: 'demo-static',
      testMatch: /demo\.spec\.ts$/,
      use: { baseURL: `http://127.0.0.1:${STATIC_DEMO_PORT}` },
    },
  ],
  webServer: [
    {
      command: `npx vite --host 127.0.0.1 --port ${PAGES_PORT} --strictPort`,
      url: `http://127.0.0.1:${PAGES_PORT}/e2e/pages/core.html`,
      reuseExistingServer: !process.env.CI,
      timeout: 60_000,
    },
    {
      command: `npx vite --config demo/vite.config.ts --host 127.0.0.1 --port ${DEMO_PORT} --strictPort`,
      url: `http://127.0.0.1:${DEMO_PORT}/`,
      reuseExistingServer: !process.env.CI,
      timeout: 60_000,
    },
    {
      command: `npm run build:demo && npx vite preview --config demo/vite.config.ts --host 127.0.0.1 --port ${STATIC_DEMO_PORT} --strictPort`,
      url: `http://127.0.0.1:${STATIC_DEMO_PORT}/`,
      reuseExistingServer: false,
      timeout: 120_000,
    },
  ],
})
