import { describeLink } from './test-conformance.js'
import { broadcastChannel } from './broadcast-channel.js'
import { messagePort } from './message-port.js'

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
