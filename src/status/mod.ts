/**
 * Pod status from systemd: the pure mapping from each container's unit properties (plus what
 * the agent and the prober know) to the `V1PodStatus` the kubelet would report — container
 * states, restart counts, phase, conditions, QoS class — and a minimal patch to write it.
 *
 * ```ts
 * import { computePodStatus, statusPatch } from "./mod.ts";
 * import assert from "node:assert/strict";
 * const pod = { metadata: { name: "web", uid: "u1" }, spec: { containers: [{ name: "a", image: "/bin/a" }] } };
 * const next = computePodStatus(pod, {
 *   units: new Map(), addresses: { hostIP: "198.51.100.2", podIP: "198.51.100.2" }, now: new Date(0),
 * });
 * assert.equal(statusPatch(next, next), undefined);
 * ```
 *
 * @module
 */
export { computePodStatus } from "./pod_status.ts";
export {
  computeContainerStatus,
  type ContainerStatusOptions,
  isSidecar,
  type RestartPolicy,
  restartPolicyOf,
  willRestart,
} from "./container.ts";
export { hasAnyAppContainerStarted, type PodPhase, podPhase } from "./phase.ts";
export { KUBELET_CONDITION_TYPES, podConditions, type PodConditionsOptions } from "./conditions.ts";
export { computeQOSClass, type QOSClass } from "./qos.ts";
export { addQuantities, compareQuantities, parseQuantity, type Quantity } from "./quantity.ts";
export { containerID, observeUnit, timestamp, type UnitObservation } from "./unit_state.ts";
export {
  OWNED_STATUS_FIELDS,
  podStatusEqual,
  type StatusPatch,
  statusPatch,
  type StatusPatchOptions,
} from "./patch.ts";
export type {
  ContainerOverride,
  ContainerUnit,
  PodAddresses,
  PodFailure,
  PodStatusOptions,
} from "./types.ts";
