import { describe, expectTypeOf, test } from 'vitest'
import { createBus, type BusEvent, type DeepReadonly, type Endpoint, type EndpointSource, type PatternMatches, type Transport } from './index.js'

type Events = {
  'cart.updated': { items: number }
  'cart.cleared': null
  'orders.eu.created': { id: string }
  'user.login': string
}

describe('typed topic map', () => {
  const bus = createBus<Events>()

  test('publish takes only known topics with their payload type', () => {
    bus.publish('cart.updated', { items: 1 })
    bus.publish('cart.cleared', null)
    // @ts-expect-error unknown topic
    bus.publish('cart.unknown', { items: 1 })
    // @ts-expect-error wrong payload type
    bus.publish('cart.updated', { items: 'one' })
    // @ts-expect-error missing payload
    bus.publish('user.login')
  })

  test('an exact subscription gets that topic’s payload', () => {
    bus.subscribe('cart.updated', (event) => {
      expectTypeOf(event.data).toEqualTypeOf<DeepReadonly<{ items: number }>>()
      expectTypeOf(event.topic).toEqualTypeOf<'cart.updated'>()
    })
  })

  test('a wildcard subscription gets a union discriminated by topic', () => {
    bus.subscribe('cart.*', (event) => {
      expectTypeOf(event.topic).toEqualTypeOf<'cart.updated' | 'cart.cleared'>()
      if (event.topic === 'cart.updated') expectTypeOf(event.data.items).toEqualTypeOf<number>()
      else expectTypeOf(event.data).toEqualTypeOf<null>()
    })
    bus.subscribe('orders.>', (event) => {
      expectTypeOf(event.data).toEqualTypeOf<DeepReadonly<{ id: string }>>()
    })
  })

  test('a pattern that matches no topic does not compile', () => {
    // @ts-expect-error no topic matches
    bus.subscribe('payments.*', () => {})
    // @ts-expect-error * is exactly one token
    bus.subscribe('orders.*', () => {})
    // @ts-expect-error no topic matches
    bus.once('nothing')
  })

  test('payloads are read-only to handlers', () => {
    bus.subscribe('cart.updated', (event) => {
      // @ts-expect-error data is shared by reference: read-only
      event.data.items = 2
      // @ts-expect-error the envelope is frozen
      event.topic = 'cart.cleared'
    })
  })

  test('process, stream, once and reply carry the same types', async () => {
    bus.process('user.login', (event, { signal, attempt }) => {
      expectTypeOf(event.data).toEqualTypeOf<string>()
      expectTypeOf(signal).toEqualTypeOf<AbortSignal>()
      expectTypeOf(attempt).toEqualTypeOf<number>()
    })
    for await (const event of bus.stream('orders.eu.created')) expectTypeOf(event.data.id).toEqualTypeOf<string>()
    expectTypeOf(await bus.once('user.login')).toEqualTypeOf<BusEvent<string, 'user.login'>>()
    bus.reply('user.login', (event) => event.data.length)
    expectTypeOf(bus.request('user.login', 'ann')).toEqualTypeOf<Promise<unknown>>()
  })
})

describe('untyped bus', () => {
  test('takes any topic and gives unknown data', () => {
    const bus = createBus()
    bus.publish('anything.goes', { x: 1 })
    bus.subscribe('any.*', (event) => {
      expectTypeOf(event.data).toEqualTypeOf<unknown>()
      expectTypeOf(event.topic).toEqualTypeOf<string>()
    })
  })
})

describe('PatternMatches', () => {
  test('follows NATS wildcard rules at compile time', () => {
    expectTypeOf<PatternMatches<'a.*', 'a.b'>>().toEqualTypeOf<true>()
    expectTypeOf<PatternMatches<'a.*', 'a.b.c'>>().toEqualTypeOf<false>()
    expectTypeOf<PatternMatches<'a.>', 'a.b.c'>>().toEqualTypeOf<true>()
    expectTypeOf<PatternMatches<'a.>', 'a'>>().toEqualTypeOf<false>()
    expectTypeOf<PatternMatches<'>', '$reply.x'>>().toEqualTypeOf<false>()
    expectTypeOf<PatternMatches<'orders.>', 'orders.$x'>>().toEqualTypeOf<true>()
    expectTypeOf<PatternMatches<'orders.*', 'orders.$x'>>().toEqualTypeOf<true>()
  })
})

describe('the transport seam', () => {
  test('EndpointSource is exported from crossbus, and a Transport may open one', () => {
    const source: EndpointSource = { kind: 'source', accept: () => {}, close: () => {} }
    const transport: Transport = { name: 'custom', open: () => source }
    expectTypeOf(transport.open({ name: 'n', id: 'i' })).toEqualTypeOf<Endpoint | EndpointSource>()
    // @ts-expect-error a source has no post(): it hands out endpoints
    source.post('x')
  })
})
