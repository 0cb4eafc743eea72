import { describeLink } from './test-conformance.js'
import { broadcastChannel } from './broadcast-channel.js'
import { messagePort } from './message-port.js'
import type { Endpoint, Transport } from '../link.js'

let channels = 0

describeLink('BroadcastChannel', () => {
  const channel = `crossbus-test-${Date.now()}-${++channels}`
  const raw = new BroadcastChannel(channel)
  return {
    left: broadcastChannel({ channel }),
    right: broadcastChannel({ channel }),
    inject: (message) => raw.postMessage(message),
  }
})

describeLink('MessagePort', () => {
  const { port1, port2 } = new MessageChannel()
  // A third port into the left side's inbox, for foreign frames: the left bus listens on port1,
  // so wrap port1 in a relay that also hears injected messages.
  const injector = new MessageChannel()
  const left = messagePort({
    postMessage: (message: unknown) => port1.postMessage(message),
    addEventListener: (type: 'message' | 'messageerror', listener: (event: { data: unknown }) => void) => {
      port1.addEventListener(type, listener)
      injector.port2.addEventListener(type, listener)
    },
    removeEventListener: (type: 'message' | 'messageerror', listener: (event: { data: unknown }) => void) => {
      port1.removeEventListener(type, listener)
      injector.port2.removeEventListener(type, listener)
    },
    start: () => {
      port1.start()
      injector.port2.start()
    },
    close: () => {
      port1.close()
      injector.port2.close()
    },
  })
  return { left, right: messagePort(port2), inject: (message) => injector.port1.postMessage(message) }
})

/**
 * Two endpoints joined in memory: structuredClone and a microtask, no platform
 * channel at all (what a runtime without BroadcastChannel or MessagePort could
 * still use). Proves the protocol needs nothing more from a wire than this.
 */
describeLink('in-memory pair', () => {
  type Receive = (message: unknown) => void
  const inboxes: [Receive[], Receive[]] = [[], []]
  const side = (mine: 0 | 1): Transport => ({
    name: 'memory',
    open: (): Endpoint => ({
      kind: 'point',
      post(message) {
        const copy = structuredClone(message)
        queueMicrotask(() => {
          for (const receive of inboxes[mine === 0 ? 1 : 0]) receive(copy)
        })
      },
      listen(receive) {
        inboxes[mine].push(receive)
      },
      close() {
        inboxes[mine].length = 0
      },
    }),
  })
  return {
    left: side(0),
    right: side(1),
    inject: (message) => queueMicrotask(() => inboxes[0].forEach((receive) => receive(structuredClone(message)))),
  }
})
