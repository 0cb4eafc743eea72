/**
 * Links between contexts, for `createBus({ transports })`.
 *
 * @example
 * import { broadcastChannel, messagePort } from 'crossbus/transports'
 *
 * @module
 */
export { broadcastChannel, type BroadcastChannelOptions, type LinkOptions } from './broadcast-channel.js'
export { messagePort, type MessagePortOptions, type MessagePortTarget } from './message-port.js'
export type { Endpoint, EndpointSource, Transport } from '../seams.js'
