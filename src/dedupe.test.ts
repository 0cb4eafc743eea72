import fc from 'fast-check'
import { describe, expect, test } from 'vitest'
import { DEDUPE_WINDOW, DUPLICATE, FRESH, MAX_STRANGER_SOURCES, SeenSources, SourceSeqs, STALE } from './dedupe.js'

describe('SourceSeqs', () => {
  test('each seq is fresh once, and a copy within the window is a duplicate', () => {
    const seqs = new SourceSeqs()
    for (let seq = 1; seq <= 100; seq++) expect(seqs.accept(seq)).toBe(FRESH)
    for (let seq = 1; seq <= 100; seq++) expect(seqs.accept(seq)).toBe(DUPLICATE)
    // Out of order within the window: still recognised.
    expect(seqs.accept(150)).toBe(FRESH)
    expect(seqs.accept(120)).toBe(FRESH)
    expect(seqs.accept(120)).toBe(DUPLICATE)
  })

  test('a copy older than the window is stale, not taken again', () => {
    const seqs = new SourceSeqs()
    for (let seq = 1; seq <= DEDUPE_WINDOW + 10; seq++) seqs.accept(seq)
    expect(seqs.accept(5)).toBe(STALE)
  })

  test('one absurd seq opens a window of its own: the source goes on where it was, and nothing is replayed', () => {
    const seqs = new SourceSeqs()
    for (let seq = 1; seq <= 50; seq++) seqs.accept(seq)
    expect(seqs.accept(Number.MAX_SAFE_INTEGER)).toBe(FRESH)
    for (let seq = 51; seq <= 10_000; seq++) expect(seqs.accept(seq)).toBe(FRESH)
    expect(seqs.accept(9_999)).toBe(DUPLICATE)
    expect(seqs.accept(Number.MAX_SAFE_INTEGER)).toBe(DUPLICATE)
    // A second bogus seq does not push the real window out either: it has seen more.
    expect(seqs.accept(Number.MAX_SAFE_INTEGER - 2 * DEDUPE_WINDOW)).toBe(FRESH)
    expect(seqs.accept(10_001)).toBe(FRESH)
  })

  test('a bogus seq before a source’s first real event does not silence it either', () => {
    const seqs = new SourceSeqs()
    expect(seqs.accept(1e9)).toBe(FRESH)
    expect(seqs.accept(1e9 + 1)).toBe(FRESH)
    for (let seq = 1; seq <= 100; seq++) expect(seqs.accept(seq)).toBe(FRESH)
    expect(seqs.accept(50)).toBe(DUPLICATE)
  })

  test('a source no window covers any more gets through after a run of stale events, instead of staying silent', () => {
    const seqs = new SourceSeqs()
    for (let seq = 1; seq <= 50; seq++) seqs.accept(seq)
    // Two far windows, each pumped with more events than the source's real one saw: it is pushed out.
    for (let seq = 1e12; seq < 1e12 + 100; seq++) seqs.accept(seq)
    for (let seq = 2e12; seq < 2e12 + 100; seq++) seqs.accept(seq)
    const results = Array.from({ length: 100 }, (_, index) => seqs.accept(51 + index))
    const firstFresh = results.indexOf(FRESH)
    expect(firstFresh).toBeGreaterThan(0)
    expect(firstFresh).toBeLessThan(100)
    expect(results.slice(0, firstFresh).every((seen) => seen === STALE)).toBe(true)
    expect(results.slice(firstFresh).every((seen) => seen === FRESH)).toBe(true)
  })

  test('property: interleaved copies of one stream over two paths, each path in order, are taken exactly once', () => {
    fc.assert(
      fc.property(fc.array(fc.boolean(), { minLength: 1, maxLength: 2000 }), fc.integer({ min: 0, max: 100 }), (choices, lag) => {
        // Path A delivers seq n at step n; path B the same seqs `lag` steps later (lag < DEDUPE_WINDOW).
        const seqs = new SourceSeqs()
        const count = choices.length
        let fresh = 0
        for (let step = 1; step <= count + lag; step++) {
          const order = choices[(step - 1) % count] ? [step, step - lag] : [step - lag, step]
          for (const seq of order) if (seq >= 1 && seq <= count && seqs.accept(seq) === FRESH) fresh++
        }
        expect(fresh).toBe(count)
      }),
      { numRuns: 200 },
    )
  })
})

describe('SeenSources', () => {
  test('made-up sources are bounded and never push out a live source', () => {
    const seen = new SeenSources()
    const live = seen.of('live', true)
    for (let seq = 1; seq <= 10; seq++) live.accept(seq)
    for (let index = 0; index < 10 * MAX_STRANGER_SOURCES; index++) seen.of(`fake${index}`, false).accept(1)
    expect(seen.size).toEqual({ known: 1, strangers: MAX_STRANGER_SOURCES })
    expect(seen.of('live', true).accept(5)).toBe(DUPLICATE)
  })

  test('a context that is gone keeps its windows a while among the strangers', () => {
    const seen = new SeenSources()
    seen.of('gone', true).accept(7)
    seen.forget('gone')
    expect(seen.size).toEqual({ known: 0, strangers: 1 })
    expect(seen.of('gone', false).accept(7)).toBe(DUPLICATE)
  })
})
