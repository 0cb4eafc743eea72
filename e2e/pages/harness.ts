// The page every cross-context spec opens (tabs, iframes, workers' pages).
// It puts the library and the e2e kit on `window.kit`; a test builds its
// scenario with page.evaluate and keeps its objects on `window.ctx`.
import * as kit from './kit.ts'

/** What a test keeps in a page between evaluate calls. */
export interface PageState {
  /** A dedicated worker's control channel, when the test started one. */
  worker: kit.Remote
  workerId: string
  /** The control channels of several workers, when the test started them. */
  workers: kit.Remote[]
  /** Anything else a scenario records (counters, timings). */
  notes: Record<string, number>
  /** Ids of durable events a publisher is publishing in the background. */
  published: Promise<string[]>
}

declare global {
  interface Window {
    kit: typeof kit
    ctx: kit.Ctx
    state: PageState
  }
}

window.kit = kit
window.state = { notes: {} } as PageState
document.getElementById('status')!.textContent = 'ready'
