/**
 * crossbus: one non-blocking topic bus for every context of a web app.
 *
 * @example
 * import { createBus } from 'crossbus'
 * const bus = createBus<{ 'cart.updated': { items: number } }>()
 * bus.subscribe('cart.*', (event) => render(event.data.items))
 * bus.publish('cart.updated', { items: 3 })
 *
 * @module
 */
export { createBus } from './bus.js'
export { CrossbusError, isCrossbusError, type ErrorCode } from './errors.js'
export { matches, MAX_TOPIC_LENGTH } from './topic.js'
export type * from './types.js'
