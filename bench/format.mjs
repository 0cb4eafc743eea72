// Printing helpers shared by the core and browser parts of `npm run bench`.

/** Events per second, short: 6.74 M/s, 435.8 k/s. */
export function rate(perSecond) {
  if (perSecond >= 1e6) return `${(perSecond / 1e6).toFixed(2)} M/s`
  if (perSecond >= 1e3) return `${(perSecond / 1e3).toFixed(1)} k/s`
  return `${perSecond.toFixed(0)} /s`
}

/** Prints rows under a header: first column left-aligned, the others right-aligned. */
export function table(header, rows) {
  const widths = header.map((title, column) => Math.max(title.length, ...rows.map((row) => String(row[column]).length)))
  const line = (cells) => cells.map((cell, column) => (column === 0 ? String(cell).padEnd(widths[column]) : String(cell).padStart(widths[column]))).join('   ')
  console.log(line(header))
  console.log(widths.map((width) => '-'.repeat(width)).join('   '))
  for (const row of rows) console.log(line(row))
}

export const verdict = (ok) => (ok ? 'ok' : 'MISSED')
