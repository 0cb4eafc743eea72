// The dedicated worker of the page→worker cases. The first message on `self`
// carries the variant and a MessagePort for control; after it, `self` carries
// only the variant's own traffic (crossbus frames or raw events), so control
// messages never mix with what is measured.
import { listen, Sink, takeDiagnostics, type Variant, wallClock, workerScope } from './common.ts'

interface Setup {
  variant: Variant
  name: string
  capacity: number
  control: MessagePort
}

type Command =
  | { type: 'arm'; target: number; latency: boolean; round: number }
  | { type: 'stats' }
  | { type: 'stall'; flag: SharedArrayBuffer | undefined; ms: number }
  | { type: 'ping' }
  | { type: 'close' }

const scope = workerScope()

scope.addEventListener(
  'message',
  (event: MessageEvent) => {
    const { variant, name, capacity, control } = event.data as Setup
    const sink = new Sink()
    const receiver = listen(variant, 'worker', name, sink, capacity, 'bench.ready')
    let round = 0
    sink.done = () => {
      const latencies = sink.latencies
      control.postMessage({ type: 'done', round, stats: receiver.stats(), latencies, diagnostics: takeDiagnostics() })
    }
    control.onmessage = (message: MessageEvent<Command>) => {
      const command = message.data
      switch (command.type) {
        case 'arm':
          round = command.round
          sink.arm(command.target, command.latency)
          control.postMessage({ type: 'armed' })
          return
        case 'stats':
          control.postMessage({ type: 'stats', stats: receiver.stats() })
          return
        case 'stall': {
          // Block this thread: no message (so no crossbus credit grant) is handled until it ends.
          control.postMessage({ type: 'stalled' })
          if (command.flag !== undefined) Atomics.wait(new Int32Array(command.flag), 0, 0, command.ms)
          else for (const end = performance.now() + command.ms; performance.now() < end; );
          return
        }
        case 'ping':
          control.postMessage({ type: 'pong', clock: wallClock() })
          return
        case 'close':
          receiver.close()
          return
      }
    }
    control.postMessage({ type: 'ready', crossOriginIsolated })
  },
  { once: true },
)
