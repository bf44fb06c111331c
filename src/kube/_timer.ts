/**
 * Timing helpers shared by the `src/kube` controllers.
 *
 * @module
 */

/**
 * Waits `ms` milliseconds, or less when `signal` aborts (then it resolves, never rejects, so
 * loops can check `signal.aborted` and end quietly).
 *
 * @param ms how long to wait.
 * @param signal ends the wait early.
 */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  if (signal?.aborted) return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      signal?.removeEventListener("abort", done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal?.addEventListener("abort", done, { once: true });
  });
}

/** An exponential backoff: see {@link backoffDelay}. */
export interface Backoff {
  /** The first delay, in ms. */
  baseMs: number;
  /** The largest delay, in ms. */
  maxMs: number;
}

/**
 * Exponential backoff: `baseMs * 2^attempt`, capped at `maxMs`.
 *
 * @param attempt 0 for the first retry.
 * @param backoff first and largest delay.
 * @example Usage
 * ```ts
 * import assert from "node:assert/strict";
 * assert.equal(backoffDelay(3, { baseMs: 100, maxMs: 1000 }), 800);
 * assert.equal(backoffDelay(10, { baseMs: 100, maxMs: 1000 }), 1000);
 * ```
 */
export function backoffDelay(attempt: number, backoff: Backoff): number {
  return Math.min(backoff.maxMs, backoff.baseMs * 2 ** Math.min(attempt, 30));
}

/** Options of {@link repeat}. */
export interface RepeatOptions {
  /** Pause between ticks. */
  intervalMs: number;
  /** Ends the loop. */
  signal: AbortSignal;
  /** What to do with a tick's error. */
  onError(err: unknown): void;
}

/**
 * Runs `tick` every `intervalMs` until `signal` aborts; errors are handed to `onError` and
 * do not end the loop. The interval counts from the end of one tick to the start of the next,
 * so a slow API server never piles up overlapping ticks.
 */
export async function repeat(tick: () => Promise<void>, options: RepeatOptions): Promise<void> {
  const { intervalMs, signal, onError } = options;
  while (!signal.aborted) {
    await sleep(intervalMs, signal);
    if (signal.aborted) return;
    try {
      await tick();
    } catch (err) {
      onError(err);
    }
  }
}
