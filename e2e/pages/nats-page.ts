// The page of the NATS bridge's specs: the kit on `window.nats`; a test keeps its context on `window.natsCtx`
// and a worker's remote on `window.natsRemote`.
import * as nats from './nats-kit.ts'

declare global {
  interface Window {
    nats: typeof nats
    natsCtx: nats.NatsCtx
    natsRemote: nats.NatsRemote
    /** Ids of durable events a tab publishes in the background. */
    natsPublished: Promise<string[]>
  }
}

window.nats = nats
document.getElementById('status')!.textContent = 'ready'
