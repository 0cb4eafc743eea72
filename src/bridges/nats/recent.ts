/**
 * The ids seen most recently, at most `capacity` of them: the oldest is
 * forgotten first. Remote peers choose the ids, so the set never grows
 * past its bound.
 */
export class RecentIds {
  readonly capacity: number
  #ids = new Set<string>()

  constructor(capacity: number) {
    this.capacity = capacity
  }

  get size(): number {
    return this.#ids.size
  }

  has(id: string): boolean {
    return this.#ids.has(id)
  }

  add(id: string): void {
    if (this.#ids.has(id)) return
    if (this.#ids.size >= this.capacity) this.#ids.delete(this.#ids.values().next().value as string)
    this.#ids.add(id)
  }

  delete(id: string): void {
    this.#ids.delete(id)
  }
}
