// The demo's module service worker (scope: the demo's root): one bus, linked
// to each page by messagePort(self). Pages reach it with
// messagePort(navigator.serviceWorker), whose postMessage also wakes it when
// the browser has stopped it (DESIGN.md, semantic 9).
import { messagePort, type MessagePortTarget } from '../src/transports/index.ts'
import { startContext } from './context.ts'

interface ServiceWorkerScope {
  skipWaiting(): Promise<void>
  clients: { claim(): Promise<void> }
  addEventListener(type: 'install' | 'activate', listener: (event: { waitUntil(promise: Promise<unknown>): void }) => void): void
}

const scope = self as unknown as ServiceWorkerScope & MessagePortTarget
// Take over at once: the demo's pages link to whichever worker controls them.
scope.addEventListener('install', (event) => event.waitUntil(scope.skipWaiting()))
scope.addEventListener('activate', (event) => event.waitUntil(scope.clients.claim()))

startContext({ kind: 'service-worker', transports: [messagePort(scope)] })
