import type { Endpoint, Transport } from '../seams.js'
import type { Overflow } from '../queue.js'

export interface LinkOptions {
  /** Events waiting to be sent, at most. Default 8192. */
  capacity?: number
  /** What a full queue drops. Default 'drop-newest'. */
  overflow?: Overflow
  /** Events per postMessage, at most. Default 512. */
  batch?: number
}

export interface BroadcastChannelOptions extends LinkOptions {
  /** Channel name. Default `crossbus:${bus name}`. */
  channel?: string
}

/**
 * One link to every same-origin context listening on the channel: tabs,
 * iframes, dedicated and shared workers, service workers, Node worker_threads.
 * It does not wake a stopped service worker (use messagePort() for that).
 *
 * @example
 * const bus = createBus({ transports: [broadcastChannel({ batch: 256 })] })
 */
export function broadcastChannel(options: BroadcastChannelOptions = {}): Transport {
  const { channel, ...link } = options
  return {
    name: 'broadcast-channel',
    ...link,
    open({ name }): Endpoint {
      const port = new BroadcastChannel(channel ?? `crossbus:${name}`)
      // Node: an open channel keeps the process alive; a bus should not.
      ;(port as { unref?: () => void }).unref?.()
      return {
        kind: 'broadcast',
        post: (message) => port.postMessage(message),
        listen(receive, reject) {
          port.onmessage = (event) => receive(event.data)
          port.onmessageerror = () => reject('a message could not be deserialized')
        },
        close: () => port.close(),
        keepAlive(keep) {
          const node = port as { ref?: () => void; unref?: () => void }
          if (keep) node.ref?.()
          else node.unref?.()
        },
      }
    },
  }
}
