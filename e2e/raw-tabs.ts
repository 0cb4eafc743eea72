// Tabs that Playwright does not drive, for hidden-tab.spec.ts.
//
// Playwright keeps every page it attaches to visible: it turns on DevTools
// focus emulation for each page, which counts as a capturer of the tab, so
// `document.visibilityState` stays 'visible' even for a background tab
// (checked: a tab made with Target.createTarget({ background: true }) in the
// test's context reports 'visible'). Playwright detaches from targets of
// browser contexts it did not create, so these tabs live in a context made over
// CDP (Target.createBrowserContext) and are driven over CDP too, through
// Target.attachToTarget / sendMessageToTarget on a browser session.
import type { Browser, CDPSession } from '@playwright/test'

interface Pending {
  resolve: (value: unknown) => void
  reject: (error: Error) => void
}

interface RuntimeEvaluateResult {
  result?: { value?: unknown }
  exceptionDetails?: { text?: string; exception?: { description?: string } }
}

/** One tab of a RawContext. */
export class RawTab {
  /** Uncaught exceptions the tab reported. */
  readonly errors: string[] = []
  #calls = 0
  readonly #pending = new Map<number, Pending>()

  constructor(
    readonly targetId: string,
    readonly sessionId: string,
    private readonly session: CDPSession,
  ) {}

  /** Sends a DevTools command to this tab. */
  send(method: string, params: Record<string, unknown> = {}): Promise<unknown> {
    const id = ++this.#calls
    return new Promise((resolve, reject) => {
      this.#pending.set(id, { resolve, reject })
      this.session.send('Target.sendMessageToTarget', { sessionId: this.sessionId, message: JSON.stringify({ id, method, params }) }).catch(reject)
    })
  }

  /** Runs `fn(arg)` in the tab (awaiting a promise) and returns its value, like page.evaluate. */
  async evaluate<R, A = undefined>(fn: (arg: A) => R | Promise<R>, arg?: A): Promise<R> {
    const expression = `(${fn.toString()})(${arg === undefined ? '' : JSON.stringify(arg)})`
    const reply = (await this.send('Runtime.evaluate', { expression, awaitPromise: true, returnByValue: true })) as RuntimeEvaluateResult
    if (reply.exceptionDetails !== undefined) {
      throw new Error(`evaluate failed in the tab: ${reply.exceptionDetails.exception?.description ?? reply.exceptionDetails.text ?? 'unknown error'}`)
    }
    return reply.result?.value as R
  }

  /** Resolves once the harness page says it is ready. */
  async ready(timeout = 10_000): Promise<void> {
    const deadline = Date.now() + timeout
    while ((await this.evaluate(() => document.getElementById('status')?.textContent ?? null).catch(() => null)) !== 'ready') {
      if (Date.now() > deadline) throw new Error(`tab ${this.targetId} did not load the harness`)
      await new Promise((resolve) => setTimeout(resolve, 50))
    }
  }

  /** A message from the tab's DevTools session: a reply or an event. */
  handle(raw: string): void {
    const message = JSON.parse(raw) as { id?: number; result?: unknown; error?: { message?: string }; method?: string; params?: unknown }
    if (message.id !== undefined) {
      const pending = this.#pending.get(message.id)
      this.#pending.delete(message.id)
      if (message.error !== undefined) pending?.reject(new Error(message.error.message ?? 'DevTools error'))
      else pending?.resolve(message.result)
      return
    }
    if (message.method === 'Runtime.exceptionThrown') {
      const details = (message.params as { exceptionDetails?: RuntimeEvaluateResult['exceptionDetails'] }).exceptionDetails
      this.errors.push(details?.exception?.description ?? details?.text ?? 'exception')
    }
  }
}

/** A browser context made over CDP, with tabs opened in one window. */
export class RawContext {
  readonly #tabs = new Map<string, RawTab>()

  private constructor(
    private readonly session: CDPSession,
    readonly browserContextId: string,
  ) {
    session.on('Target.receivedMessageFromTarget', ({ sessionId, message }) => {
      if (sessionId !== undefined) this.#tabs.get(sessionId)?.handle(message)
    })
  }

  static async create(browser: Browser): Promise<RawContext> {
    const session = await browser.newBrowserCDPSession()
    const { browserContextId } = await session.send('Target.createBrowserContext', {})
    return new RawContext(session, browserContextId)
  }

  /**
   * Opens `url` in a new tab: the first one in a window of its own, the next
   * ones (with `background`) as tabs behind it in that window, not selected.
   */
  async open(url: string, background = false): Promise<RawTab> {
    const { targetId } = await this.session.send('Target.createTarget', {
      url,
      browserContextId: this.browserContextId,
      background,
      newWindow: this.#tabs.size === 0,
    })
    const { sessionId } = await this.session.send('Target.attachToTarget', { targetId, flatten: false })
    const tab = new RawTab(targetId, sessionId, this.session)
    this.#tabs.set(sessionId, tab)
    await tab.send('Runtime.enable')
    await tab.ready()
    return tab
  }

  async close(): Promise<void> {
    await this.session.send('Target.disposeBrowserContext', { browserContextId: this.browserContextId }).catch(() => {})
    await this.session.detach().catch(() => {})
  }
}
