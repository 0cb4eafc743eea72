import { BUSY, IDLE, type DrainState } from './dispatcher.js'
import { isDurable, REPLY_TO, withChanges } from './envelope.js'
import { CrossbusError, errorMessage, quote } from './errors.js'
import { callback, duration, positiveInteger } from './options.js'
import { abortError, backoffDelay, type ResolvedRetry, resolveRetry, sleep, whenOnline } from './retry.js'
import { isThenable, Subscriber, type SubscriberHost, type SubscriberOptions, SubscriptionContext } from './subscriber.js'
import { matchTokens, parsePattern, parseTopic } from './topic.js'
import type { BusEvent, ProcessContext, ProcessOptions } from './types.js'

export interface ProcessorSettings {
  concurrency: number
  timeout: number | undefined
  retry: ResolvedRetry
  deadLetter: string | ((event: BusEvent, error: unknown) => void) | undefined
}

export type ProcessHandler = (event: BusEvent, context: ProcessContext) => unknown

/** An attempt's context: its signal (made on first use) and its number. */
class AttemptContext extends SubscriptionContext implements ProcessContext {
  readonly attempt: number

  constructor(attempt: number) {
    super()
    this.attempt = attempt
  }
}

/** What an attempt resolves with when its handler succeeded (anything else is the failure). */
const SUCCEEDED: unique symbol = Symbol('succeeded')

/** A processor's options, checked (TypeError, or INVALID_TOPIC for a dead-letter topic its own pattern matches). */
export function processorSettings(pattern: string, options: ProcessOptions): ProcessorSettings {
  const { deadLetter } = options
  if (typeof deadLetter === 'string') {
    if (matchTokens(parsePattern(pattern), parseTopic(deadLetter))) {
      throw new CrossbusError(
        'INVALID_TOPIC',
        `deadLetter ${quote(deadLetter)} matches the processor's own pattern ${quote(pattern)}: its dead letters would come back to it`,
      )
    }
  } else if (deadLetter !== undefined) callback('deadLetter', deadLetter)
  return {
    concurrency: positiveInteger('concurrency', options.concurrency, 1),
    timeout: duration('timeout', options.timeout),
    retry: resolveRetry(options.retry),
    deadLetter,
  }
}

/**
 * `process`: runs up to `concurrency` events at once, each attempt with its own
 * AbortSignal (processor stopped, bus closed, attempt timed out), retries with
 * exponential backoff on abortable timers, and dead-letters after the last attempt.
 */
export class ProcessorSubscriber extends Subscriber {
  readonly #handler: ProcessHandler
  readonly #settings: ProcessorSettings
  /** Aborts when this processor stops: unsubscribed, its signal aborted, or the bus closed. */
  readonly #stop = new AbortController()
  /**
   * The running attempts, aborted with the processor: one listener per attempt on the stop signal
   * would pass Node's limit of 10 per EventTarget (a MaxListenersExceededWarning) at concurrency > 10.
   */
  readonly #attempts = new Set<(reason: unknown) => void>()
  #running = 0

  constructor(host: SubscriberHost, options: SubscriberOptions, handler: ProcessHandler, settings: ProcessorSettings) {
    super(host, options)
    this.#handler = handler
    this.#settings = settings
  }

  protected override get running(): number {
    return this.#running
  }

  protected override onStop(reason: unknown): void {
    this.#stop.abort(reason)
    for (const abort of this.#attempts) abort(reason)
  }

  drain(): DrainState {
    const queue = this.queue
    while (this.active && this.#running < this.#settings.concurrency) {
      const event = queue.shift()
      if (event === undefined) break
      this.#running++
      this.host.dispatcher.started()
      void this.#run(event).then(() => {
        this.#running--
        if (this.active && queue.size > 0 && !this.scheduled) this.host.dispatcher.schedule(this)
        this.host.dispatcher.settled()
      })
    }
    return this.#running > 0 ? BUSY : IDLE
  }

  async #run(event: BusEvent): Promise<void> {
    const { retry } = this.#settings
    const stop = this.#stop.signal
    for (let attempt = 1; ; attempt++) {
      if (stop.aborted) return
      if (attempt > 1) this.host.counters.retried++
      const error = await this.#attempt(event, attempt)
      // Counted and acked by the attempt itself, as the handler settled.
      if (error === SUCCEEDED) return
      if (stop.aborted) {
        // Stopped mid-attempt: the event is neither retried nor dead-lettered.
        this.failed++
        this.host.counters.failed++
        return
      }
      this.recordFailure(event, error)
      if (attempt >= retry.attempts) {
        this.#deadLetter(event, error, attempt)
        return
      }
      const delay = backoffDelay(retry, attempt)
      this.notify(
        'retry',
        event,
        `attempt ${attempt + 1}/${retry.attempts === Number.POSITIVE_INFINITY ? '∞' : retry.attempts} of ${event.id} in ${Math.round(delay)} ms`,
        error,
      )
      try {
        await sleep(delay, stop)
        // Offline (the browser says so): the next attempt waits for the network instead of burning an attempt.
        await whenOnline(stop)
      } catch {
        return
      }
    }
  }

  /**
   * One attempt: resolves with SUCCEEDED once the handler has, or with its failure, or as soon as the
   * attempt is aborted (processor stopped, bus closed, timed out). A success is counted and acked in the
   * very reaction to the handler's settling, and an abort concludes one microtask after it comes, so a
   * handler that had already finished when close() or unsubscribe() came (its reaction already queued)
   * still counts as done: its ack is not lost. The attempt's signal is made only if the handler asks for it.
   */
  #attempt(event: BusEvent, attempt: number): Promise<unknown> {
    const context = new AttemptContext(attempt)
    const { timeout } = this.#settings
    return new Promise<unknown>((resolve) => {
      let settled = false
      let timer: ReturnType<typeof setTimeout> | undefined
      const finish = (): boolean => {
        if (settled) return false
        settled = true
        if (timer !== undefined) clearTimeout(timer)
        this.#attempts.delete(abort)
        return true
      }
      const succeeded = (): void => {
        if (!finish()) return
        this.recordDelivery()
        this.afterHandled?.(event)
        resolve(SUCCEEDED)
      }
      const failed = (error: unknown): void => {
        if (!finish()) return
        const ended = context.ended
        resolve(ended === undefined ? error : abortError(ended.reason))
      }
      const abort = (reason: unknown): void => {
        if (settled || context.ended !== undefined) return
        context.end(reason)
        queueMicrotask(() => failed(reason))
      }
      const stop = this.#stop.signal
      if (stop.aborted) abort(stop.reason)
      else this.#attempts.add(abort)
      if (timeout !== undefined) {
        timer = setTimeout(() => {
          abort(new CrossbusError('TIMEOUT', `${quote(this.pattern)}: attempt ${attempt} timed out after ${timeout} ms`))
        }, timeout)
      }
      // A retried event is a redelivery.
      const seen = attempt > 1 && !event.redelivered ? withChanges(event, event.data, true) : event
      queueMicrotask(() => {
        if (settled) return
        let result: unknown
        try {
          result = this.#handler(this.view(seen), context)
          if (isThenable(result)) result.then(succeeded, failed)
          else succeeded()
        } catch (error) {
          failed(error)
        }
      })
    })
  }

  /**
   * After the last attempt. A durable event is acked only once its dead letter is durably stored (the
   * receipt's `persisted`), or its deadLetter callback returned, or, with no deadLetter, the
   * dead-letter diagnostic was reported; a failed append or a throwing callback leaves it in the log,
   * and it comes again.
   */
  #deadLetter(event: BusEvent, error: unknown, attempts: number): void {
    const { deadLetter } = this.#settings
    this.host.counters.deadLettered++
    if (typeof deadLetter === 'string') {
      // Not the request's reply-to: a reply() on the dead-letter topic must not answer the original asker.
      const { [REPLY_TO]: _replyTo, ...headers } = event.headers
      // A durable event's dead letter is durable too: it leaves the log only once someone has it.
      const durable = isDurable(event)
      const receipt = this.host.publishInternal(
        deadLetter,
        event.data,
        Object.freeze({
          ...headers,
          'x-crossbus-topic': event.topic,
          'x-crossbus-error': errorMessage(error),
          'x-crossbus-attempts': String(attempts),
        }),
        durable,
      )
      this.afterHandled?.(event, durable ? receipt.persisted : undefined)
      return
    }
    if (typeof deadLetter === 'function') {
      try {
        deadLetter(event, error)
      } catch (callbackError) {
        const again = this.afterHandled !== undefined && isDurable(event) ? ' It stays in the durable log and comes again.' : ''
        this.notify('handler-error', event, `deadLetter threw: ${errorMessage(callbackError)}.${again}`, callbackError)
        this.afterHandled?.(event, Promise.reject(callbackError))
        return
      }
      this.afterHandled?.(event)
      return
    }
    this.notify('dead-letter', event, `gave up on ${event.id} after ${attempts} attempt(s): ${errorMessage(error)}. Set deadLetter to keep such events.`, error)
    this.afterHandled?.(event)
  }
}
