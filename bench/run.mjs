// `npm run bench` (after the build): the in-process core part (run-core.mjs),
// the Chromium part (run-browser.mjs), the NATS part (run-nats.mjs: tab →
// nats-server → tab across two browser contexts) and the hostile-input part
// (run-hostile.mjs), each printing its tables and writing
// bench/results-<part>.json. See bench/README.md.
//
//   npm run bench                     # every part
//   npm run bench -- --only=core      # one part: core, browser, nats or hostile
//   npm run bench -- --only=browser --sections=1,3   # some of the browser sections (1-8)
//   npm run bench -- --only=nats --sections=9,11     # some of the NATS sections (9-11)
//   npm run bench -- --only=browser --profile   # also CPU-profile crossbus in Chromium
//   npm run bench -- --only=hostile --baseline=../other-checkout/dist   # floods, beside another build

const PARTS = ['core', 'browser', 'nats', 'hostile']

const args = process.argv.slice(2)
const only = args.find((arg) => arg.startsWith('--only='))?.slice('--only='.length)
if (only !== undefined && !PARTS.includes(only)) {
  console.error(`unknown part ${JSON.stringify(only)}: --only=${PARTS.join('|')}`)
  process.exit(2)
}
const sectionsArg = args.find((arg) => arg.startsWith('--sections='))
const sections = sectionsArg === undefined ? [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11] : sectionsArg.slice('--sections='.length).split(',').map(Number)
if (sections.some((section) => !Number.isInteger(section) || section < 1 || section > 11)) {
  console.error(`--sections takes section numbers 1-8 (browser) and 9-11 (nats), comma-separated; got ${sectionsArg}`)
  process.exit(2)
}
const baseline = args.find((arg) => arg.startsWith('--baseline='))?.slice('--baseline='.length)
const unknown = args.filter((arg) => !arg.startsWith('--only=') && !arg.startsWith('--sections=') && !arg.startsWith('--baseline=') && arg !== '--profile')
if (unknown.length > 0) {
  console.error(`unknown arguments: ${unknown.join(' ')} (expected --only=${PARTS.join('|')}, --sections=1,2,…, --baseline=<dist> and/or --profile)`)
  process.exit(2)
}

const started = performance.now()
if (only === undefined || only === 'core') {
  const { runCore } = await import('./run-core.mjs')
  await runCore()
  const seconds = (performance.now() - started) / 1000
  console.log(`core part: ${seconds.toFixed(0)} s\n`)
}
if (only === undefined || only === 'browser') {
  const browserStarted = performance.now()
  const { runBrowser } = await import('./run-browser.mjs')
  const browserSections = sections.filter((section) => section <= 8)
  if (browserSections.length > 0) await runBrowser({ profile: args.includes('--profile'), sections: browserSections })
  console.log(`browser part: ${((performance.now() - browserStarted) / 1000).toFixed(0)} s\n`)
}
if (only === undefined || only === 'nats') {
  const natsStarted = performance.now()
  const { natsServerBinary } = await import('../test/nats-server.mjs')
  const { spawnSync } = await import('node:child_process')
  const natsSections = sections.filter((section) => section >= 9)
  if (spawnSync(natsServerBinary(), ['--version']).status !== 0) {
    console.log('nats part skipped: no nats-server here (apt-get install nats-server, or set CROSSBUS_NATS_SERVER)')
  } else if (natsSections.length > 0) {
    const { runNats } = await import('./run-nats.mjs')
    await runNats({ sections: natsSections })
    console.log(`nats part: ${((performance.now() - natsStarted) / 1000).toFixed(0)} s`)
  }
}
if (only === undefined || only === 'hostile') {
  const hostileStarted = performance.now()
  const { runHostile } = await import('./run-hostile.mjs')
  await runHostile({ baseline })
  console.log(`hostile part: ${((performance.now() - hostileStarted) / 1000).toFixed(0)} s`)
}
