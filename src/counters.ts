/** The bus's counters, since createBus: the numbers of `stats()` that the parts add to. */
export interface Counters {
  published: number
  delivered: number
  dropped: number
  failed: number
  retried: number
  deadLettered: number
  received: number
  rejected: number
  stored: number
  evicted: number
}

export function createCounters(): Counters {
  return { published: 0, delivered: 0, dropped: 0, failed: 0, retried: 0, deadLettered: 0, received: 0, rejected: 0, stored: 0, evicted: 0 }
}
