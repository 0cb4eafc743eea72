/**
 * The ids seen most recently, at most `capacity` of them: the oldest is
 * forgotten first (a ring beside a set, so each add costs the same however
 * full it is). Remote peers choose the ids, so it never grows past its bound.
 */
export class RecentIds {
  readonly capacity: number
  readonly #ids = new Set<string>()
  readonly #ring: (string | undefined)[]
  #next = 0

  constructor(capacity: number) {
    this.capacity = capacity
    this.#ring = new Array<string | undefined>(capacity)
  }

  get size(): number {
    return this.#ids.size
  }

  has(id: string): boolean {
    return this.#ids.has(id)
  }

  add(id: string): void {
    if (this.#ids.has(id)) return
    const oldest = this.#ring[this.#next]
    if (oldest !== undefined) this.#ids.delete(oldest)
    this.#ring[this.#next] = id
    this.#next = this.#next + 1 === this.capacity ? 0 : this.#next + 1
    this.#ids.add(id)
  }

  /** Forgets an id (its slot in the ring is reused in turn). */
  delete(id: string): void {
    this.#ids.delete(id)
  }
}
