/**
 * The order and grace periods of a graceful node shutdown, as the kubelet's node shutdown
 * manager computes them from `--shutdown-grace-period` and
 * `--shutdown-grace-period-critical-pods`: regular pods first, within the shutdown grace period
 * less the critical pods' share; critical pods (priority at least `system-cluster-critical`'s)
 * last, within their share. Each pod gets its group's period, or its own
 * `terminationGracePeriodSeconds` when that is shorter. And what such a pod ends with. Pure.
 *
 * @module
 */
import type { V1Pod, V1PodCondition } from "@kubernetes/client-node";
import { type PodFailure, TERMINATION_BY_KUBELET } from "../status/mod.ts";

/** The priority of `system-cluster-critical` (`system-node-critical` is 1000 higher). */
export const SYSTEM_CRITICAL_PRIORITY = 2_000_000_000;

/** Priorities of the built-in classes, for pods the Priority admission plugin never saw. */
const CRITICAL_CLASSES: Record<string, number> = {
  "system-cluster-critical": SYSTEM_CRITICAL_PRIORITY,
  "system-node-critical": SYSTEM_CRITICAL_PRIORITY + 1000,
};

/** The kubelet's status of a pod it ended for a node shutdown. */
export const NODE_SHUTDOWN: PodFailure = {
  reason: "Terminated",
  message: "Pod was terminated in response to imminent node shutdown.",
};

/** The kubelet's rejection of a pod that arrives while the node shuts down. */
export const NODE_SHUTDOWN_REJECTION: PodFailure = {
  reason: "NodeShutdown",
  message: "Pod was rejected as the node is shutting down.",
};

/** The kubelet's `DisruptionTarget` condition on a pod it ended for a node shutdown. */
export const NODE_SHUTDOWN_CONDITION: V1PodCondition = {
  type: "DisruptionTarget",
  status: "True",
  reason: TERMINATION_BY_KUBELET,
  message: NODE_SHUTDOWN.message,
};

/** The flags' two periods, in seconds. */
export interface ShutdownGracePeriods {
  /** `--shutdown-grace-period`: the whole time the node's pods get; 0 turns it all off. */
  gracePeriodSeconds: number;
  /** `--shutdown-grace-period-critical-pods`: the critical pods' share of it. */
  criticalPodsSeconds: number;
}

/** Pods stopped together, and how long they get. */
export interface ShutdownGroup {
  /** The lowest priority in the group. */
  priority: number;
  /** How long the group gets before the next one starts. */
  graceSeconds: number;
  pods: V1Pod[];
}

/**
 * A pod's priority: `spec.priority` (set by the Priority admission plugin), else that of its
 * critical class (a static pod skips admission), else 0.
 *
 * @param pod the pod.
 * @return Its priority.
 */
export function podPriority(pod: V1Pod): number {
  return pod.spec?.priority ?? CRITICAL_CLASSES[pod.spec?.priorityClassName ?? ""] ?? 0;
}

/**
 * The pods' shutdown groups in the order they are stopped: regular pods, then critical pods.
 * A group without pods is left out (nothing waits for it).
 *
 * @param pods the node's active pods.
 * @param periods the flags' periods (`criticalPodsSeconds` at most `gracePeriodSeconds`).
 * @return The groups, lowest priority first.
 *
 * @example Usage
 * ```ts
 * import { shutdownGroups } from "./shutdown_groups.ts";
 * import assert from "node:assert/strict";
 * const pod = (priority: number) => ({ spec: { priority, containers: [] } });
 * const groups = shutdownGroups([pod(2_000_001_000), pod(0)], {
 *   gracePeriodSeconds: 30, criticalPodsSeconds: 10,
 * });
 * assert.deepEqual(groups.map((g) => [g.graceSeconds, g.pods.length]), [[20, 1], [10, 1]]);
 * ```
 */
export function shutdownGroups(
  pods: readonly V1Pod[],
  periods: ShutdownGracePeriods,
): ShutdownGroup[] {
  const { gracePeriodSeconds, criticalPodsSeconds } = periods;
  const groups: ShutdownGroup[] = [
    { priority: 0, graceSeconds: gracePeriodSeconds - criticalPodsSeconds, pods: [] },
    { priority: SYSTEM_CRITICAL_PRIORITY, graceSeconds: criticalPodsSeconds, pods: [] },
  ];
  for (const pod of pods) {
    // Below the lowest group counts as the lowest, as in the kubelet.
    const group = groups.findLast((g) => g.priority <= podPriority(pod)) ?? groups[0];
    group.pods.push(pod);
  }
  return groups.filter((g) => g.pods.length > 0);
}

/**
 * How long a pod of `group` gets: the group's period, or the pod's own
 * `terminationGracePeriodSeconds` when shorter.
 *
 * @param pod the pod.
 * @param group its shutdown group.
 * @return Its grace period in seconds.
 */
export function podShutdownGraceSeconds(pod: V1Pod, group: ShutdownGroup): number {
  const own = pod.spec?.terminationGracePeriodSeconds;
  return own !== undefined && own !== null && own <= group.graceSeconds ? own : group.graceSeconds;
}
