/**
 * Pod conditions the kubelet owns, generated like pkg/kubelet/status/generate.go, with
 * transition times kept like the kubelet's status manager.
 *
 * @module
 */
import type { V1ContainerStatus, V1Pod, V1PodCondition } from "@kubernetes/client-node";
import { isSidecar } from "../plan/containers.ts";
import { hasAnyAppContainerStarted, isTerminalPhase, type PodPhase } from "./phase.ts";

/** Condition types the kubelet (hence systemk) sets; all others belong to someone else. */
export const KUBELET_CONDITION_TYPES: readonly string[] = [
  "PodReadyToStartContainers",
  "Initialized",
  "Ready",
  "ContainersReady",
  "PodScheduled",
  "PodResizePending",
  "PodResizeInProgress",
];

/** What `podConditions` needs. */
export interface PodConditionsOptions {
  /** Init and app container statuses together. */
  statuses: readonly V1ContainerStatus[];
  phase: PodPhase;
  /** See `PodStatusOptions.sandboxReady`. */
  sandboxReady: boolean;
  /** Conditions of the previous status: transition times, and others' conditions. */
  previous: readonly V1PodCondition[];
  /**
   * The conditions as the API shows them now, when known: others' conditions (readiness
   * gates, `DisruptionTarget`) are theirs to change, so they are taken from here rather than
   * from `previous`.
   */
  observed?: readonly V1PodCondition[];
  /**
   * Conditions systemk sets beyond the kubelet's five (a `DisruptionTarget` when it ends the
   * pod for a node shutdown): each replaces the observed one of its type.
   */
  set?: readonly V1PodCondition[];
  now: Date;
  /**
   * The in-place resize conditions (`PodResizePending`, `PodResizeInProgress`) as the pod's
   * worker keeps them, each with its own times and `observedGeneration`.
   */
  resize?: readonly V1PodCondition[];
}

/** The kubelet's reason on the `DisruptionTarget` condition of a pod it ends itself. */
export const TERMINATION_BY_KUBELET = "TerminationByKubelet";

/**
 * Whether systemk writes `condition`: one of the kubelet's five types, or the
 * `DisruptionTarget` it sets when it ends a pod itself (reason `TerminationByKubelet`; the
 * same type set by others, such as the taint manager, stays theirs).
 *
 * @param condition a pod condition (its `type` and `reason`).
 * @return True when systemk owns it.
 *
 * @example Usage
 * ```ts
 * import { isKubeletCondition } from "./conditions.ts";
 * import assert from "node:assert/strict";
 * assert.equal(isKubeletCondition({ type: "DisruptionTarget", reason: "TerminationByKubelet" }), true);
 * assert.equal(isKubeletCondition({ type: "DisruptionTarget", reason: "DeletionByTaintManager" }), false);
 * ```
 */
export function isKubeletCondition(condition: { type?: string; reason?: string }): boolean {
  return KUBELET_CONDITION_TYPES.includes(condition.type ?? "") ||
    (condition.type === "DisruptionTarget" && condition.reason === TERMINATION_BY_KUBELET);
}

/**
 * The pod's conditions: the ones systemk does not own (readiness gates, `DisruptionTarget`,
 * ...) unchanged, as observed (else as before), except where `set` replaces one, then the resize
 * conditions (not on a terminal pod), `PodReadyToStartContainers`, `Initialized`, `Ready`,
 * `ContainersReady`, `PodScheduled`. A condition systemk sets keeps its previous
 * `lastTransitionTime` while its status is unchanged, and gets `now` when it changes; each
 * carries the pod's `metadata.generation` as `observedGeneration` (PodObservedGenerationTracking,
 * beta and on in 1.34), when the pod has one.
 *
 * @param pod The pod (its spec: containers and readiness gates).
 * @param options Statuses, phase, previous conditions, time.
 * @return The conditions.
 *
 * @example Usage
 * ```ts
 * import { podConditions } from "./conditions.ts";
 * import assert from "node:assert/strict";
 * const pod = { spec: { containers: [{ name: "a" }] } };
 * const conditions = podConditions(pod, {
 *   statuses: [], phase: "Pending", sandboxReady: false, previous: [], now: new Date(0),
 * });
 * assert.equal(conditions.find((c) => c.type === "Ready")?.reason, "ContainersNotReady");
 * ```
 */
export function podConditions(pod: V1Pod, options: PodConditionsOptions): V1PodCondition[] {
  const { statuses, phase, previous, now } = options;
  const set = options.set ?? [];
  const conditions = (options.observed ?? previous).filter((c) =>
    !KUBELET_CONDITION_TYPES.includes(c.type) && !set.some((s) => s.type === c.type)
  );
  const terminal = isTerminalPhase(phase);
  if (!terminal) conditions.push(...options.resize ?? []);
  const generation = pod.metadata?.generation;
  const owned: V1PodCondition[] = [
    ...set,
    { type: "PodReadyToStartContainers", status: bool(options.sandboxReady && !terminal) },
    initializedCondition(pod, statuses, phase),
    readyCondition(pod, conditions, statuses, phase),
    containersReadyCondition(pod, statuses, phase),
    { type: "PodScheduled", status: "True" },
  ];
  for (const condition of owned) {
    const before = previous.find((c) => c.type === condition.type);
    const lastTransitionTime = before?.status === condition.status && before.lastTransitionTime
      ? new Date(before.lastTransitionTime)
      : now;
    conditions.push({
      ...condition,
      lastTransitionTime,
      ...(generation ? { observedGeneration: generation } : {}),
    });
  }
  return conditions;
}

/** `Initialized`: every regular init container exited 0 and every sidecar has started. */
function initializedCondition(
  pod: V1Pod,
  statuses: readonly V1ContainerStatus[],
  phase: PodPhase,
): V1PodCondition {
  const unknown: string[] = [];
  const incomplete: string[] = [];
  for (const container of pod.spec?.initContainers ?? []) {
    const status = statuses.find((s) => s.name === container.name);
    if (!status) unknown.push(container.name);
    else if (isSidecar(container) ? !status.started : !status.ready) {
      incomplete.push(container.name);
    }
  }
  if (phase === "Succeeded" && unknown.length === 0) {
    return { type: "Initialized", status: "True", reason: "PodCompleted" };
  }
  // Once an app container has run, the pod was initialized, even if a sidecar restarts now.
  if (hasAnyAppContainerStarted(pod, statuses)) return { type: "Initialized", status: "True" };
  const message = [
    ...listed("containers with unknown status", unknown),
    ...listed("containers with incomplete status", incomplete),
  ].join(", ");
  return message
    ? { type: "Initialized", status: "False", reason: "ContainersNotInitialized", message }
    : { type: "Initialized", status: "True" };
}

/** `ContainersReady`: every app container and sidecar is ready. */
function containersReadyCondition(
  pod: V1Pod,
  statuses: readonly V1ContainerStatus[],
  phase: PodPhase,
): V1PodCondition {
  const unknown: string[] = [];
  const unready: string[] = [];
  const watched = [
    ...(pod.spec?.initContainers ?? []).filter(isSidecar),
    ...(pod.spec?.containers ?? []),
  ];
  for (const container of watched) {
    const status = statuses.find((s) => s.name === container.name);
    if (!status) unknown.push(container.name);
    else if (!status.ready) unready.push(container.name);
  }
  if ((phase === "Succeeded" && unknown.length === 0) || phase === "Failed") {
    return {
      type: "ContainersReady",
      status: "False",
      reason: phase === "Failed" ? "PodFailed" : "PodCompleted",
    };
  }
  const message = [
    ...listed("containers with unknown status", unknown),
    ...listed("containers with unready status", unready),
  ].join(", ");
  return message
    ? { type: "ContainersReady", status: "False", reason: "ContainersNotReady", message }
    : { type: "ContainersReady", status: "True" };
}

/** `Ready`: `ContainersReady`, and every readiness gate's condition `True`. */
function readyCondition(
  pod: V1Pod,
  conditions: readonly V1PodCondition[],
  statuses: readonly V1ContainerStatus[],
  phase: PodPhase,
): V1PodCondition {
  const containersReady = containersReadyCondition(pod, statuses, phase);
  if (containersReady.status !== "True") return { ...containersReady, type: "Ready" };
  const unready: string[] = [];
  for (const gate of pod.spec?.readinessGates ?? []) {
    const condition = conditions.find((c) => c.type === gate.conditionType);
    if (!condition) {
      unready.push(
        `corresponding condition of pod readiness gate "${gate.conditionType}" does not exist.`,
      );
    } else if (condition.status !== "True") {
      unready.push(
        `the status of pod readiness gate "${gate.conditionType}" is not "True", but ${condition.status}`,
      );
    }
  }
  return unready.length > 0
    ? {
      type: "Ready",
      status: "False",
      reason: "ReadinessGatesNotReady",
      message: unready.join(", "),
    }
    : { type: "Ready", status: "True" };
}

/** The kubelet's message part `what: [a b]` (Go's `%s` of a string slice), if any names. */
function listed(what: string, names: readonly string[]): string[] {
  return names.length > 0 ? [`${what}: [${names.join(" ")}]`] : [];
}

function bool(value: boolean): string {
  return value ? "True" : "False";
}
