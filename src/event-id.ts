/**
 * Event ids are `${source}:${seq}`. Turning a large number into a string costs
 * more than the rest of a publish, so ids are assembled from a prefix that
 * changes every 1000 events and a precomputed three-digit suffix.
 */
const BLOCK = 1000
let padded: string[] | undefined

/** Returns a function that gives the id of each seq of `source`, fastest for increasing seqs. */
export function createEventIds(source: string): (seq: number) => string {
  const suffixes = (padded ??= Array.from({ length: BLOCK }, (_, index) => String(index).padStart(3, '0')))
  let block = 0
  let prefix = `${source}:`
  return (seq) => {
    if (seq < BLOCK) return `${source}:${seq}`
    const high = Math.floor(seq / BLOCK)
    if (high !== block) {
      block = high
      prefix = `${source}:${high}`
    }
    return prefix + (suffixes[seq - high * BLOCK] as string)
  }
}
