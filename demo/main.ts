// Placeholder demo: publish bursts, stall a consumer, watch bus.stats() live.
import { createBus, type Subscription } from '../src/index.ts'

const bus = createBus({ name: 'crossbus-demo', onDiagnostic: () => {} })

// Keeps up with any burst the input allows.
let checksum = 0
bus.subscribe(
  'demo.>',
  (event) => {
    checksum = (checksum + (event.data as number)) % 1_000_003
  },
  { capacity: 1_000_000 },
)

let stalled: Subscription | undefined

function element<T extends HTMLElement>(id: string): T {
  const found = document.getElementById(id)
  if (found === null) throw new Error(`demo: #${id} is missing`)
  return found as T
}

const count = element<HTMLInputElement>('count')
const fields = {
  published: element('published'),
  delivered: element('delivered'),
  dropped: element('dropped'),
  failed: element('failed'),
}
const subscriptions = element('subscriptions')

element('burst').addEventListener('click', () => {
  const n = Math.max(1, Math.min(1_000_000, Math.floor(count.valueAsNumber) || 1))
  for (let index = 0; index < n; index++) bus.publish('demo.tick', index)
})

element<HTMLInputElement>('stalled').addEventListener('change', (event) => {
  if ((event.target as HTMLInputElement).checked) {
    // Takes one event and never finishes it: its queue fills, then drops.
    stalled ??= bus.subscribe('demo.>', () => new Promise<void>(() => {}), { capacity: 100 })
  } else {
    stalled?.unsubscribe()
    stalled = undefined
  }
})

const format = (value: number): string => String(value)

function render(): void {
  const stats = bus.stats()
  fields.published.textContent = format(stats.published)
  fields.delivered.textContent = format(stats.delivered)
  fields.dropped.textContent = format(stats.dropped)
  fields.failed.textContent = format(stats.failed)
  const rows = stats.subscriptions.map((s) => {
    const row = document.createElement('tr')
    for (const [text, numeric] of [
      [s.pattern, false],
      [format(s.queued), true],
      [format(s.capacity), true],
      [format(s.delivered), true],
      [format(s.dropped), true],
    ] as const) {
      const cell = document.createElement('td')
      cell.textContent = text
      if (numeric) cell.className = 'n'
      row.append(cell)
    }
    return row
  })
  subscriptions.replaceChildren(...rows)
  requestAnimationFrame(render)
}

requestAnimationFrame(render)
document.body.dataset.ready = 'true'
