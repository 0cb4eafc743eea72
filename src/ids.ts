/** Ids: a context's random id, and the ids of its events. */

/** A random id that is a valid topic token: 8 base36 characters, no dots. */
export function randomId(): string {
  const bytes = new Uint8Array(8)
  if (typeof crypto === 'object' && typeof crypto.getRandomValues === 'function') crypto.getRandomValues(bytes)
  else for (let index = 0; index < bytes.length; index++) bytes[index] = Math.floor(Math.random() * 256)
  let id = ''
  for (const byte of bytes) id += (byte % 36).toString(36)
  return id
}

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
