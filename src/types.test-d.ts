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

describe('types that accept ordinary code (issue 12)', () => {
  const bus = createBus<Events>()

  test('a handler may return any value: what it returns is ignored', () => {
    const seen: number[] = []
    bus.subscribe('cart.updated', (event) => seen.push(event.data.items))
    bus.process('cart.updated', (event) => seen.push(event.data.items))
    bus.subscribe('cart.updated', async (event) => event.data.items)
  })

  test('an interface works as the event map', () => {
    interface AppEvents {
      'cart.updated': { items: number }
      'user.login': string
    }
    const typed = createBus<AppEvents>()
    typed.publish('cart.updated', { items: 2 })
    typed.subscribe('cart.*', (event) => expectTypeOf(event.data).toEqualTypeOf<DeepReadonly<{ items: number }>>())
    // @ts-expect-error unknown topic
    typed.publish('cart.gone', { items: 2 })
  })

  test('options accept undefined for optional fields (exactOptionalPropertyTypes)', () => {
    const signal: AbortSignal | undefined = undefined as AbortSignal | undefined
    const capacity: number | undefined = undefined as number | undefined
    bus.subscribe('cart.updated', () => {}, { signal, capacity, durable: undefined, last: undefined, queue: undefined })
    bus.process('cart.updated', () => {}, { signal, timeout: undefined, retry: { attempts: undefined }, deadLetter: undefined })
    bus.publish('cart.updated', { items: 1 }, { headers: undefined, retain: undefined })
    void bus.once('cart.updated', { signal, timeout: undefined })
    void bus.close({ timeout: undefined })
    createBus({ name: undefined, capacity, onDiagnostic: undefined, closeTimeout: undefined })
  })

  test('a typed deadLetter must be a topic of the map, which is then subscribable', () => {
    type WithDead = Events & { 'cart.failed': { items: number } }
    const withDead = createBus<WithDead>()
    withDead.process('cart.updated', () => {}, { deadLetter: 'cart.failed' })
    withDead.subscribe('cart.failed', (event) => expectTypeOf(event.data.items).toEqualTypeOf<number>())
    // @ts-expect-error not a topic of the map
    withDead.process('cart.updated', () => {}, { deadLetter: 'cart.lost' })
    withDead.process('cart.updated', () => {}, { deadLetter: (event, error) => void [event, error] })
  })

  test('last(topic) is the retained event of that topic, typed', () => {
    expectTypeOf(bus.last('cart.updated')).toEqualTypeOf<BusEvent<{ items: number }, 'cart.updated'> | undefined>()
    // @ts-expect-error unknown topic
    bus.last('cart.unknown')
  })
})

describe('typed request/reply (issue 12)', () => {
  type Requests = {
    'math.double': { data: number; reply: number }
    'user.find': { data: { id: string }; reply: { name: string } | null }
  }
  const bus = createBus<Events, Requests>()

  test('request resolves to the reply type of its topic, and takes that topic’s data', async () => {
    expectTypeOf(bus.request('math.double', 21)).toEqualTypeOf<Promise<number>>()
    expectTypeOf(await bus.request('user.find', { id: 'a' })).toEqualTypeOf<{ name: string } | null>()
    // @ts-expect-error wrong data
    void bus.request('math.double', 'twenty-one')
    // @ts-expect-error not a request topic
    void bus.request('math.triple', 1)
  })

  test('a reply handler gets the request’s data and must return its reply type', () => {
    bus.reply('math.double', (event, { signal }) => {
      expectTypeOf(event.data).toEqualTypeOf<number>()
      expectTypeOf(signal).toEqualTypeOf<AbortSignal>()
      return event.data * 2
    })
    bus.reply('user.find', async (event) => (event.data.id === 'a' ? { name: 'Ann' } : null))
    // @ts-expect-error the reply of math.double is a number
    bus.reply('math.double', () => 'four')
    // @ts-expect-error not a request topic
    bus.reply('math.triple', () => 3)
  })

  test('an untyped request map keeps unknown', async () => {
    const untyped = createBus<Events>()
    expectTypeOf(await untyped.request('user.login', 'ann')).toEqualTypeOf<unknown>()
    untyped.reply('user.login', (event) => event.data.length)
    const plain = createBus()
    expectTypeOf(await plain.request('any.thing', { x: 1 })).toEqualTypeOf<unknown>()
  })
})
