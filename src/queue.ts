/** What a full queue does with one more event. */
export type Overflow = 'drop-newest' | 'drop-oldest'

const INITIAL_SLOTS = 16

/**
 * A bounded FIFO ring buffer. It never holds more than `capacity` items and
 * allocates its slots lazily, so a subscription with a large capacity costs
 * memory only for what it actually holds.
 */
export class BoundedQueue<T> {
  readonly capacity: number
  #slots: (T | undefined)[]
  #head = 0
  #size = 0

  constructor(capacity: number) {
    this.capacity = capacity
    this.#slots = new Array<T | undefined>(Math.min(capacity, INITIAL_SLOTS))
  }

  get size(): number {
    return this.#size
  }

  get full(): boolean {
    return this.#size >= this.capacity
  }

  /** Appends at the tail. Returns false, holding nothing new, when full. */
  push(item: T): boolean {
    const size = this.#size
    if (size >= this.capacity) return false
    let slots = this.#slots
    if (size === slots.length) slots = this.#grow()
    let index = this.#head + size
    if (index >= slots.length) index -= slots.length
    slots[index] = item
    this.#size = size + 1
    return true
  }

  /** Removes and returns the head, or undefined when empty. */
  shift(): T | undefined {
    if (this.#size === 0) return undefined
    const slots = this.#slots
    const head = this.#head
    const item = slots[head]
    slots[head] = undefined
    this.#head = head + 1 === slots.length ? 0 : head + 1
    this.#size--
    return item
  }

  /** Empties the queue and returns what it held, head first. */
  drain(): T[] {
    const items: T[] = []
    for (let item = this.shift(); item !== undefined; item = this.shift()) items.push(item)
    return items
  }

  #grow(): (T | undefined)[] {
    const old = this.#slots
    const length = Math.min(this.capacity, Math.max(INITIAL_SLOTS, old.length * 2))
    const slots = new Array<T | undefined>(length)
    for (let index = 0; index < this.#size; index++) {
      slots[index] = old[(this.#head + index) % old.length]
    }
    this.#slots = slots
    this.#head = 0
    return slots
  }
}
