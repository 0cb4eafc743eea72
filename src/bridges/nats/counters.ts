/** The holder's counters: the numbers of `stats()` that the exporter and the importer add to. */
export interface Counters {
  exported: number
  imported: number
  dropped: number
  tooLarge: number
  rejected: number
  duplicates: number
  acknowledgedDuplicates: number
}

export function createCounters(): Counters {
  return { exported: 0, imported: 0, dropped: 0, tooLarge: 0, rejected: 0, duplicates: 0, acknowledgedDuplicates: 0 }
}
