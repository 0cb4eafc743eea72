/**
 * De-duplication of events that arrive twice (two paths to one peer, a cycle
 * of relays), with memory fixed per source and no number that can silence a
 * source: a seq far ahead of the others opens a window of its own instead of
 * moving the one the source's real events fall in.
 */

/** Seqs remembered per window: a copy arriving more than this many seqs behind the newest of its window is "stale". */
export const DEDUPE_WINDOW = 4096
/** Sources with a route record (live contexts) are kept while they live; these many others, least recently heard first out. */
export const MAX_STRANGER_SOURCES = 256
/** Stale events of one source in a row after which its windows start over at the next (a source no window covers any more). */
const STALE_RUN = 64

const WORDS = DEDUPE_WINDOW / 32

/** What accept() says of a seq. */
export const FRESH = 0
export const DUPLICATE = 1
export const STALE = 2
export type Seen = typeof FRESH | typeof DUPLICATE | typeof STALE

/** The last DEDUPE_WINDOW seqs up to `high`, as a ring of bits (512 bytes). */
class Window {
  high: number
  /** Seqs accepted in this window: the one with more is kept when a far seq opens a new one. */
  hits = 1
  readonly bits = new Uint32Array(WORDS)

  constructor(seq: number) {
    this.high = seq
    this.#set(seq)
  }

  covers(seq: number): boolean {
    return seq > this.high - DEDUPE_WINDOW
  }

  /** Marks a seq this window covers; false when it was marked already. */
  mark(seq: number): boolean {
    if (seq > this.high) this.#advance(seq)
    else if (this.#has(seq)) return false
    this.#set(seq)
    this.hits++
    return true
  }

  /** Was this seq marked (false for one outside the window)? */
  seen(seq: number): boolean {
    return seq <= this.high && this.covers(seq) && this.#has(seq)
  }

  #has(seq: number): boolean {
    const bit = seq % DEDUPE_WINDOW
    return ((this.bits[bit >>> 5] as number) & (1 << (bit & 31))) !== 0
  }

  #set(seq: number): void {
    const bit = seq % DEDUPE_WINDOW
    this.bits[bit >>> 5] = (this.bits[bit >>> 5] as number) | (1 << (bit & 31))
  }

  /** Moves the window up to `seq`, forgetting what falls out of it. */
  #advance(seq: number): void {
    if (seq - this.high >= DEDUPE_WINDOW) this.bits.fill(0)
    else {
      for (let next = this.high + 1; next <= seq; next++) {
        const bit = next % DEDUPE_WINDOW
        this.bits[bit >>> 5] = (this.bits[bit >>> 5] as number) & ~(1 << (bit & 31))
      }
    }
    this.high = seq
  }
}

/** Windows kept per source. */
const MAX_WINDOWS = 2

/**
 * The seqs seen of one source, in at most two windows. A seq within reach of
 * a window (less than DEDUPE_WINDOW beyond either end) is checked there; one
 * far from every window opens a window of its own in place of the one that
 * has seen the fewest. So one of the source's real events and a bogus
 * `MAX_SAFE_INTEGER` each get a window, and the real ones go on in theirs.
 */
export class SourceSeqs {
  readonly #windows: Window[] = []
  /** The lowest seq ever taken from this source: below it nothing was seen, so nothing can be a duplicate. */
  #lowest = Number.POSITIVE_INFINITY
  #staleRun = 0

  /** Was this seq taken already? Looks without taking it (answers to a retained-state request). */
  seen(seq: number): boolean {
    for (const window of this.#windows) if (window.seen(seq)) return true
    return false
  }

  accept(seq: number): Seen {
    const windows = this.#windows
    let target: Window | undefined
    let floor = Number.POSITIVE_INFINITY
    for (const window of windows) {
      floor = Math.min(floor, window.high - DEDUPE_WINDOW)
      if (!window.covers(seq) || seq > window.high + DEDUPE_WINDOW) continue
      // Within reach of two windows: the one that holds it already, if one does.
      if (target === undefined || seq <= window.high) target = window
    }
    if (target !== undefined) {
      this.#staleRun = 0
      if (!target.mark(seq)) return DUPLICATE
      if (seq < this.#lowest) this.#lowest = seq
      return FRESH
    }
    // Older than every window, yet not older than everything taken: a replay, or a copy far behind.
    // After a run of them the source is evidently somewhere no window covers (its windows were
    // pushed away by bogus seqs that saw more): start over there.
    if (seq >= this.#lowest && seq <= floor && ++this.#staleRun < STALE_RUN) return STALE
    // Far from every window (a jump ahead, or a seq below all ever taken): a window of its own.
    this.#staleRun = 0
    if (seq < this.#lowest) this.#lowest = seq
    const fresh = new Window(seq)
    if (windows.length < MAX_WINDOWS) windows.push(fresh)
    else {
      let fewest = 0
      for (let index = 1; index < windows.length; index++) if ((windows[index] as Window).hits < (windows[fewest] as Window).hits) fewest = index
      windows[fewest] = fresh
    }
    return FRESH
  }
}

/**
 * The windows of every source heard: those of live contexts (they have a
 * route record) for as long as they live, at most MAX_STRANGER_SOURCES
 * others, so a flood of made-up sources can neither grow memory nor push a
 * live source's window out (which would let an old frame replay).
 */
export class SeenSources {
  readonly #known = new Map<string, SourceSeqs>()
  readonly #strangers = new Map<string, SourceSeqs>()

  /** The windows of `source`; `known`: it is a live context. */
  of(source: string, known: boolean): SourceSeqs {
    let seqs = this.#known.get(source)
    if (seqs !== undefined) return seqs
    seqs = this.#strangers.get(source)
    if (seqs !== undefined) this.#strangers.delete(source)
    else seqs = new SourceSeqs()
    if (known) this.#known.set(source, seqs)
    else {
      if (this.#strangers.size >= MAX_STRANGER_SOURCES) this.#strangers.delete(this.#strangers.keys().next().value as string)
      this.#strangers.set(source, seqs)
    }
    return seqs
  }

  /** A context is gone: its windows stay a while among the strangers (an old frame of it still replays nothing). */
  forget(source: string): void {
    const seqs = this.#known.get(source)
    if (seqs === undefined) return
    this.#known.delete(source)
    if (this.#strangers.size >= MAX_STRANGER_SOURCES) this.#strangers.delete(this.#strangers.keys().next().value as string)
    this.#strangers.set(source, seqs)
  }

  /** Sources with windows, for tests and the bench. */
  get size(): { known: number; strangers: number } {
    return { known: this.#known.size, strangers: this.#strangers.size }
  }
}
