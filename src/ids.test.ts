import fc from 'fast-check'
import { expect, test } from 'vitest'
import { createEventIds } from './ids.js'

// biome-ignore lint/suspicious/noTemplateCurlyInString: the title shows the id's template literally
test('ids are `${source}:${seq}` for every seq, in order or not', () => {
  const ids = createEventIds('src')
  for (let seq = 1; seq < 5000; seq++) expect(ids(seq)).toBe(`src:${seq}`)
  fc.assert(fc.property(fc.array(fc.nat(), { minLength: 1 }), (seqs) => seqs.every((seq) => ids(seq) === `src:${seq}`)))
})
