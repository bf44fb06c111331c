/**
 * When a pod worker syncs its pod again after a sync that could not finish (an image not
 * installable yet, a failed init container, a volume not mountable, systemk's own failure), as
 * the kubelet's pod workers requeue a pod: after a back-off that doubles from the first delay to
 * the longest, or after a fixed delay where the wait is not the pod's fault.
 *
 * @module
 */
import type { Log } from "../log/mod.ts";

/** Retry delay after a D-Bus failure that was not the pod's fault (systemd re-executing). */
export const TRANSIENT_RETRY_MS = 1000;
/**
 * Retry delay while a claim cannot be mounted yet (not bound, say): claims cannot be watched
 * (the Node authorizer lets a node only get them), so they are read again this often, as the
 * kubelet's volume manager polls them while it waits to mount.
 */
export const CLAIM_RETRY_MS = 2000;

/** Options of {@link SyncRetry}. */
export interface SyncRetryOptions {
  /** First back-off delay (ms); default 10 s, the kubelet's. */
  baseMs?: number;
  /** Longest back-off delay (ms); default 5 min. */
  maxMs?: number;
  /** Queues the retried sync, `before` running first in the same step. */
  fire(before: () => Promise<void>): void;
  log: Log;
}

/** One pod's pending retry and its back-off; see the module doc. */
export class SyncRetry {
  readonly #o: SyncRetryOptions;
  #timer?: ReturnType<typeof setTimeout>;
  #delayMs: number;

  /** @param options the delays and where the retry goes. */
  constructor(options: SyncRetryOptions) {
    this.#o = options;
    this.#delayMs = this.baseMs;
  }

  /** The first back-off delay (ms). */
  get baseMs(): number {
    return this.#o.baseMs ?? 10_000;
  }

  /** Whether a retry is scheduled. */
  get pending(): boolean {
    return this.#timer !== undefined;
  }

  /**
   * Schedules the retry, replacing one already scheduled: after `fixedDelayMs`, else after the
   * back-off, which then doubles.
   */
  schedule(options: { before?: () => Promise<void>; fixedDelayMs?: number } = {}): void {
    clearTimeout(this.#timer);
    const delay = options.fixedDelayMs ?? this.#delayMs;
    if (options.fixedDelayMs === undefined) {
      this.#delayMs = Math.min(delay * 2, this.#o.maxMs ?? 300_000);
    }
    this.#o.log.debug(`retrying in ${delay} ms`);
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.#o.fire(options.before ?? (() => Promise.resolve()));
    }, delay);
  }

  /** Cancels the scheduled retry, if any. */
  cancel(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  /** The pod made progress (a container started): the back-off starts over. */
  reset(): void {
    this.#delayMs = this.baseMs;
  }
}
