// A context that publishes as it starts (issue 10): at module evaluation, in a
// microtask and in a setTimeout(0), on `started.<kind>.<when>`, with data
// `{ by: its bus id }`. The same module runs as a tab's script (startup.html),
// a dedicated worker, a shared worker and a module service worker; its bus
// name comes from `?name=`. It keeps no other state: whoever subscribed before
// it started must get all three.
import { createBus, type Transport } from '../../src/index.ts'
import { broadcastChannel, messagePort, type MessagePortTarget } from '../../src/transports/index.ts'

const scope = globalThis as unknown as MessagePortTarget & {
  document?: unknown
  registration?: unknown
  onconnect?: unknown
  skipWaiting?: () => Promise<void>
  clients?: { claim(): Promise<void> }
  addEventListener(type: string, listener: (event: { waitUntil(promise: Promise<unknown>): void }) => void): void
}
const kind = scope.document !== undefined ? 'tab' : 'registration' in scope ? 'service' : 'onconnect' in scope ? 'shared' : 'dedicated'
const name = new URL(location.href).searchParams.get('name') ?? 'crossbus'

if (kind === 'service') {
  scope.addEventListener('install', (event) => event.waitUntil((scope.skipWaiting as () => Promise<void>)()))
  scope.addEventListener('activate', (event) => event.waitUntil((scope.clients as { claim(): Promise<void> }).claim()))
}

// A tab speaks over BroadcastChannel; a worker over its own port(s), as the README sets them up.
const transports: Transport[] = kind === 'tab' ? [broadcastChannel()] : [messagePort(scope)]
const bus = createBus({ name, transports })
bus.publish(`started.${kind}.evaluation`, { by: bus.id })
queueMicrotask(() => bus.publish(`started.${kind}.microtask`, { by: bus.id }))
setTimeout(() => bus.publish(`started.${kind}.timer`, { by: bus.id }), 0)
if (scope.document !== undefined) (document.getElementById('status') as HTMLElement).textContent = 'ready'
