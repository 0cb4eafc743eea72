/** A function that runs `run` at once, then at most once per `ms`: calls meanwhile fold into one run at the end. */
export interface Throttled {
  (): void
  /** Runs now what is pending (a call folded into the next run), if anything is. */
  flush(): void
  /** Forgets a pending run and stops the timer. */
  cancel(): void
}

/**
 * Throttles what a flood of frames would otherwise make a context repeat
 * (asking strangers, answering asks, asking peers again for retained state).
 * Its timer does not keep a Node process alive.
 *
 * @example
 * const ask = throttle(() => link.announce({ ask: true }), 100)
 * ask() // runs now; calls in the next 100 ms run once, then
 */
export function throttle(run: () => void, ms: number): Throttled {
  let timer: ReturnType<typeof setTimeout> | undefined
  let again = false
  const call = (() => {
    if (timer !== undefined) {
      again = true
      return
    }
    run()
    timer = setTimeout(() => {
      timer = undefined
      if (!again) return
      again = false
      call()
    }, ms)
    ;(timer as { unref?: () => void }).unref?.()
  }) as Throttled
  call.flush = () => {
    if (!again) return
    again = false
    run()
  }
  call.cancel = () => {
    clearTimeout(timer)
    timer = undefined
    again = false
  }
  return call
}
