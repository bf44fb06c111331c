/**
 * A pod's restart manager: the crash-loop back-off of its app containers and sidecars (the kubelet's
 * `doBackOff`). It decides with {@link decideRestart} when a unit's run ended, holds the timer
 * of each pending restart, and tells the status side which containers wait in
 * `CrashLoopBackOff` and why. Starting the new run is the caller's (the pod worker's queue).
 *
 * @module
 */
import type { V1Container, V1Pod } from "@kubernetes/client-node";
import type { UnitProperties } from "../unit/properties.ts";
import {
  CRASH_LOOP_BASE_MS,
  type CrashLoop,
  decideRestart,
  type RestartDecision,
} from "./crash_loop.ts";

/** What the manager needs to judge a unit's run. */
export interface RunToJudge {
  props: UnitProperties;
  pod: V1Pod;
  /** The container's spec. */
  container: V1Container;
  kind: "app" | "sidecar";
  /** Starts the new run; `ended` is the InvocationID of the run it replaces. */
  restart(ended: string | undefined): void;
}

/** Crash-loop back-offs and pending restarts of one pod's units; see the module doc. */
export class RestartManager {
  readonly #baseMs: number;
  /** Per app unit name: its crash-loop back-off, kept across runs. */
  readonly #loops = new Map<string, CrashLoop>();
  /** Per app unit name: the pending restart of its ended run. */
  readonly #pending = new Map<string, ReturnType<typeof setTimeout>>();
  /** Units being stopped to be replaced: their end is not a crash. */
  readonly #replacing = new Set<string>();

  /** @param baseMs the first delay (ms); the kubelet's 10 s unless a test shortens it. */
  constructor(baseMs = CRASH_LOOP_BASE_MS) {
    this.#baseMs = baseMs;
  }

  /**
   * Schedules the restart of `unit` after its back-off when its run ended and its
   * restartPolicy wants one; each run is judged once.
   *
   * @return the decision (delay and message) when a restart was scheduled.
   */
  judge(unit: string, run: RunToJudge): RestartDecision | undefined {
    if (this.#replacing.has(unit)) return undefined;
    const loop = this.#loops.get(unit) ?? { nextDelayMs: this.#baseMs };
    this.#loops.set(unit, loop);
    const decision = decideRestart(loop, { ...run, baseMs: this.#baseMs });
    if (!decision) return undefined;
    const ended = loop.ended;
    clearTimeout(this.#pending.get(unit));
    this.#pending.set(
      unit,
      setTimeout(() => {
        this.#pending.delete(unit);
        run.restart(ended);
      }, decision.delayMs),
    );
    return decision;
  }

  /**
   * Stops `unit` to replace it with a new version: the run that `stop` ends is not a crash,
   * and a restart pending for an earlier run is dropped.
   *
   * @param stop stops the unit and resolves with the InvocationID of the run it ended.
   */
  async replace(unit: string, stop: () => Promise<string>): Promise<void> {
    this.#replacing.add(unit);
    try {
      const ended = await stop();
      this.cancel(unit);
      const loop = this.#loops.get(unit);
      if (loop) loop.ended = ended;
    } finally {
      this.#replacing.delete(unit);
    }
  }

  /** Per app unit with a restart pending: the CrashLoopBackOff message. */
  *waiting(): Iterable<[unit: string, message: string | undefined]> {
    for (const unit of this.#pending.keys()) yield [unit, this.#loops.get(unit)?.message];
  }

  /** Drops the pending restart of `unit`, if any. */
  cancel(unit: string): void {
    clearTimeout(this.#pending.get(unit));
    this.#pending.delete(unit);
  }

  /** Forgets `unit` (removed): its pending restart and back-off. */
  forget(unit: string): void {
    this.cancel(unit);
    this.#loops.delete(unit);
  }

  /** Drops every pending restart (the pod terminates, or systemk stops). */
  cancelAll(): void {
    this.#pending.forEach(clearTimeout);
    this.#pending.clear();
  }
}
