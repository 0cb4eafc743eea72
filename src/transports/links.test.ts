import { describeLink, messageChannelPair } from '../../test/link-conformance.js'
import { broadcastChannel } from './broadcast-channel.js'
import type { Endpoint, Transport } from '../seams.js'

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

describeLink('MessagePort', messageChannelPair)

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
    inject: (message) =>
      queueMicrotask(() => {
        for (const receive of inboxes[0]) receive(structuredClone(message))
      }),
  }
})
