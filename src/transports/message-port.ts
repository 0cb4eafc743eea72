import { knownOptions } from '../options.js'
import type { Endpoint, EndpointSource, Transport } from '../seams.js'
import type { LinkOptions } from './broadcast-channel.js'

export interface MessagePortOptions extends LinkOptions {
  /** Allowed origins of a Window target (required for one): messages from any other origin are refused. */
  origin?: string | readonly string[] | undefined
}

type Listener = (event: { data: unknown; origin?: string; source?: unknown }) => void

/** Anything with postMessage and message events: MessagePort, Worker, a worker's self, SharedWorker's port. */
interface EventPort {
  postMessage(message: unknown): void
  addEventListener(type: 'message' | 'messageerror', listener: Listener): void
  removeEventListener(type: 'message' | 'messageerror', listener: Listener): void
  start?(): void
  close?(): void
}

/** Node's worker_threads Worker and MessagePort (EventEmitter side). */
interface EmitterPort {
  postMessage(message: unknown): void
  on(type: 'message' | 'messageerror', listener: (data: unknown) => void): unknown
  off(type: 'message' | 'messageerror', listener: (data: unknown) => void): unknown
}

/** A Window (a frame's contentWindow, window.parent, an opener): postMessage with a target origin. */
interface WindowTarget {
  readonly window: unknown
  postMessage(message: unknown, targetOrigin: string): void
}

/** navigator.serviceWorker in a page. */
interface ServiceWorkerContainerLike {
  readonly controller: { postMessage(message: unknown): void } | null
  readonly ready: Promise<{ active: { postMessage(message: unknown): void } | null }>
  addEventListener(type: 'message', listener: Listener): void
  removeEventListener(type: 'message', listener: Listener): void
  startMessages?(): void
}

/** A service worker's own global scope. */
interface ServiceWorkerScopeLike {
  readonly clients: { matchAll(options: { includeUncontrolled: boolean }): Promise<readonly { postMessage(message: unknown): void }[]> }
  addEventListener(type: 'message', listener: Listener): void
  removeEventListener(type: 'message', listener: Listener): void
}

/** A shared worker's own global scope: every tab that connects brings a port. */
interface SharedWorkerScopeLike {
  readonly onconnect: unknown
  addEventListener(type: 'connect', listener: (event: { ports: readonly EventPort[] }) => void): void
  removeEventListener(type: 'connect', listener: (event: { ports: readonly EventPort[] }) => void): void
}

export type MessagePortTarget = EventPort | EmitterPort | WindowTarget | ServiceWorkerContainerLike | ServiceWorkerScopeLike | SharedWorkerScopeLike

const isWindow = (target: object): target is WindowTarget => 'window' in target && (target as WindowTarget).window === target
const isServiceWorkerContainer = (target: object): target is ServiceWorkerContainerLike => 'controller' in target && 'ready' in target
const isServiceWorkerScope = (target: object): target is ServiceWorkerScopeLike => 'clients' in target && 'registration' in target
const isSharedWorkerScope = (target: object): target is SharedWorkerScopeLike => 'onconnect' in target
const isEventPort = (target: object): target is EventPort => typeof (target as EventPort).addEventListener === 'function'
/** A message that claims to be a crossbus frame (decoding decides whether it is a good one). */
const looksLikeFrame = (data: unknown): boolean => typeof data === 'object' && data !== null && 'crossbus' in data

/**
 * A point-to-point link with credit-based flow control, over anything that has
 * postMessage: a MessagePort, a Worker (page side) or a worker's `self`
 * (worker side), a SharedWorker's port, a Node worker_threads Worker or port,
 * a cross-origin Window (with `origin`), `navigator.serviceWorker` in a page
 * or a service worker's `self` (postMessage wakes a stopped service worker;
 * the worker gets a link for each page that speaks to it), or a shared
 * worker's `self`: a link for each tab that connects.
 *
 * @example
 * const worker = new Worker(new URL('./worker.ts', import.meta.url), { type: 'module' })
 * const bus = createBus({ transports: [broadcastChannel(), messagePort(worker)] })
 */
export function messagePort(target: MessagePortTarget, options: MessagePortOptions = {}): Transport {
  if (target === null || typeof target !== 'object' || typeof (target as { postMessage?: unknown }).postMessage !== 'function') {
    if (!(typeof target === 'object' && target !== null && (isServiceWorkerContainer(target) || isServiceWorkerScope(target) || isSharedWorkerScope(target)))) {
      throw new TypeError('crossbus: messagePort() needs a MessagePort, Worker, Window or anything with postMessage')
    }
  }
  knownOptions('messagePort', options, ['origin', 'capacity', 'overflow', 'batch'])
  const { origin, ...link } = options
  const origins = origin === undefined ? [] : typeof origin === 'string' ? [origin] : [...origin]
  if (isWindow(target) && origins.length === 0) {
    throw new TypeError('crossbus: messagePort(window) needs `origin`: the origins allowed to talk to this bus')
  }
  return { name: 'message-port', ...link, open: () => openEndpoint(target, origins) }
}

function openEndpoint(target: MessagePortTarget, origins: readonly string[]): Endpoint | EndpointSource {
  // A Window first: any other property test (`'onconnect' in target`) on a cross-origin window throws SecurityError.
  if (isWindow(target)) return windowEndpoint(target, origins)
  if (isSharedWorkerScope(target)) return sharedWorkerSource(target)
  if (isServiceWorkerContainer(target)) return serviceWorkerPageEndpoint(target)
  if (isServiceWorkerScope(target)) return serviceWorkerScopeSource(target)
  if (isEventPort(target)) return portEndpoint(target)
  const emitter = target as EmitterPort
  let listener: ((data: unknown) => void) | undefined
  return {
    kind: 'point',
    post: (message) => emitter.postMessage(message),
    listen(receive) {
      listener = receive
      emitter.on('message', listener)
    },
    close() {
      if (listener !== undefined) emitter.off('message', listener)
    },
    keepAlive: (keep) => holdNode(emitter, keep),
  }
}

/** A MessagePort, a Worker or a worker's self: message events. */
function portEndpoint(target: EventPort): Endpoint {
  let listener: Listener | undefined
  let failure: Listener | undefined
  return {
    kind: 'point',
    post: (message) => target.postMessage(message),
    listen(receive, reject) {
      listener = (event) => receive(event.data)
      failure = () => reject('a message could not be deserialized')
      target.addEventListener('message', listener)
      target.addEventListener('messageerror', failure)
      target.start?.()
    },
    close() {
      // The port stays open: it was handed to us (a worker's parentPort among them) and is the app's to close.
      if (listener !== undefined) target.removeEventListener('message', listener)
      if (failure !== undefined) target.removeEventListener('messageerror', failure)
    },
    keepAlive: (keep) => holdNode(target, keep),
  }
}

/** Node's ports and workers keep the thread alive while ref'd; browsers' have no such thing. */
function holdNode(target: object, keep: boolean): void {
  const node = target as { ref?: () => void; unref?: () => void }
  if (keep) node.ref?.()
  else node.unref?.()
}

/** A shared worker: a point link for the port of each tab that connects. */
function sharedWorkerSource(scope: SharedWorkerScopeLike): EndpointSource {
  let listener: ((event: { ports: readonly EventPort[] }) => void) | undefined
  return {
    kind: 'source',
    accept(accept) {
      listener = (event) => {
        const port = event.ports[0]
        if (port !== undefined) accept(portEndpoint(port))
      }
      scope.addEventListener('connect', listener)
    },
    close() {
      if (listener !== undefined) scope.removeEventListener('connect', listener)
    },
  }
}

/** A Window: post with the peer's origin, accept only the allowed origins, and only from that window. */
/** The windows this context links to, with their allowed origins: one link must not refuse another's traffic. */
const windowLinks = new Map<unknown, readonly string[]>()

/** Is a message from this window and origin some Window link's legitimate traffic? */
function belongsToAWindowLink(source: unknown, origin: string | undefined): boolean {
  const allowed = windowLinks.get(source)
  return allowed !== undefined && origin !== undefined && allowed.includes(origin)
}

function windowEndpoint(target: WindowTarget, origins: readonly string[]): Endpoint {
  const scope = globalThis as unknown as EventPort
  // Until the peer speaks, post to each allowed origin (the browser delivers only to the matching one).
  let peerOrigin: string | undefined
  let listener: Listener | undefined
  const own = (globalThis as { location?: { origin?: unknown } }).location?.origin
  return {
    kind: 'point',
    // A window of another origin may act only as the contexts behind it (DESIGN.md, trust model).
    crossOrigin: origins.some((allowed) => allowed !== own),
    post(message) {
      if (peerOrigin !== undefined) target.postMessage(message, peerOrigin)
      else for (const allowed of origins) target.postMessage(message, allowed)
    },
    listen(receive, reject) {
      listener = (event) => {
        const allowed = event.origin !== undefined && origins.includes(event.origin)
        if (event.source !== target) {
          // Another window. Another Window link's peer is that link's business; anything else that
          // looks like a crossbus frame is foreign: refused and counted, like on a channel.
          // Other traffic (not crossbus) is not ours to judge.
          if (!allowed && !belongsToAWindowLink(event.source, event.origin) && looksLikeFrame(event.data)) {
            reject(`frame from origin ${String(event.origin)}, which is not allowed`)
          }
          return
        }
        if (!allowed) {
          reject(`message from origin ${String(event.origin)}, which is not allowed`)
          return
        }
        peerOrigin = event.origin
        receive(event.data)
      }
      windowLinks.set(target, origins)
      scope.addEventListener('message', listener)
    },
    close() {
      if (windowLinks.get(target) === origins) windowLinks.delete(target)
      if (listener !== undefined) scope.removeEventListener('message', listener)
    },
  }
}

/** A page's link to its service worker: postMessage wakes it; replies come on navigator.serviceWorker. */
function serviceWorkerPageEndpoint(container: ServiceWorkerContainerLike): Endpoint {
  let listener: Listener | undefined
  /** Frames posted while no worker controls the page, sent in order once one is ready. */
  const waiting: unknown[] = []
  return {
    kind: 'point',
    post(message) {
      if (container.controller !== null && waiting.length === 0) {
        container.controller.postMessage(message)
        return
      }
      waiting.push(message)
      if (waiting.length > 1) return
      void container.ready
        .then((registration) => {
          const worker = container.controller ?? registration.active
          for (const frame of waiting.splice(0)) worker?.postMessage(frame)
        })
        .catch(() => {
          // No worker will come (registration failed): what waited cannot be sent.
          waiting.length = 0
        })
    },
    listen(receive) {
      listener = (event) => receive(event.data)
      container.addEventListener('message', listener)
      container.startMessages?.()
    },
    close() {
      if (listener !== undefined) container.removeEventListener('message', listener)
    },
  }
}

/** A client of a service worker (a page), as a message event's `source` gives it. */
interface ClientLike {
  readonly id: string
  postMessage(message: unknown): void
}

const isClient = (source: unknown): source is ClientLike =>
  typeof source === 'object' && source !== null && typeof (source as ClientLike).id === 'string' && typeof (source as ClientLike).postMessage === 'function'

/**
 * A service worker's links to its pages: a point link (with credits, like the
 * page's side) for each client that speaks to it, made on the client's first
 * frame (which may be the one that woke a stopped worker) and closed when that
 * client leaves. One link to every client at once could not work: the pages'
 * links wait for credit, and a link to many has no one to grant it to.
 */
function serviceWorkerScopeSource(scope: ServiceWorkerScopeLike): EndpointSource {
  /** Delivery into the link of each client, by client id. */
  const links = new Map<string, (message: unknown) => void>()
  let listener: Listener | undefined
  return {
    kind: 'source',
    accept(accept) {
      listener = (event) => {
        const client = event.source
        if (!isClient(client)) return
        let deliver = links.get(client.id)
        if (deliver === undefined) {
          // A page's own messages to its worker are not ours until its bus speaks.
          if (!looksLikeFrame(event.data)) return
          let receive: ((message: unknown) => void) | undefined
          const id = client.id
          deliver = (message) => receive?.(message)
          links.set(id, deliver)
          accept({
            kind: 'point',
            post: (message) => client.postMessage(message),
            listen(onMessage) {
              receive = onMessage
            },
            close() {
              if (links.get(id) === deliver) links.delete(id)
            },
          })
        }
        deliver(event.data)
      }
      scope.addEventListener('message', listener)
    },
    close() {
      if (listener !== undefined) scope.removeEventListener('message', listener)
      links.clear()
    },
  }
}
