// A real nats-server for the bridge's tests and bench: started on 127.0.0.1 with
// JetStream (a temporary store_dir) and WebSocket (no_tls), on free ports, and
// stopped by its pid. `kill()` is a `kill -9`; `start()` again brings the same
// server back (same ports, same store), as a restart after a crash would.
//
// Plain JavaScript with its types beside it (nats-server.d.mts): the bench runs
// in Node without a TypeScript loader.
import { spawn } from 'node:child_process'
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

/** Debian's package installs it in /usr/sbin, which a non-root PATH may lack. */
export function natsServerBinary() {
  const fromEnv = process.env.CROSSBUS_NATS_SERVER
  if (fromEnv) return fromEnv
  for (const candidate of ['/usr/sbin/nats-server', '/usr/bin/nats-server', '/usr/local/bin/nats-server']) if (existsSync(candidate)) return candidate
  return 'nats-server'
}

/** A port nothing listens on right now (the OS picks it). */
export function freePort() {
  return new Promise((resolve, reject) => {
    const server = createServer()
    server.unref()
    server.on('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address()
      server.close(() => resolve(port))
    })
  })
}

/** Every server this process started and has not stopped: killed if the process exits first. */
const running = new Set()
process.on('exit', () => {
  for (const child of running) {
    try {
      process.kill(child.pid, 'SIGKILL')
    } catch {}
  }
})

/**
 * Starts a nats-server and resolves once it says it is ready.
 * @param {{ maxPayload?: number, jetstream?: boolean }} [options]
 */
export async function startNatsServer(options = {}) {
  const port = await freePort()
  const wsPort = await freePort()
  const dir = mkdtempSync(join(tmpdir(), 'crossbus-nats-'))
  const storeDir = join(dir, 'jetstream')
  const config = join(dir, 'nats.conf')
  const lines = [
    `listen: "127.0.0.1:${port}"`,
    `websocket { listen: "127.0.0.1:${wsPort}", no_tls: true }`,
    options.jetstream === false ? '' : `jetstream { store_dir: "${storeDir}" }`,
    options.maxPayload === undefined ? '' : `max_payload: ${options.maxPayload}`,
  ]
  writeFileSync(config, `${lines.filter(Boolean).join('\n')}\n`)

  let child
  const server = {
    host: '127.0.0.1',
    port,
    wsPort,
    /** For nats-core's wsconnect (browsers, workerd, Node with a WebSocket). */
    wsUrl: `ws://127.0.0.1:${wsPort}`,
    /** For a TCP client. */
    url: `nats://127.0.0.1:${port}`,
    storeDir,
    get pid() {
      return child?.pid
    },
    get running() {
      return child !== undefined
    },
    /** Starts (or restarts) the process; resolves when it accepts clients. */
    start() {
      if (child !== undefined) return Promise.resolve()
      return new Promise((resolve, reject) => {
        const started = spawn(natsServerBinary(), ['-c', config], { stdio: ['ignore', 'ignore', 'pipe'] })
        child = started
        running.add(started)
        let log = ''
        const timer = setTimeout(() => fail(new Error(`nats-server did not get ready in 15 s:\n${log}`)), 15_000)
        const fail = (error) => {
          clearTimeout(timer)
          try {
            process.kill(started.pid, 'SIGKILL')
          } catch {}
          reject(error)
        }
        started.on('error', fail)
        started.stderr.setEncoding('utf8')
        started.stderr.on('data', (chunk) => {
          if (log.length < 20_000) log += chunk
          if (log.includes('Server is ready')) {
            clearTimeout(timer)
            resolve()
          }
        })
        started.on('exit', (code, signal) => {
          running.delete(started)
          if (child === started) child = undefined
          clearTimeout(timer)
          if (!log.includes('Server is ready')) reject(new Error(`nats-server exited (${signal ?? code}) before it was ready:\n${log}`))
        })
      })
    },
    /** `kill -9`: no goodbye to clients, JetStream recovers its store on the next start. Resolves once the process is gone. */
    kill() {
      return stopChild('SIGKILL')
    },
    /** Stops the process (SIGTERM, then SIGKILL after 5 s). */
    stop() {
      return stopChild('SIGTERM')
    },
    /** Stops the process and removes its store. */
    async dispose() {
      await stopChild('SIGKILL')
      rmSync(dir, { recursive: true, force: true })
    },
  }

  function stopChild(signal) {
    const current = child
    if (current === undefined) return Promise.resolve()
    return new Promise((resolve) => {
      const escalate = setTimeout(() => {
        try {
          process.kill(current.pid, 'SIGKILL')
        } catch {}
      }, 5000)
      current.once('exit', () => {
        clearTimeout(escalate)
        resolve()
      })
      try {
        process.kill(current.pid, signal)
      } catch {
        clearTimeout(escalate)
        resolve()
      }
    })
  }

  await server.start()
  return server
}
