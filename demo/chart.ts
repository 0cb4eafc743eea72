// A small time chart on a plain canvas: one line per context over a fixed
// window, each series a bounded list of points. No charting dependency.
import { formatCount } from './dom.ts'

export interface ChartOptions {
  /** Shown in the top-left corner: 'consumed events/s'. */
  readonly label: string
  /** Time span drawn, in ms. */
  readonly windowMs: number
  /** Points kept per series at most. */
  readonly maxPoints: number
  /** The lowest top of the y axis, so a quiet chart is not all noise. */
  readonly minTop: number
}

export interface Chart {
  /** Adds a point to a series (a context's id). */
  add(series: string, time: number, value: number): void
  /** Draws the series named in `colors` (series id → colour); forgets series that are gone and old. */
  draw(now: number, colors: ReadonlyMap<string, string>): void
}

interface Point {
  readonly time: number
  readonly value: number
}

/**
 * @example
 * const chart = createChart(canvas, { label: 'queue depth', windowMs: 60_000, maxPoints: 240, minTop: 10 })
 * chart.add(id, Date.now(), queued)
 * chart.draw(Date.now(), new Map([[id, 'red']]))
 */
export function createChart(canvas: HTMLCanvasElement, options: ChartOptions): Chart {
  const series = new Map<string, Point[]>()
  const context = canvas.getContext('2d')

  return {
    add(id, time, value) {
      let points = series.get(id)
      if (points === undefined) {
        points = []
        series.set(id, points)
      }
      points.push({ time, value })
      if (points.length > options.maxPoints) points.splice(0, points.length - options.maxPoints)
    },

    draw(now, colors) {
      const start = now - options.windowMs
      for (const [id, points] of series) {
        const last = points[points.length - 1]
        if (!colors.has(id) && (last === undefined || last.time < start)) series.delete(id)
      }
      if (context === null) return
      const ratio = globalThis.devicePixelRatio || 1
      const width = canvas.clientWidth
      const height = canvas.clientHeight
      if (width === 0 || height === 0) return
      if (canvas.width !== Math.round(width * ratio) || canvas.height !== Math.round(height * ratio)) {
        canvas.width = Math.round(width * ratio)
        canvas.height = Math.round(height * ratio)
      }
      context.setTransform(ratio, 0, 0, ratio, 0, 0)
      context.clearRect(0, 0, width, height)

      let top = options.minTop
      for (const [id, points] of series) {
        if (!colors.has(id)) continue
        for (const point of points) if (point.time >= start && point.value > top) top = point.value
      }
      top = niceCeiling(top)

      const pad = { left: 44, right: 8, top: 18, bottom: 16 }
      const plotWidth = width - pad.left - pad.right
      const plotHeight = height - pad.top - pad.bottom
      const x = (time: number): number => pad.left + ((time - start) / options.windowMs) * plotWidth
      const y = (value: number): number => pad.top + plotHeight - (value / top) * plotHeight

      context.font = '11px system-ui, sans-serif'
      context.fillStyle = '#555'
      context.strokeStyle = '#e3e3e3'
      context.lineWidth = 1
      context.textBaseline = 'middle'
      for (const fraction of [0, 0.5, 1]) {
        const value = top * fraction
        context.beginPath()
        context.moveTo(pad.left, Math.round(y(value)) + 0.5)
        context.lineTo(pad.left + plotWidth, Math.round(y(value)) + 0.5)
        context.stroke()
        context.textAlign = 'right'
        context.fillText(formatCount(Math.round(value)), pad.left - 6, y(value))
      }
      context.textAlign = 'left'
      context.textBaseline = 'alphabetic'
      context.fillStyle = '#222'
      context.fillText(options.label, pad.left, 12)
      context.fillStyle = '#777'
      context.textAlign = 'right'
      context.fillText(`last ${Math.round(options.windowMs / 1000)} s`, pad.left + plotWidth, height - 3)

      context.save()
      context.beginPath()
      context.rect(pad.left, pad.top - 2, plotWidth, plotHeight + 4)
      context.clip()
      context.lineWidth = 1.5
      for (const [id, color] of colors) {
        const points = series.get(id)
        if (points === undefined) continue
        context.strokeStyle = color
        context.beginPath()
        let started = false
        for (const point of points) {
          if (!started) context.moveTo(x(point.time), y(point.value))
          else context.lineTo(x(point.time), y(point.value))
          started = true
        }
        context.stroke()
      }
      context.restore()
    },
  }
}

/** 1, 2 or 5 times a power of ten, at least `value`. */
function niceCeiling(value: number): number {
  const power = 10 ** Math.floor(Math.log10(value))
  for (const step of [1, 2, 5, 10]) if (step * power >= value) return step * power
  return 10 * power
}
