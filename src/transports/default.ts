import type { Transport } from '../seams.js'
import { broadcastChannel } from './broadcast-channel.js'

/**
 * The default transports: a BroadcastChannel link where BroadcastChannel really
 * delivers. Not by `typeof` alone: Cloudflare Workers have none, and test pools
 * for workerd install a stub that never delivers (and whose timers would keep
 * running outside any request).
 */
export function defaultTransports(): Transport[] {
  if (typeof BroadcastChannel !== 'function') return []
  const agent = (globalThis as { navigator?: { userAgent?: string } }).navigator?.userAgent
  if (agent === 'Cloudflare-Workers') return []
  return [broadcastChannel()]
}
