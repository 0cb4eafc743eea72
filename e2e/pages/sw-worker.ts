// A module service worker with a bus linked to its pages by messagePort(self).
// Its bus name comes from the script URL (?name=…). Everything a test checks is
// asked over the bus: 'sw.info' answers with this bus and this boot of the
// worker (a fresh `boot` after the worker was stopped and started again).
import { Ctx, messagePort, type MessagePortTarget } from './kit.ts'

interface ServiceWorkerScope {
  skipWaiting(): Promise<void>
  clients: { claim(): Promise<void> }
  addEventListener(type: 'install' | 'activate', listener: (event: { waitUntil(promise: Promise<unknown>): void }) => void): void
}

const scope = self as unknown as ServiceWorkerScope & MessagePortTarget
scope.addEventListener('install', (event) => event.waitUntil(scope.skipWaiting()))
scope.addEventListener('activate', (event) => event.waitUntil(scope.clients.claim()))

const name = new URL(location.href).searchParams.get('name') ?? 'crossbus'
const boot = `${Date.now()}-${Math.random().toString(36).slice(2)}`
const ctx = new Ctx({ name, transports: [messagePort(scope)] })
ctx.record('page.>', { capacity: 20_000 })
/** sw.info requests this boot of the worker has answered. */
let asked = 0
ctx.bus.reply('sw.info', (event) => ({ by: ctx.id, boot, asked: ++asked, data: event.data, received: ctx.count('page.>') }))
ctx.bus.reply('sw.events', () => ctx.events('page.>').map((event) => event.id))
ctx.bus.reply('sw.wanted', async (event) => {
  await ctx.wanted(event.data as string)
  return true
})
ctx.bus.reply('sw.peers', () => ctx.peerIds())
ctx.bus.reply('sw.emit', (event) => ctx.publish('sw.tick', (event.data as { count: number }).count))
