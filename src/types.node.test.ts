// What an editor shows for a typed bus (issue 12): topics autocomplete in
// subscribe, once, stream, process and reply as they do in publish, and a
// misspelt topic's error names the topics that would have matched. Checked
// with TypeScript's own language service over a file that uses the bus.
import { readFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import ts from 'typescript'
import { describe, expect, test } from 'vitest'

const src = dirname(fileURLToPath(import.meta.url))
const probe = join(src, '__editor_probe__.ts')

const source = `import { createBus } from './index.js'
type Events = { 'cart.updated': { items: number }; 'cart.cleared': null; 'user.login': string }
type Requests = { 'math.double': { data: number; reply: number } }
const bus = createBus<Events, Requests>()
bus.publish('/*publish*/', null as never)
bus.subscribe('/*subscribe*/', () => {})
void bus.once('/*once*/')
void bus.stream('/*stream*/')
bus.process('/*process*/', () => {})
bus.reply('/*reply*/', () => 2)
bus.subscribe('cart.updtaed', () => {})
`

function languageService(): ts.LanguageService {
  const config = ts.parseJsonConfigFileContent(ts.readConfigFile(join(src, '..', 'tsconfig.json'), ts.sys.readFile).config, ts.sys, join(src, '..'))
  const host: ts.LanguageServiceHost = {
    getCompilationSettings: () => config.options,
    getScriptFileNames: () => [probe],
    getScriptVersion: () => '1',
    getScriptSnapshot: (file) => {
      const text = file === probe ? source : ts.sys.fileExists(file) ? readFileSync(file, 'utf8') : undefined
      return text === undefined ? undefined : ts.ScriptSnapshot.fromString(text)
    },
    getCurrentDirectory: () => join(src, '..'),
    getDefaultLibFileName: (options) => ts.getDefaultLibFilePath(options),
    fileExists: (file) => file === probe || ts.sys.fileExists(file),
    readFile: (file) => (file === probe ? source : ts.sys.readFile(file)),
  }
  return ts.createLanguageService(host)
}

const service = languageService()

/** The string completions offered inside the quotes marked `/*marker*\/`. */
function completionsAt(marker: string): string[] {
  const position = source.indexOf(`'/*${marker}*/'`) + 1
  const completions = service.getCompletionsAtPosition(probe, position, {})
  return (completions?.entries ?? []).map((entry) => entry.name)
}

describe('a typed bus in an editor', () => {
  test.each(['subscribe', 'once', 'stream', 'process'])('%s completes the topics, as publish does', (method) => {
    expect(completionsAt('publish')).toEqual(expect.arrayContaining(['cart.updated', 'cart.cleared', 'user.login']))
    expect(completionsAt(method)).toEqual(expect.arrayContaining(['cart.updated', 'cart.cleared', 'user.login', 'cart.*']))
  })

  test('reply completes the request topics', () => {
    expect(completionsAt('reply')).toEqual(expect.arrayContaining(['math.double', 'math.*']))
  })

  test('a misspelt topic is an error that names the topics that would have matched', () => {
    const errors = service.getSemanticDiagnostics(probe).map((diagnostic) => ts.flattenDiagnosticMessageText(diagnostic.messageText, '\n'))
    const misspelt = errors.filter((message) => message.includes('cart.updtaed'))
    expect(misspelt).toHaveLength(1)
    expect(misspelt[0]).toContain('"cart.updated"')
    expect(misspelt[0]).not.toContain("'never'")
  })
})
