/**
 * `activeDeadlineSeconds`, as the kubelet's active deadline handler: once a pod has been active
 * on the node that long, counted from `status.startTime`, its containers are killed and it ends
 * Failed with reason `DeadlineExceeded`. Counting from the status (not from a timer set when
 * systemk saw the pod) keeps the deadline across restarts of systemk.
 *
 * @module
 */
import type { V1Pod, V1PodStatus } from "@kubernetes/client-node";
import { isTerminalPhase, type PodFailure } from "../status/mod.ts";

/** The kubelet's reason and message for a pod past its active deadline. */
export const DEADLINE_EXCEEDED: PodFailure = {
  reason: "DeadlineExceeded",
  message: "Pod was active on the node longer than the specified deadline",
};

/** When {@link activeDeadlineRemainingMs} looks at a pod. */
export interface ActiveDeadlineOptions {
  /** The pod's latest status (`startTime`, `phase`, `reason`); undefined before it has one. */
  status: V1PodStatus | undefined;
  /** The current time (ms since the epoch). */
  now: number;
}

/**
 * How long until the pod's active deadline passes.
 *
 * @param pod The pod (`spec.activeDeadlineSeconds`).
 * @param options Its latest status and the current time.
 * @return Milliseconds left; 0 or less once passed (also for a pod already ended by its
 *   deadline, so its containers stay stopped); undefined without a deadline, before the pod
 *   has a `startTime`, or once it ended otherwise (a terminal phase never changes).
 *
 * @example Usage
 * ```ts
 * import { activeDeadlineRemainingMs } from "./deadline.ts";
 * import assert from "node:assert/strict";
 * const pod = { spec: { activeDeadlineSeconds: 5, containers: [] } };
 * const status = { phase: "Running", startTime: new Date(10_000) };
 * assert.equal(activeDeadlineRemainingMs(pod, { status, now: 12_000 }), 3000);
 * ```
 */
export function activeDeadlineRemainingMs(
  pod: V1Pod,
  options: ActiveDeadlineOptions,
): number | undefined {
  const { status, now } = options;
  const seconds = pod.spec?.activeDeadlineSeconds;
  if (seconds === undefined || seconds === null) return undefined;
  if (isTerminalPhase(status?.phase)) {
    return status.reason === DEADLINE_EXCEEDED.reason ? 0 : undefined;
  }
  if (!status?.startTime) return undefined;
  // From the API, `startTime` may arrive as a string rather than a Date.
  return new Date(status.startTime).getTime() + seconds * 1000 - now;
}

/** Wakes a pod worker when its pod's active deadline passes. */
export class ActiveDeadlineTimer {
  readonly #wake: () => void;
  #timer?: ReturnType<typeof setTimeout>;

  /** @param wake called once the deadline armed by {@link passed} passes. */
  constructor(wake: () => void) {
    this.#wake = wake;
  }

  /**
   * Whether the pod's active deadline has passed (see {@link activeDeadlineRemainingMs}); if
   * not, and `arm` says so, wakes the worker when it does. Replaces the wake-up armed before.
   */
  passed(pod: V1Pod, options: { status: V1PodStatus | undefined; arm: boolean }): boolean {
    this.cancel();
    const remaining = activeDeadlineRemainingMs(pod, { status: options.status, now: Date.now() });
    if (remaining === undefined) return false;
    if (remaining <= 0) return true;
    if (options.arm) {
      this.#timer = setTimeout(() => {
        this.#timer = undefined;
        this.#wake();
      }, remaining);
    }
    return false;
  }

  /** Cancels the wake-up. */
  cancel(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
  }
}
