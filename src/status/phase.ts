/**
 * The pod phase from its container statuses, as the kubelet's `getPhase` computes it.
 *
 * @module
 */
import type { V1ContainerStatus, V1Pod } from "@kubernetes/client-node";
import { isSidecar } from "../plan/containers.ts";

/** `Pending`, `Running`, `Succeeded` or `Failed`. */
export type PodPhase = "Pending" | "Running" | "Succeeded" | "Failed";

/**
 * Whether `phase` is terminal (`Succeeded` or `Failed`): a pod in it never runs again.
 *
 * @example Usage
 * ```ts
 * import { isTerminalPhase } from "./phase.ts";
 * import assert from "node:assert/strict";
 * assert.equal(isTerminalPhase("Failed"), true);
 * assert.equal(isTerminalPhase("Running"), false);
 * ```
 */
export function isTerminalPhase(phase: string | undefined): phase is "Succeeded" | "Failed" {
  return phase === "Succeeded" || phase === "Failed";
}

/** Options of {@link podPhase}. */
export interface PodPhaseOptions {
  /**
   * The agent has stopped the pod for good (the kubelet's `podIsTerminal`): stopped containers
   * will not be restarted, whatever the restart policy.
   */
  podIsTerminal: boolean;
}

/**
 * Computes the phase of a pod.
 *
 * - An init container that failed (terminated, or waiting after a failed run) with
 *   `restartPolicy: Never` → Failed.
 * - Init containers still to finish (and no app container has ever run), or an app container
 *   waiting with no run behind it → Pending.
 * - Some container running and every app container known → Running.
 * - All app containers stopped: with `podIsTerminal`, Succeeded if all exited 0 else Failed;
 *   otherwise Running under `Always` (they are restarting), Succeeded if all exited 0,
 *   Failed under `Never`, Running under `OnFailure` (the failed ones are restarting).
 *
 * @param pod The pod (its spec).
 * @param statuses Init and app container statuses together.
 * @param options Whether the agent has stopped the pod for good.
 * @return The phase.
 *
 * @example Usage
 * ```ts
 * import { podPhase } from "./phase.ts";
 * import assert from "node:assert/strict";
 * const pod = { spec: { restartPolicy: "Never", containers: [{ name: "a" }] } };
 * const done = { name: "a", image: "", imageID: "", ready: false, restartCount: 0,
 *   state: { terminated: { exitCode: 0 } } };
 * assert.equal(podPhase(pod, [done], { podIsTerminal: false }), "Succeeded");
 * ```
 */
export function podPhase(
  pod: V1Pod,
  statuses: readonly V1ContainerStatus[],
  options: PodPhaseOptions,
): PodPhase {
  const { podIsTerminal } = options;
  const spec = pod.spec;
  const byName = new Map(statuses.map((status) => [status.name, status]));
  let pendingInitialization = 0;
  let failedInitialization = 0;
  let unknown = 0;
  let running = 0;
  let waiting = 0;
  let stopped = 0;
  let succeeded = 0;

  for (const container of spec?.initContainers ?? []) {
    const status = byName.get(container.name);
    const state = status?.state;
    if (isSidecar(container)) {
      if (!state) {
        pendingInitialization++;
        unknown++;
      } else if (state.running) {
        if (!status.started) pendingInitialization++;
        running++;
      } else if (state.waiting && !status.lastState?.terminated) {
        pendingInitialization++;
        waiting++;
      }
      // A terminated sidecar is restarted by the agent: it counts for nothing.
      continue;
    }
    if (state?.terminated) {
      if (state.terminated.exitCode !== 0) failedInitialization++;
    } else if (state?.waiting && status!.lastState?.terminated) {
      if (status!.lastState.terminated.exitCode !== 0) failedInitialization++;
    } else {
      pendingInitialization++;
    }
  }

  for (const container of spec?.containers ?? []) {
    const status = byName.get(container.name);
    const state = status?.state;
    if (state?.running) {
      running++;
    } else if (state?.terminated) {
      stopped++;
      if (state.terminated.exitCode === 0) succeeded++;
    } else if (state?.waiting) {
      if (status!.lastState?.terminated) stopped++;
      else waiting++;
    } else {
      unknown++;
    }
  }

  const restartPolicy = spec?.restartPolicy ?? "Always";
  if (failedInitialization > 0 && restartPolicy === "Never") return "Failed";
  if ((pendingInitialization > 0 && !hasAnyAppContainerStarted(pod, statuses)) || waiting > 0) {
    return "Pending";
  }
  if (running > 0 && unknown === 0) return "Running";
  if (running === 0 && stopped > 0 && unknown === 0) {
    if (podIsTerminal) return stopped === succeeded ? "Succeeded" : "Failed";
    if (restartPolicy === "Always") return "Running";
    if (stopped === succeeded) return "Succeeded";
    if (restartPolicy === "Never") return "Failed";
    return "Running";
  }
  return "Pending";
}

/**
 * Whether any app container has run (running, terminated, or with a previous run): the pod
 * has been initialized, even if a sidecar restarts now.
 *
 * @param pod The pod (its spec).
 * @param statuses Init and app container statuses together.
 * @return True once an app container has started at least once.
 *
 * @example Usage
 * ```ts
 * import { hasAnyAppContainerStarted } from "./phase.ts";
 * import assert from "node:assert/strict";
 * const pod = { spec: { containers: [{ name: "a" }] } };
 * assert.equal(hasAnyAppContainerStarted(pod, []), false);
 * ```
 */
export function hasAnyAppContainerStarted(
  pod: V1Pod,
  statuses: readonly V1ContainerStatus[],
): boolean {
  const appNames = new Set((pod.spec?.containers ?? []).map((container) => container.name));
  return statuses.some((status) =>
    appNames.has(status.name) &&
    Boolean(
      status.state?.running || status.state?.terminated || status.lastState?.running ||
        status.lastState?.terminated,
    )
  );
}
