// Section 7 of the bench: a new tab that publishes at module evaluation, right
// after createBus() (or new BroadcastChannel, raw): `t0` is taken just before,
// on the wall clock the receiving tab also reads (timeOrigin + now).
import { createBus } from '../../src/index.ts'
import { wallClock } from './common.ts'

const params = new URL(location.href).searchParams
const name = params.get('name') ?? 'bench'
const t0 = wallClock()
if (params.get('variant') === 'raw') {
  new BroadcastChannel(`raw-startup:${name}`).postMessage({ t0 })
} else {
  createBus({ name }).publish('bench.startup', { t0 })
}
;(document.getElementById('status') as HTMLElement).textContent = 'ready'
