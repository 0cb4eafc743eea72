// Which Chromium the tests launch, and with which flags. Shared by
// playwright.config.ts (e2e) and the 'browser' project in vite.config.ts.
//
// Browser: $CROSSBUS_CHROMIUM when set, else Debian's /usr/bin/chromium when it
// exists, else Playwright's own bundled browser (executablePath left unset).
import { existsSync } from 'node:fs'

/** Without the networking flags Chromium tries to reach the internet, which may be closed. */
export const CHROMIUM_ARGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
]

const SYSTEM_CHROMIUM = '/usr/bin/chromium'

/** @returns {string | undefined} the browser binary, or undefined to let Playwright pick its own */
export function chromiumPath() {
  const fromEnv = process.env.CROSSBUS_CHROMIUM
  if (fromEnv) return fromEnv
  if (existsSync(SYSTEM_CHROMIUM)) return SYSTEM_CHROMIUM
  return undefined
}

/** Playwright `launchOptions` for Chromium: `{ executablePath?, args }`. */
export function chromiumLaunchOptions() {
  const executablePath = chromiumPath()
  return executablePath === undefined ? { args: [...CHROMIUM_ARGS] } : { executablePath, args: [...CHROMIUM_ARGS] }
}
