// Runs one benchmark case in this process and prints its result as JSON:
//   node --expose-gc bench/case.mjs '{"kind":"throughput","library":"mitt","subs":1,...}'
// run.mjs starts one process per case, so no case runs on JIT state or heap
// left behind by another (the order of cases cannot change their numbers).

import * as core from './core.mjs'

const kinds = { throughput: core.throughput, publishCost: core.publishCost, heap: core.heap, durableConsume: core.durableConsume }

const { kind, ...options } = JSON.parse(process.argv[2] ?? '{}')
const measure = kinds[kind]
if (measure === undefined) throw new Error(`unknown case kind ${kind}; expected one of ${Object.keys(kinds).join(', ')}`)
process.stdout.write(JSON.stringify(await measure(options)))
