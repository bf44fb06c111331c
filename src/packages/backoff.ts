/**
 * Installing an image reported the way the kubelet reports image pulls: the container's
 * waiting reason (`ContainerCreating` while installing, `ErrImagePull` right after a failure,
 * `ImagePullBackOff` while waiting to retry), retry delays of 10 s doubling to 5 min per image,
 * and the events to emit (`Pulling`, `Pulled`, `Failed`, `BackOff`). Pure: the caller passes
 * the time and emits the events.
 *
 * @module
 */

/** First retry delay after a failed install, as the kubelet's image backoff. */
export const PULL_BACKOFF_INITIAL_MS = 10_000;
/** Longest retry delay. */
export const PULL_BACKOFF_MAX_MS = 300_000;

/**
 * Delay before the next attempt after `failures` consecutive failures (≥ 1): 10 s, 20 s, 40 s,
 * … capped at 5 min.
 *
 * @example Usage
 * ```ts
 * import assert from "node:assert/strict";
 * assert.equal(pullBackoffDelay(1), 10_000);
 * assert.equal(pullBackoffDelay(10), 300_000);
 * ```
 */
export function pullBackoffDelay(failures: number): number {
  const doublings = Math.max(0, Math.min(failures - 1, 30));
  return Math.min(PULL_BACKOFF_INITIAL_MS * 2 ** doublings, PULL_BACKOFF_MAX_MS);
}

/** Waiting reasons of a container whose image is not there yet. */
export type PullWaitingReason = "ContainerCreating" | "ErrImagePull" | "ImagePullBackOff";

/** An event to record on the pod, as the kubelet would. */
export interface PullEvent {
  type: "Normal" | "Warning";
  reason: "Pulling" | "Pulled" | "Failed" | "BackOff";
  message: string;
}

/** What {@link ImagePullTracker.begin} decided. */
export type PullDecision =
  | { action: "pull"; event: PullEvent }
  | { action: "wait"; retryInMs: number; event: PullEvent };

/** Consecutive failures of one image and when the last one happened. */
interface Failures {
  count: number;
  lastAt: number;
}

/** Where one image stands. */
type PullState =
  | { phase: "pulling"; failures?: Failures }
  | {
    phase: "failed";
    failures: Failures;
    retryAt: number;
    message: string;
    /** Set once a sync has found the image in backoff: the reason then says so. */
    inBackOff: boolean;
  };

/** How an install ended, for the `Pulled` event's message. */
export interface PullOutcome {
  /** True when something was installed, false when it was already there. */
  installed: boolean;
  durationMs: number;
}

/** How an install failed, for the backoff and the `Failed` event's message. */
export interface PullFailure {
  /** When it failed (ms since the epoch): the backoff delay counts from there. */
  now: number;
  /** Why it failed: apt-get's or dpkg's error. */
  message: string;
}

/**
 * Per-image pull state across all pods of the node.
 *
 * @example Usage
 * ```ts
 * import assert from "node:assert/strict";
 * const t = new ImagePullTracker();
 * assert.equal(t.begin("nope", 0).action, "pull");
 * t.failed("nope", { now: 1_000, message: "E: Unable to locate package nope" });
 * assert.equal(t.waitingReason("nope"), "ErrImagePull");
 * assert.equal(t.begin("nope", 2_000).action, "wait");
 * assert.equal(t.waitingReason("nope"), "ImagePullBackOff");
 * ```
 */
export class ImagePullTracker {
  #states = new Map<string, PullState>();

  /**
   * A sync wants `image`: start installing (→ `Pulling`), or keep waiting while the image is
   * in backoff (→ `BackOff`).
   */
  begin(image: string, now: number): PullDecision {
    const state = this.#states.get(image);
    if (state?.phase === "failed" && now < state.retryAt) {
      state.inBackOff = true;
      return {
        action: "wait",
        retryInMs: state.retryAt - now,
        event: { type: "Normal", reason: "BackOff", message: `Back-off installing "${image}"` },
      };
    }
    this.#states.set(image, { phase: "pulling", failures: state?.failures });
    return {
      action: "pull",
      event: { type: "Normal", reason: "Pulling", message: `Installing "${image}"` },
    };
  }

  /** The install succeeded; later failures start again from the first delay. */
  succeeded(image: string, outcome: PullOutcome): PullEvent {
    this.#states.delete(image);
    const message = outcome.installed
      ? `Successfully installed "${image}" in ${(outcome.durationMs / 1000).toFixed(1)}s`
      : `"${image}" is already installed on the node`;
    return { type: "Normal", reason: "Pulled", message };
  }

  /**
   * The install failed with `message`; the next attempt waits for the backoff delay. A
   * failure long after the previous one (twice the longest delay) starts the delays over, as
   * the kubelet forgets old backoff entries.
   */
  failed(image: string, failure: PullFailure): PullEvent {
    const { now, message } = failure;
    const previous = this.#states.get(image)?.failures;
    const recent = previous !== undefined && now - previous.lastAt < 2 * PULL_BACKOFF_MAX_MS;
    const count = recent ? previous.count + 1 : 1;
    this.#states.set(image, {
      phase: "failed",
      failures: { count, lastAt: now },
      retryAt: now + pullBackoffDelay(count),
      message,
      inBackOff: false,
    });
    return {
      type: "Warning",
      reason: "Failed",
      message: `Failed to install "${image}": ${message}`,
    };
  }

  /** The reason a container using `image` waits with; undefined when nothing is pending. */
  waitingReason(image: string): PullWaitingReason | undefined {
    const state = this.#states.get(image);
    if (!state) return undefined;
    if (state.phase === "pulling") return "ContainerCreating";
    return state.inBackOff ? "ImagePullBackOff" : "ErrImagePull";
  }

  /** The last failure's message for the container status, while the image is failing. */
  lastError(image: string): string | undefined {
    const state = this.#states.get(image);
    return state?.phase === "failed" ? state.message : undefined;
  }
}
