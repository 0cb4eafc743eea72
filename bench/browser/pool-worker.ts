// A member of the pool of section 8 (see pool.ts): a crossbus queue group
// member, or a raw MessagePort listener, doing the same work per job.
import { createBus } from '../../src/index.ts'
import { messagePort } from '../../src/transports/index.ts'
import { counter, type PoolVariant, work } from './pool.ts'
import { workerScope } from './common.ts'

const scope = workerScope()
let sink = 0
let probes = 0

scope.addEventListener(
  'message',
  (event: MessageEvent) => {
    const { variant, name, control } = event.data as { variant: PoolVariant; name: string; control: MessagePort }
    const count = counter((value) => control.postMessage({ type: 'count', count: value }))
    control.onmessage = () => control.postMessage({ type: 'probes', probes })
    if (variant === 'crossbus') {
      const bus = createBus({ name, transports: [messagePort(scope as unknown as Worker)], onDiagnostic: () => {} })
      bus.process(
        'bench.job',
        (job) => {
          if ((job.data as number) < 0) {
            probes++
            return
          }
          sink ^= work(job.data as number)
          count()
        },
        { queue: 'pool', capacity: 4096 },
      )
    } else {
      scope.addEventListener('message', (message: MessageEvent<number>) => {
        sink ^= work(message.data)
        count()
      })
    }
    control.postMessage({ type: 'ready', sink })
  },
  { once: true },
)
