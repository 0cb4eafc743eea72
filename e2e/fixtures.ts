// Fixtures of the cross-context specs: a bus name of the test's own (so tests
// running at once never hear each other), and `open()` for tabs of one
// browser context (BroadcastChannel crosses pages of one context only) with
// the harness page loaded and its errors collected.
import { test as base, expect, type Frame, type Page } from '@playwright/test'
import type {} from './pages/harness.ts'

export { expect }

export const HARNESS = '/e2e/pages/harness.html'

/** Pages' own origin, and two more served by the same Vite server (Chromium resolves *.localhost to loopback). */
const PORT = Number(process.env.CROSSBUS_E2E_PORT ?? 5174)
export const PAGES_ORIGIN = `http://127.0.0.1:${PORT}`
export const OTHER_ORIGIN = `http://localhost:${PORT}`
export const FOREIGN_ORIGIN = `http://foreign.localhost:${PORT}`

interface Fixtures {
  /** A bus name no other test uses. */
  name: string
  /** Uncaught errors of every page opened with `open`; must stay empty. */
  pageErrors: string[]
  /** A new tab of this test's browser context with the harness (or `url`) loaded and ready. */
  open: (url?: string) => Promise<Page>
}

export const test = base.extend<Fixtures>({
  name: async ({}, use, testInfo) => {
    await use(`e2e-${testInfo.testId}-${testInfo.repeatEachIndex}-${testInfo.retry}-${Math.random().toString(36).slice(2, 8)}`)
  },
  pageErrors: async ({}, use) => {
    const errors: string[] = []
    await use(errors)
    expect(errors, 'uncaught errors in the pages').toEqual([])
  },
  open: async ({ context, pageErrors }, use) => {
    await use(async (url = HARNESS) => {
      const page = await context.newPage()
      page.on('pageerror', (error) => pageErrors.push(`${page.url()}: ${String(error)}`))
      await page.goto(url)
      await expect(page.locator('#status')).toHaveText('ready')
      return page
    })
  },
})

/** Creates the page's bus (`window.ctx`) and returns its id. */
export async function startBus(page: Page, name: string): Promise<string> {
  return page.evaluate((busName) => {
    window.ctx = new window.kit.Ctx({ name: busName })
    return window.ctx.id
  }, name)
}

/** Ids of the peers a page's bus knows, sorted. */
export function peersOf(page: Page): Promise<string[]> {
  return page.evaluate(() => window.ctx.peerIds())
}

/** Crashes a tab's renderer through CDP, as a real crash would (no pagehide, no goodbye); resolves when it is gone. */
export async function crashTab(page: Page): Promise<void> {
  const crashed = page.waitForEvent('crash')
  const cdp = await page.context().newCDPSession(page)
  // Not awaited: a renderer that is gone answers nothing, it only crashes.
  void cdp.send('Page.crash').catch(() => {})
  await crashed
}

/** Adds an iframe with the harness from `origin` to the page; resolves with its Frame once ready. */
export async function addFrame(page: Page, frameName: string, origin: string): Promise<Frame> {
  await page.evaluate(
    ({ src, id }) =>
      new Promise<void>((resolve, reject) => {
        const iframe = document.createElement('iframe')
        iframe.name = id
        iframe.src = src
        iframe.onload = () => resolve()
        iframe.onerror = () => reject(new Error(`could not load ${src}`))
        document.body.append(iframe)
      }),
    { src: `${origin}${HARNESS}`, id: frameName },
  )
  const frame = page.frame({ name: frameName })
  if (frame === null) throw new Error(`no frame ${frameName}`)
  await expect(frame.locator('#status')).toHaveText('ready')
  expect(await frame.evaluate(() => location.origin)).toBe(origin)
  return frame
}
