// A dedicated worker with a real bus linked to its page by messagePort(self)
// that, when told to on its `garbage` port, also posts garbage on that same
// link: frames with holes, broken conversions, reserved topics, forged
// replies, absurd numbers, a million-event frame (hostile.spec.ts, issue 11).
// The set-up message is taken before the bus listens (see kit.startWorker).
import { Ctx, messagePort, serve } from './kit.ts'

const scope = self as unknown as Worker

/** Every frame here must be refused by the page, none may throw there. */
function garbage(name: string, id: string, pageId: string): unknown[] {
  const base = { crossbus: 1, bus: name, from: id }
  const record = { id, version: 1, patterns: ['x'], replies: [] }
  const holes = (length: number, values: Record<number, unknown> = {}): unknown[] => {
    const array = new Array<unknown>(length)
    for (const [index, value] of Object.entries(values)) array[Number(index)] = value
    return array
  }
  let seq = 1e9
  const events = (body: Record<string, unknown>): Record<string, unknown> => ({
    ...base,
    kind: 'events',
    sources: [id],
    topics: ['from.worker.forged'],
    src: [0],
    // A seq of its own each: a repeated one is dropped as a duplicate before anything else is looked at.
    seq: [++seq],
    topic: [0],
    time: [0],
    data: ['FORGED'],
    ...body,
  })
  const million = 1_000_000
  return [
    { crossbus: { toString: 0 } },
    { ...base, kind: { toString: 0 } },
    { ...base, kind: 'hello', routes: holes(2, { 1: record }) },
    { ...base, kind: 'hello', routes: [{ ...record, patterns: holes(2, { 0: 'x' }) }] },
    { ...base, kind: 'hello', routes: [] },
    events({ topics: holes(1) }),
    events({ sources: holes(1) }),
    events({ seq: [{ valueOf: 0 }] }),
    events({ topics: [`$reply.${pageId}.1`] }),
    events({ topics: ['$secret.x'] }),
    events({
      src: new Uint32Array(million),
      seq: new Float64Array(million),
      topic: new Uint32Array(million),
      time: new Float64Array(million),
      data: new Array(million).fill(0),
    }),
    { ...base, kind: 'retained', patterns: holes(1), ask: 1 },
    { ...base, kind: 'credit', credit: -1 },
  ]
}

scope.addEventListener(
  'message',
  (message: MessageEvent<{ name: string; control: MessagePort; garbage: MessagePort }>) => {
    const { name, control, garbage: trigger } = message.data
    const ctx = new Ctx({ name, transports: [messagePort(scope)] })
    serve(control, ctx)
    trigger.onmessage = (event: MessageEvent<{ pageId: string }>) => {
      const frames = garbage(name, ctx.id, event.data.pageId)
      for (const frame of frames) scope.postMessage(frame)
      trigger.postMessage(frames.length)
    }
  },
  { once: true },
)
