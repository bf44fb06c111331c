/**
 * The kubelet's crash-loop back-off for app containers, as pure decisions: whether a unit's
 * ended run calls for a restart, how long to wait, and what to tell the user meanwhile.
 *
 * systemd 252 cannot grow its restart delay (no `RestartSteps=`), so app units are
 * `Restart=no` and the runtime restarts them after these delays: 10 s doubling to 5 min, back
 * to 10 s once a run lasted 10 min (the kubelet's `backOffPeriod`, `MaxContainerBackOff` and
 * reset after a stable run).
 *
 * @module
 */
import type { V1Container, V1Pod } from "@kubernetes/client-node";
import { observeUnit, podRef, restartPolicyOf, willRestart } from "../status/mod.ts";
import type { UnitProperties } from "../unit/properties.ts";

/** The kubelet's first crash-loop delay (ms). */
export const CRASH_LOOP_BASE_MS = 10_000;
/** The kubelet's longest crash-loop delay (ms). */
export const CRASH_LOOP_MAX_MS = 300_000;
/** A run at least this long (µs, as systemd's timestamps) resets the delay to its base. */
const STABLE_RUN_US = 600e6;

/** One container's back-off, kept across its runs. */
export interface CrashLoop {
  /** The delay before the next restart (ms). */
  nextDelayMs: number;
  /** InvocationID of the last ended run already handled: each run is restarted once. */
  ended?: string;
  /** The waiting message while a restart is pending. */
  message?: string;
}

/** A container's run, as {@link decideRestart} judges it. */
export interface EndedRun {
  /** The unit's current properties. */
  props: UnitProperties;
  pod: V1Pod;
  /** The container's spec. */
  container: V1Container;
  /** An app container or a sidecar: what restarts. */
  kind: "app" | "sidecar";
  /** The first delay (ms): the kubelet's 10 s unless a test shortens it. */
  baseMs: number;
}

/** What to do about a run that ended. */
export interface RestartDecision {
  delayMs: number;
  /** The kubelet's CrashLoopBackOff message, e.g. `back-off 20s restarting failed container=…`. */
  message: string;
}

/**
 * Decides whether the run `props` describes has ended and must be restarted, and updates
 * `loop` (the delay doubles; a long run resets it first).
 *
 * @param loop The container's back-off state; changed when a restart is decided.
 * @param run The unit's current properties, the pod, the app container's spec and the first
 *   delay.
 * @return The restart to schedule, or undefined (still running, already handled, or the
 *   restartPolicy says no).
 *
 * @example Usage
 * ```ts
 * import { decideRestart } from "./crash_loop.ts";
 * import assert from "node:assert/strict";
 * const loop = { nextDelayMs: 10_000 };
 * const props = { ActiveState: "failed", SubState: "failed", InvocationID: "a1",
 *   ExecMainCode: 1, ExecMainStatus: 1, ExecMainStartTimestamp: 1, ExecMainExitTimestamp: 2,
 *   LoadState: "loaded", Result: "exit-code" } as never;
 * const pod = { metadata: { name: "p", uid: "u" }, spec: { containers: [] } };
 * assert.equal(decideRestart(loop, { props, pod, container: { name: "c" }, kind: "app", baseMs: 10_000 })?.delayMs, 10_000);
 * assert.equal(loop.nextDelayMs, 20_000);
 * ```
 */
export function decideRestart(loop: CrashLoop, run: EndedRun): RestartDecision | undefined {
  const { props, pod, container, baseMs } = run;
  if (!hasEnded(props) || loop.ended === props.InvocationID) return undefined;
  const observation = observeUnit({ unitName: "", props });
  if (observation.kind !== "terminated") return undefined;
  loop.ended = props.InvocationID;
  const policy = restartPolicyOf(pod, run.kind);
  if (!willRestart(policy, observation.terminated.exitCode)) return undefined;
  if (props.ExecMainExitTimestamp - props.ExecMainStartTimestamp >= STABLE_RUN_US) {
    loop.nextDelayMs = baseMs;
  }
  const delayMs = loop.nextDelayMs;
  loop.nextDelayMs = Math.min(delayMs * 2, Math.max(CRASH_LOOP_MAX_MS, baseMs));
  loop.message = `back-off ${goDuration(delayMs)} restarting failed container=${container.name} ` +
    `pod=${podRef(pod)}`;
  return { delayMs, message: loop.message };
}

/**
 * A unit whose run is over: failed, stopped, or exited and kept active by
 * `RemainAfterExit=yes`. A starting unit may still show the previous run's exit status.
 */
export function hasEnded(props: UnitProperties): boolean {
  return props.ActiveState === "failed" || props.ActiveState === "inactive" ||
    (props.ActiveState === "active" && props.SubState === "exited");
}

/**
 * A duration as Go's `time.Duration.String` writes it, as the kubelet's messages do.
 *
 * @param ms Milliseconds.
 * @return E.g. `200ms`, `10s`, `2m40s`, `5m0s`.
 *
 * @example Usage
 * ```ts
 * import { goDuration } from "./crash_loop.ts";
 * import assert from "node:assert/strict";
 * assert.equal(goDuration(160_000), "2m40s");
 * ```
 */
export function goDuration(ms: number): string {
  if (ms < 1000) return `${ms}ms`;
  const hours = Math.floor(ms / 3_600_000);
  const minutes = Math.floor((ms % 3_600_000) / 60_000);
  const seconds = `${(ms % 60_000) / 1000}s`;
  if (hours > 0) return `${hours}h${minutes}m${seconds}`;
  return minutes > 0 ? `${minutes}m${seconds}` : seconds;
}
