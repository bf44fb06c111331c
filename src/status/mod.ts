/**
 * Pod status from systemd: the pure mapping from each container's unit properties (plus what
 * the agent and the prober know) to the `V1PodStatus` the kubelet would report — container
 * states, restart counts, phase, conditions, QoS class (src/kube/status.ts writes it).
 *
 * Decisions:
 * - `containerID` is `systemd://<InvocationID>`: systemd draws a new invocation ID for every
 *   start, automatic restarts included (measured on systemd 252), and the journal records it
 *   as `_SYSTEMD_INVOCATION_ID`, so a container ID finds exactly that run's logs.
 * - `imageID` is the container's `image` string, unless the caller knows better
 *   (`ContainerUnit.imageID`, e.g. the installed package version); empty before the first run.
 * - A process that runs is `running` even while the unit is still `activating` (oneshot,
 *   notify): like the kubelet, whose containers run once the process does. `started` and
 *   `ready` then follow startup and readiness probes (`ContainerOverride.started`/`ready`).
 * - Exit by signal N: `exitCode` 128 + N and `signal` N. systemd's own setup failures
 *   (`200`–`245`, e.g. `203/EXEC`) and units failing before the main process ran are
 *   `StartError`. `OOMKilled` needs `Result=oom-kill` (cgroup v2) or `ContainerUnit.oomKilled`.
 * - Times are whole seconds (what the API stores), so the status writer skips no-op writes.
 *
 * Limits (what systemd does not keep):
 * - systemd resets `ExecMain*` when a unit starts again, so `lastState` comes from the
 *   previous status: exact when the run's end was seen; otherwise the missed run is reported
 *   as `ContainerStatusUnknown` (exit 137), as the kubelet does for lost containers.
 * - An inactive unit nobody references is unloaded at once and its properties read as never
 *   started (measured): a terminated status is then kept from the previous status, and a
 *   running one becomes `ContainerStatusUnknown`. Read properties from the change signal, or
 *   hold a `Ref()` on the unit, to get the real exit status.
 * - `restartCount` counts new runs (new InvocationIDs): every unit is `Restart=no` and systemk
 *   restarts containers itself, so systemd's own restart counter says nothing.
 *
 * ```ts
 * import { computePodStatus } from "./mod.ts";
 * import assert from "node:assert/strict";
 * const pod = { metadata: { name: "web", uid: "u1" }, spec: { containers: [{ name: "a", image: "/bin/a" }] } };
 * const next = computePodStatus(pod, {
 *   units: new Map(), addresses: { hostIP: "198.51.100.2", podIP: "198.51.100.2" }, now: new Date(0),
 * });
 * assert.equal(next.phase, "Pending");
 * ```
 *
 * @module
 */
export { computePodStatus } from "./pod_status.ts";
export {
  computeContainerStatus,
  type ContainerStatusOptions,
  podRef,
  type RestartPolicy,
  restartPolicyOf,
  willRestart,
} from "./container.ts";
export {
  hasAnyAppContainerStarted,
  isTerminalPhase,
  type PodPhase,
  podPhase,
  type PodPhaseOptions,
} from "./phase.ts";
export {
  isKubeletCondition,
  KUBELET_CONDITION_TYPES,
  podConditions,
  type PodConditionsOptions,
  TERMINATION_BY_KUBELET,
} from "./conditions.ts";
export { computeQOSClass, type QOSClass } from "./qos.ts";
export { type ContainerResources, withResources } from "./resources.ts";
export { containerID, observeUnit, timestamp, type UnitObservation } from "./unit_state.ts";
export type {
  ContainerOverride,
  ContainerUnit,
  PodAddresses,
  PodFailure,
  PodStatusOptions,
} from "./types.ts";
