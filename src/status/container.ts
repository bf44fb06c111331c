/**
 * One container's status, computed like the kubelet's `convertToAPIContainerStatuses`: the
 * unit's state, the history systemd does not keep (previous runs, lost runs), the agent's
 * waiting reasons, and probe results.
 *
 * @module
 */
import type {
  V1Container,
  V1ContainerState,
  V1ContainerStateTerminated,
  V1ContainerStatus,
  V1Pod,
} from "@kubernetes/client-node";
import type { ContainerKind } from "../plan/containers.ts";
import type { ContainerOverride, ContainerUnit } from "./types.ts";
import { observeUnit, type UnitObservation } from "./unit_state.ts";

/** What `computeContainerStatus` needs besides the container's spec. */
export interface ContainerStatusOptions {
  pod: V1Pod;
  /** Where the pod lists the container, and what it is there. */
  kind: ContainerKind;
  unit?: ContainerUnit;
  override?: ContainerOverride;
  /** This container's entry in the previous pod status. */
  previous?: V1ContainerStatus;
}

/** A container's effective restart policy: `Always`, `OnFailure` or `Never`. */
export type RestartPolicy = "Always" | "OnFailure" | "Never";

/**
 * The restart policy that applies to a container: a sidecar (init container with
 * `restartPolicy: Always`) always restarts; regular init containers are retried on failure
 * unless the pod says `Never`; app containers follow the pod (default `Always`); ephemeral
 * containers never restart.
 *
 * @param pod The pod.
 * @param kind What the container is to the pod.
 * @return The effective policy.
 *
 * @example Usage
 * ```ts
 * import { restartPolicyOf } from "./container.ts";
 * import assert from "node:assert/strict";
 * const pod = { spec: { restartPolicy: "Always", containers: [] } };
 * assert.equal(restartPolicyOf(pod, "init"), "OnFailure");
 * ```
 */
export function restartPolicyOf(pod: V1Pod, kind: ContainerKind): RestartPolicy {
  const podPolicy = (pod.spec?.restartPolicy ?? "Always") as RestartPolicy;
  switch (kind) {
    case "app":
      return podPolicy;
    case "sidecar":
      return "Always";
    case "init":
      return podPolicy === "Never" ? "Never" : "OnFailure";
    case "ephemeral":
      return "Never";
  }
}

/**
 * Computes one container's status.
 *
 * Rules, in order (kubelet behaviour in parentheses):
 * 1. No run on record (no unit, or not started yet): a previous terminated status is kept
 *    (the runtime forgot the container); otherwise waiting `ContainerCreating`, or
 *    `PodInitializing` in pods with init containers, keeping `restartCount` and `lastState`;
 *    if it was running before, it was lost: `lastState` terminated `ContainerStatusUnknown`
 *    (exit 137) and one more restart unless the pod is being deleted.
 * 2. A run on record: its state; `restartCount` = the previous count, plus one when a new run
 *    (a new InvocationID: systemk restarts containers itself, every unit is `Restart=no`)
 *    replaced the one last seen; `lastState` = the previous run as last seen.
 * 3. A terminated container that will not be restarted stays terminated (the status manager
 *    refuses such transitions).
 * 4. The agent's waiting reason (or a unit systemd cannot load, `CreateContainerError`)
 *    replaces a waiting state, or a terminated one that will be restarted, moving the
 *    latter to `lastState` (the reason cache).
 * 5. `started` = running and startup probe passed (or none); `ready` = started and
 *    readiness probe passed (or none); for a regular init container, `ready` = exited 0; an
 *    ephemeral container is never ready and has no `started`.
 *
 * @param container The container's spec.
 * @param options The pod, unit, overrides and previous status.
 * @return The container's status.
 *
 * @example Usage
 * ```ts
 * import { computeContainerStatus } from "./container.ts";
 * import assert from "node:assert/strict";
 * const pod = { spec: { containers: [{ name: "app", image: "/bin/app" }] } };
 * const status = computeContainerStatus(pod.spec.containers[0], { pod, kind: "app" });
 * assert.equal(status.state?.waiting?.reason, "ContainerCreating");
 * ```
 */
export function computeContainerStatus(
  container: V1Container,
  options: ContainerStatusOptions,
): V1ContainerStatus {
  const { pod, kind, unit, override, previous } = options;
  const policy = restartPolicyOf(pod, kind);
  const observation: UnitObservation = unit ? observeUnit(unit) : { kind: "absent" };

  let status = observation.kind === "absent"
    ? fromHistory(container, pod, previous)
    : fromRun(container, { observation, unit: unit!, previous });

  const previousEnd = previous?.state?.terminated;
  if (previousEnd && !willRestart(policy, previousEnd.exitCode) && !status.state?.terminated) {
    status = { ...previous! };
  }

  const waiting = override?.waiting ??
    (observation.kind === "absent" ? observation.error : undefined);
  if (waiting) status = withWaitingReason(status, waiting, policy, isDeleting(pod));

  // Ephemeral containers have no probes; the kubelet's prober leaves them unready, `started` unset.
  if (kind === "ephemeral") return { ...status, ready: false };
  const started = Boolean(status.state?.running) && (override?.started ?? !container.startupProbe);
  const ready = kind === "init"
    ? status.state?.terminated?.exitCode === 0
    : started && (override?.ready ?? !container.readinessProbe);
  return { ...status, started, ready };
}

/**
 * Whether a container that ended with `exitCode` will be started again under `policy`.
 *
 * @param policy The container's effective restart policy.
 * @param exitCode How its last run ended.
 * @return True when it will be restarted.
 *
 * @example Usage
 * ```ts
 * import { willRestart } from "./container.ts";
 * import assert from "node:assert/strict";
 * assert.equal(willRestart("OnFailure", 0), false);
 * ```
 */
export function willRestart(policy: RestartPolicy, exitCode: number): boolean {
  return policy === "Always" || (policy === "OnFailure" && exitCode !== 0);
}

/** Status of a container with no run on record (rule 1). */
function fromHistory(
  container: V1Container,
  pod: V1Pod,
  previous: V1ContainerStatus | undefined,
): V1ContainerStatus {
  if (previous?.state?.terminated) return { ...previous };
  const status: V1ContainerStatus = {
    name: container.name,
    image: container.image ?? "",
    imageID: "",
    // Waiting for its next run, a container still names its last one, so that the next run
    // counts as a restart (a run hidden while its postStart hook runs, a replaced unit).
    ...(previous?.containerID && previous.state?.waiting
      ? { containerID: previous.containerID }
      : {}),
    ready: false,
    restartCount: previous?.restartCount ?? 0,
    state: { waiting: { reason: defaultWaitingReason(pod) } },
    lastState: previous?.lastState,
  };
  const lostRun = previous?.state?.running;
  if (lostRun && !previous.lastState?.terminated) {
    status.lastState = {
      terminated: lost(previous, "the container's unit is gone; it used to be running"),
    };
    if (!isDeleting(pod)) status.restartCount += 1;
  }
  return status;
}

/** Status of a container whose unit has a run on record (rule 2). */
function fromRun(
  container: V1Container,
  run: {
    observation: Exclude<UnitObservation, { kind: "absent" }>;
    unit: ContainerUnit;
    previous?: V1ContainerStatus;
  },
): V1ContainerStatus {
  const { observation, unit, previous } = run;
  const containerID = observation.kind === "running"
    ? observation.containerID
    : observation.terminated.containerID;
  const newRun = previous?.containerID !== undefined && previous.containerID !== containerID;
  const restartCount = (previous?.restartCount ?? 0) + (newRun ? 1 : 0);
  const state: V1ContainerState = observation.kind === "running"
    ? { running: { startedAt: observation.startedAt } }
    : { terminated: observation.terminated };
  const lastState = newRun ? lastStateBefore(previous!) : previous?.lastState;
  return {
    name: container.name,
    image: container.image ?? "",
    imageID: unit.imageID ?? container.image ?? "",
    containerID,
    ready: false,
    restartCount,
    state,
    lastState,
  };
}

/** `lastState` when a new run replaced `previous`'s: how that earlier run ended. */
function lastStateBefore(previous: V1ContainerStatus): V1ContainerState | undefined {
  if (previous.state?.terminated) return { terminated: previous.state.terminated };
  if (previous.state?.running) {
    return { terminated: lost(previous, "systemd restarted it before its exit was seen") };
  }
  return previous.lastState;
}

/** The kubelet's stand-in for a run whose end was never observed. */
function lost(previous: V1ContainerStatus, why: string): V1ContainerStateTerminated {
  return {
    containerID: previous.containerID,
    exitCode: 137,
    reason: "ContainerStatusUnknown",
    message: `The container's exit status could not be determined: ${why}`,
    startedAt: previous.state?.running?.startedAt,
  };
}

/** Rule 4: the kubelet's reason cache applied to `status`. */
function withWaitingReason(
  status: V1ContainerStatus,
  waiting: { reason: string; message?: string },
  policy: RestartPolicy,
  deleting: boolean,
): V1ContainerStatus {
  const ended = status.state?.terminated;
  if (deleting || status.state?.running) return status;
  if (ended && !willRestart(policy, ended.exitCode)) return status;
  return {
    ...status,
    state: { waiting: { reason: waiting.reason, message: waiting.message } },
    lastState: ended ? { terminated: ended } : status.lastState,
  };
}

/** The kubelet's waiting reason for a container it has not created yet. */
function defaultWaitingReason(pod: V1Pod): string {
  return (pod.spec?.initContainers?.length ?? 0) > 0 ? "PodInitializing" : "ContainerCreating";
}

function isDeleting(pod: V1Pod): boolean {
  return Boolean(pod.metadata?.deletionTimestamp);
}

/**
 * The kubelet's `format.Pod`: `name_namespace(uid)`, as its messages name a pod.
 *
 * @param pod The pod.
 * @return E.g. `web_default(0b5a…)`.
 *
 * @example Usage
 * ```ts
 * import { podRef } from "./container.ts";
 * import assert from "node:assert/strict";
 * assert.equal(podRef({ metadata: { name: "web", uid: "u1" } }), "web_default(u1)");
 * ```
 */
export function podRef(pod: V1Pod): string {
  return `${pod.metadata?.name}_${pod.metadata?.namespace ?? "default"}(${pod.metadata?.uid})`;
}
