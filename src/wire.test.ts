// The decoder against what found issue 11's bugs: valid frames with one part
// replaced by something hostile (sparse arrays, broken or spying toString,
// valueOf and getters, proxies, extreme numbers, reserved topics). It must
// never throw, never run code the sender controls, and whatever it returns as
// a frame must hold only what the rest of the bus can trust.
import fc from 'fast-check'
import { describe, expect, test } from 'vitest'
import { calls, hostileValues, paths, replaced, validFrames } from '../test/hostile.js'
import { decodeFrame, type Frame, MAX_FRAME_EVENTS, MAX_ID_LENGTH, MAX_PATTERNS, MAX_ROUTES, WIRE_VERSION } from './wire.js'

type Json = Record<string, unknown>
const bus = { bus: 'bus' }

/** What the rest of the bus relies on in a decoded frame. */
function trustworthy(frame: Frame): boolean {
  const isId = (value: unknown): boolean => typeof value === 'string' && value.length > 0 && value.length <= MAX_ID_LENGTH
  const strings = (list: readonly unknown[]): boolean =>
    Array.isArray(list) && list.every((item, index) => Object.hasOwn(list, index) && typeof item === 'string')
  if (!isId(frame.from) || typeof frame.bus !== 'string') return false
  switch (frame.kind) {
    case 'hello':
      return (
        frame.routes.length <= MAX_ROUTES &&
        frame.routes.every(
          (route) =>
            isId(route.id) && Number.isSafeInteger(route.version) && strings(route.patterns) && strings(route.replies) && route.patterns.length <= MAX_PATTERNS,
        )
      )
    case 'events': {
      const count = frame.data.length
      if (count > MAX_FRAME_EVENTS || !frame.sources.every(isId) || !strings(frame.topics)) return false
      for (let index = 0; index < count; index++) {
        const source = frame.src[index] as number
        const at = frame.topic[index] as number
        if (!(source >= 0 && source < frame.sources.length && at >= 0 && at < frame.topics.length)) return false
        if (!Number.isSafeInteger(frame.seq[index]) || !Number.isFinite(frame.time[index])) return false
        const headers = frame.headers?.[index]
        if (headers !== undefined && headers !== null && !Object.values(headers).every((header) => typeof header === 'string')) return false
      }
      return true
    }
    case 'credit':
      return Number.isSafeInteger(frame.credit) && frame.credit >= 0
    case 'retained':
      return strings(frame.patterns) && Number.isSafeInteger(frame.ask)
    default:
      return true
  }
}

describe('decodeFrame against hostile frames', () => {
  test('a valid frame with any one part replaced: never throws, runs no sender code, returns only what can be trusted', () => {
    fc.assert(
      fc.property(
        validFrames(bus).chain((frame) => fc.tuple(fc.constant(frame), fc.constantFrom(...paths(frame)), hostileValues())),
        ([frame, path, make]) => {
          calls.length = 0
          const result = decodeFrame(replaced(frame, path, make()))
          expect(calls).toEqual([])
          if (typeof result !== 'string') expect(trustworthy(result)).toBe(true)
        },
      ),
      { numRuns: 3000 },
    )
  })

  test('valid frames decode to the same content', () => {
    fc.assert(
      fc.property(validFrames(bus), (frame) => {
        const result = decodeFrame(frame)
        expect(typeof result).toBe('object')
        expect(trustworthy(result as Frame)).toBe(true)
        expect((result as Frame).kind).toBe(frame.kind)
      }),
      { numRuns: 500 },
    )
  })

  test('a frame that is itself hostile (proxy, getters, broken conversions) is refused without running any of it', () => {
    fc.assert(
      fc.property(hostileValues(), (make) => {
        const value = make()
        calls.length = 0
        expect(typeof decodeFrame(value)).toBe('string')
        expect(typeof decodeFrame({ crossbus: value })).toBe('string')
        expect(typeof decodeFrame({ crossbus: WIRE_VERSION, bus: 'bus', from: 'f', kind: value })).toBe('string')
        expect(calls).toEqual([])
      }),
      { numRuns: 500 },
    )
  })

  test('limits: more events, routes or patterns than the protocol allows', () => {
    const base = { crossbus: WIRE_VERSION, bus: 'bus', from: 'f' }
    const events = (count: number): Json => ({
      ...base,
      kind: 'events',
      sources: ['f'],
      topics: ['t'],
      src: new Uint32Array(count),
      seq: new Float64Array(count),
      topic: new Uint32Array(count),
      time: new Float64Array(count),
      data: new Array(count).fill(null),
    })
    expect(typeof decodeFrame(events(MAX_FRAME_EVENTS))).toBe('object')
    expect(decodeFrame(events(MAX_FRAME_EVENTS + 1))).toBe(`a frame of ${MAX_FRAME_EVENTS + 1} events, more than ${MAX_FRAME_EVENTS}`)
    const routes = (count: number): Json => ({
      ...base,
      kind: 'hello',
      routes: Array.from({ length: count }, (_, index) => ({ id: `r${index}`, version: 1, patterns: [], replies: [] })),
    })
    expect(typeof decodeFrame(routes(MAX_ROUTES))).toBe('object')
    expect(decodeFrame(routes(MAX_ROUTES + 1))).toBe('malformed routes')
    // A record with more patterns than are read one by one wants everything.
    const many = Array.from({ length: MAX_PATTERNS + 1 }, (_, index) => `p${index}`)
    const hello = decodeFrame({ ...base, kind: 'hello', routes: [{ id: 'f', version: 1, patterns: many, replies: many.slice(0, MAX_PATTERNS) }] })
    expect(hello).toMatchObject({ routes: [{ patterns: ['>'], replies: many.slice(0, MAX_PATTERNS) }] })
    expect(decodeFrame({ ...base, kind: 'retained', patterns: many, ask: 1 })).toBe('malformed retained request')
  })
})
