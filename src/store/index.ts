/**
 * Writing a store of your own: any object that implements the Store interface
 * becomes usable as `createBus({ store })` through defineStore(), which gives
 * it the durable engine. indexedDbStore() (crossbus/idb) and memoryStore()
 * (crossbus/memory) are made this way.
 *
 * @example
 * import { defineStore } from 'crossbus/store'
 *
 * @module
 */
export { defineStore } from '../durable.js'
export type { RetentionOptions } from './retention.js'
export type { ConsumerState, Store, StoredEvent } from '../types.js'
