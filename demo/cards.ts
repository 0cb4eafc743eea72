// The control room: a live card per context (this tab, other tabs, their
// dedicated workers, the shared worker, the service worker), drawn from the
// statuses they publish. Cards are built once and updated in place, so their
// buttons stay put while the numbers move.
import type { SubscriptionStats, TransportStats } from '../src/index.ts'
import { colorOf, formatCount, h, setText } from './dom.ts'
import {
  CONSUMER_MODES,
  CONSUMER_PATTERN,
  FREEZE_MS,
  KIND_LABEL,
  STATUS_EVERY_MS,
  type CommandAction,
  type ConsumerMode,
  type ContextKind,
  type Status,
} from './protocol.ts'

/** What a card's buttons do. */
export interface CardActions {
  command(id: string, action: CommandAction, data?: ConsumerMode): void
  ask(id: string): void
}

/** One frame of the room. */
export interface RoomView {
  /** This tab's status, taken now. */
  readonly self: Status
  /** The other contexts' latest statuses: those that are this tab's peers. */
  readonly others: readonly Status[]
  /** Events per second each context's consumer finished lately. */
  readonly rates: ReadonlyMap<string, number>
  readonly now: number
}

export interface Room {
  render(view: RoomView): void
}

/** A status older than this is shown as silent (the context is frozen, hidden or gone). */
const SILENT_AFTER_MS = 3 * STATUS_EVERY_MS

const CLOSE_TITLE = 'that tab closes its bus (bye on every link, lock released) and then itself: its peers see it leave at once'
const CLOSE_REFUSED_TITLE = 'the browser lets a script close only the tabs a script opened'

const COUNTERS = ['published', 'received', 'delivered', 'dropped', 'rejected', 'failed'] as const

const KIND_SHORT: Readonly<Record<ContextKind, string>> = {
  tab: 'tab',
  worker: 'worker',
  'shared-worker': 'shared worker',
  'service-worker': 'service worker',
}

/** Tabs first (this one leading), each followed by its dedicated worker; then the shared and service workers. */
function orderContexts(selfId: string, statuses: readonly Status[]): Status[] {
  const byAge = (a: Status, b: Status): number => a.started - b.started || (a.id < b.id ? -1 : 1)
  const tabs = statuses.filter((status) => status.kind === 'tab').sort((a, b) => (a.id === selfId ? -1 : b.id === selfId ? 1 : byAge(a, b)))
  const ordered: Status[] = []
  const placed = new Set<string>()
  for (const tab of tabs) {
    ordered.push(tab)
    placed.add(tab.id)
    const worker = statuses.find((status) => status.kind === 'worker' && status.id === tab.worker)
    if (worker !== undefined) {
      ordered.push(worker)
      placed.add(worker.id)
    }
  }
  const rank: Readonly<Record<ContextKind, number>> = { tab: 0, worker: 1, 'shared-worker': 2, 'service-worker': 3 }
  const rest = statuses.filter((status) => !placed.has(status.id)).sort((a, b) => rank[a.kind] - rank[b.kind] || byAge(a, b))
  return [...ordered, ...rest]
}

interface Names {
  /** The card title of a context. */
  title(status: Status): string
  /** A short name for a peer chip. */
  chip(id: string): string
  kindOf(id: string): ContextKind | undefined
}

function namesFor(selfId: string, statuses: readonly Status[]): Names {
  const byId = new Map(statuses.map((status) => [status.id, status]))
  const ownerOf = (workerId: string): string | undefined => statuses.find((status) => status.kind === 'tab' && status.worker === workerId)?.id
  return {
    title(status) {
      if (status.kind === 'tab') return status.id === selfId ? 'this tab' : 'tab'
      if (status.kind === 'worker') {
        const owner = ownerOf(status.id)
        if (owner === selfId) return 'dedicated worker of this tab'
        return owner === undefined ? KIND_LABEL.worker : `dedicated worker of tab ${owner}`
      }
      return KIND_LABEL[status.kind]
    },
    chip(id) {
      if (id === selfId) return 'this tab'
      const kind = byId.get(id)?.kind
      return kind === undefined ? id : `${KIND_SHORT[kind]} ${id}`
    },
    kindOf: (id) => byId.get(id)?.kind,
  }
}

/** One table row: its key (data-pattern, data-link), the name shown first, and a text per column. */
interface RowEntry {
  readonly key: string
  readonly label: string
  readonly values: Readonly<Record<string, string>>
}

/** Rows keyed by a string, kept in the order given, each with its data-column cells (data-field is the card's own). */
function createRows(body: HTMLTableSectionElement, attribute: string, columns: readonly string[]): (entries: readonly RowEntry[]) => void {
  const rows = new Map<string, { row: HTMLTableRowElement; cells: Map<string, HTMLElement> }>()
  let order = ''
  return (entries) => {
    const keys = entries.map((entry) => entry.key)
    for (const [key, { row }] of rows) {
      if (!keys.includes(key)) {
        row.remove()
        rows.delete(key)
      }
    }
    for (const entry of entries) {
      let known = rows.get(entry.key)
      if (known === undefined) {
        const cells = new Map<string, HTMLElement>()
        const row = h('tr', { [attribute]: entry.key }, h('td', {}, h('code', {}, entry.label)))
        for (const column of columns) {
          const cell = h('td', { 'data-column': column, class: 'n' })
          cells.set(column, cell)
          row.append(cell)
        }
        known = { row, cells }
        rows.set(entry.key, known)
      }
      for (const [column, cell] of known.cells) setText(cell, entry.values[column] ?? '')
    }
    const nextOrder = keys.join('\n')
    if (nextOrder !== order) {
      order = nextOrder
      body.replaceChildren(...keys.map((key) => (rows.get(key) as { row: HTMLTableRowElement }).row))
    }
  }
}

interface Card {
  readonly root: HTMLElement
  update(status: Status, names: Names, rate: number, now: number): void
}

function createCard(first: Status, selfId: string, actions: CardActions): Card {
  const { id, kind } = first
  const isSelf = id === selfId
  const fields = new Map<string, HTMLElement>()
  const field = <K extends keyof HTMLElementTagNameMap>(tag: K, name: string, text = '', attributes: Record<string, string> = {}): HTMLElementTagNameMap[K] => {
    const node = h(tag, { 'data-field': name, ...attributes }, text)
    fields.set(name, node)
    return node
  }
  const get = (name: string): HTMLElement => fields.get(name) as HTMLElement

  const modeButtons = CONSUMER_MODES.map((mode) => {
    const button = h('button', { type: 'button', 'data-mode': mode, 'aria-pressed': 'false' }, mode)
    button.addEventListener('click', () => actions.command(id, 'mode', mode))
    return button
  })
  const fill = h('div', { class: 'fill' })
  const subscriptionBody = h('tbody')
  const linkBody = h('tbody')
  const chips = h('span', { class: 'chips' })
  const action = (label: string, onClick: () => void, title: string): HTMLButtonElement => {
    const button = h('button', { type: 'button', title }, label)
    button.addEventListener('click', onClick)
    return button
  }
  const closeButton = action('Close tab', () => actions.command(id, 'close'), CLOSE_TITLE)

  const root = h(
    'article',
    { class: 'card', 'data-context': id, 'data-kind': kind, style: `--context: ${colorOf(id)}`, ...(isSelf ? { 'data-self': '' } : {}) },
    h(
      'header',
      {},
      h('span', { class: 'swatch', 'aria-hidden': 'true' }),
      h('div', { class: 'title' }, field('h3', 'title'), field('code', 'id', id)),
      field('span', 'health', 'live', { class: 'health' }),
    ),
    h(
      'section',
      { class: 'consumer' },
      h('div', { class: 'row' }, h('span', {}, 'consumer ', h('code', {}, CONSUMER_PATTERN)), h('span', {}, field('b', 'rate', '0'), ' events/s')),
      h('div', { class: 'bar', title: 'queue depth against capacity' }, fill),
      h(
        'div',
        { class: 'row' },
        h('span', {}, 'queue ', field('b', 'consumer-queued', '0'), ' / ', field('span', 'consumer-capacity', '0')),
        h('span', {}, 'mode ', field('b', 'mode', 'normal')),
      ),
      h('div', { class: 'modes', role: 'group', 'aria-label': 'consumer mode' }, ...modeButtons),
    ),
    h('dl', { class: 'counters' }, ...COUNTERS.map((name) => h('div', {}, h('dt', {}, name), field('dd', name, '0')))),
    h(
      'table',
      { class: 'subscriptions' },
      h('colgroup', {}, h('col', { class: 'name' })),
      h('thead', {}, h('tr', {}, ...['subscription', 'queued', 'capacity', 'delivered', 'dropped'].map((label) => h('th', {}, label)))),
      subscriptionBody,
    ),
    h(
      'table',
      { class: 'links' },
      h('colgroup', {}, h('col', { class: 'name' })),
      h('thead', {}, h('tr', {}, ...['link', 'queued', 'sent', 'received', 'dropped', 'peers'].map((label) => h('th', {}, label)))),
      linkBody,
    ),
    h('div', { class: 'peers' }, h('span', {}, 'peers ', field('b', 'peers', '0')), chips),
    h(
      'div',
      { class: 'actions' },
      action('Ask', () => actions.ask(id), `request('demo.ask.${id}'): its reply handler answers`),
      action(
        `Freeze ${FREEZE_MS / 1000} s`,
        () => actions.command(id, 'freeze'),
        'a bounded busy loop in its thread: it stops reporting, granting credit and answering',
      ),
      ...(kind === 'tab' ? [closeButton] : []),
    ),
  )

  const renderSubscriptions = createRows(subscriptionBody, 'data-pattern', ['queued', 'capacity', 'delivered', 'dropped'])
  const renderLinks = createRows(linkBody, 'data-link', ['queued', 'sent', 'received', 'dropped', 'peers'])
  let chipIds = ''

  return {
    root,
    update(status, names, rate, now) {
      const { stats } = status
      setText(get('title'), names.title(status))
      const age = now - status.time
      const silent = !isSelf && age > SILENT_AFTER_MS
      setText(get('health'), silent ? `silent ${Math.round(age / 1000)} s` : 'live')
      root.classList.toggle('silent', silent)

      const consumer = stats.subscriptions.find((subscription) => subscription.pattern === CONSUMER_PATTERN)
      const queued = consumer?.queued ?? 0
      const capacity = consumer?.capacity ?? 0
      setText(get('consumer-queued'), formatCount(queued))
      setText(get('consumer-capacity'), formatCount(capacity))
      setText(get('rate'), formatCount(Math.round(rate)))
      setText(get('mode'), status.mode)
      fill.style.width = `${capacity === 0 ? 0 : Math.min(100, (100 * queued) / capacity)}%`
      fill.classList.toggle('full', capacity > 0 && queued >= capacity)
      for (const button of modeButtons) button.setAttribute('aria-pressed', String(button.dataset.mode === status.mode))
      root.dataset.mode = status.mode

      for (const name of COUNTERS) setText(get(name), formatCount(stats[name]))
      renderSubscriptions(
        stats.subscriptions.map((subscription: SubscriptionStats) => ({
          key: subscription.pattern,
          label: subscription.durable === undefined ? subscription.pattern : `${subscription.pattern} (durable ${subscription.durable})`,
          values: {
            queued: formatCount(subscription.queued),
            capacity: formatCount(subscription.capacity),
            delivered: formatCount(subscription.delivered),
            dropped: formatCount(subscription.dropped),
          },
        })),
      )
      renderLinks(
        stats.transports.map((link: TransportStats, index) => ({
          key: String(index),
          label: status.links?.[index] ?? link.name,
          values: {
            queued: `${formatCount(link.queued)}/${formatCount(link.capacity)}`,
            sent: formatCount(link.sent),
            received: formatCount(link.received),
            dropped: formatCount(link.dropped),
            peers: formatCount(link.peers),
          },
        })),
      )

      setText(get('peers'), formatCount(status.peers.length))
      const nextChipIds = status.peers.map((peer) => `${peer}:${names.chip(peer)}`).join(' ')
      if (nextChipIds !== chipIds) {
        chipIds = nextChipIds
        chips.replaceChildren(
          ...status.peers.map((peer) =>
            h(
              'span',
              { class: 'chip', 'data-peer': peer, style: `--context: ${colorOf(peer)}`, title: names.kindOf(peer) ?? 'no status yet' },
              names.chip(peer),
            ),
          ),
        )
      }
      if (kind === 'tab') {
        closeButton.disabled = status.closable === false
        closeButton.title = status.closable === false ? CLOSE_REFUSED_TITLE : CLOSE_TITLE
      }
    },
  }
}

/**
 * The room of cards inside `container`.
 *
 * @example
 * const room = createRoom(document.getElementById('cards'), bus.id, { command, ask })
 * room.render({ self, others, rates, now: Date.now() })
 */
export function createRoom(container: HTMLElement, selfId: string, actions: CardActions): Room {
  const cards = new Map<string, Card>()
  let order = ''
  return {
    render({ self, others, rates, now }) {
      const statuses = orderContexts(selfId, [self, ...others.filter((status) => status.id !== selfId)])
      const names = namesFor(selfId, statuses)
      const ids = statuses.map((status) => status.id)
      for (const [id, card] of cards) {
        if (!ids.includes(id)) {
          card.root.remove()
          cards.delete(id)
        }
      }
      for (const status of statuses) {
        let card = cards.get(status.id)
        if (card === undefined) {
          card = createCard(status, selfId, actions)
          cards.set(status.id, card)
        }
        card.update(status, names, rates.get(status.id) ?? 0, now)
      }
      const nextOrder = ids.join(' ')
      if (nextOrder !== order) {
        order = nextOrder
        container.replaceChildren(...ids.map((id) => (cards.get(id) as Card).root))
      }
    },
  }
}
