/**
 * A pod's whole status from its units, the way the kubelet's `generateAPIPodStatus` and
 * status manager compute it.
 *
 * @module
 */
import type { V1Container, V1ContainerStatus, V1Pod, V1PodStatus } from "@kubernetes/client-node";
import { allContainers, type ContainerKind } from "../plan/containers.ts";
import { podConditions } from "./conditions.ts";
import { computeContainerStatus } from "./container.ts";
import { isTerminalPhase, podPhase } from "./phase.ts";
import { computeQOSClass } from "./qos.ts";
import { withResources } from "./resources.ts";
import type { PodStatusOptions } from "./types.ts";

/**
 * Computes the status systemk reports for a pod.
 *
 * Beyond the per-container rules (`computeContainerStatus`), phase (`podPhase`) and
 * conditions (`podConditions`):
 * - a terminal phase (Succeeded/Failed) in the previous status never changes again;
 * - `terminal` makes the phase terminal (Failed unless every app container exited 0);
 *   `evicted` and `rejected` make it Failed; a rejected pod (or a terminal one whose previous
 *   status lists no container) has no container statuses;
 * - `conditions` (a `DisruptionTarget`) are added to the computed ones;
 * - `reason`/`message` show `failure`; without one, a terminal phase keeps the previous
 *   reason and message (e.g. an eviction's), any other phase clears them;
 * - `startTime` is kept from the previous status, else `now`; `qosClass` likewise, else
 *   computed from resources;
 * - host and pod IPs are the given addresses (host networking);
 * - `observedGeneration` is the pod's `metadata.generation` (PodObservedGenerationTracking);
 * - a container that has run reports `resources` and `allocatedResources` (resources.ts);
 * - app and ephemeral container statuses are sorted by name, init container statuses in spec
 *   order; ephemeral containers count for neither the phase nor the conditions;
 * - times are whole seconds, the precision the API stores, so the status writer's comparison of a status
 *   read back and one recomputed from unchanged units is true.
 *
 * @param pod The pod (spec, metadata; `status` is the default previous status).
 * @param options Units, overrides, addresses, time, previous status.
 * @return The pod status.
 *
 * @example Usage
 * ```ts
 * import { computePodStatus } from "./pod_status.ts";
 * import assert from "node:assert/strict";
 * const pod = { metadata: { name: "web", uid: "u1" }, spec: { containers: [{ name: "a", image: "/bin/a" }] } };
 * const status = computePodStatus(pod, {
 *   units: new Map(), addresses: { hostIP: "198.51.100.2", podIP: "198.51.100.2" }, now: new Date(0),
 * });
 * assert.equal(status.phase, "Pending");
 * ```
 */
export function computePodStatus(pod: V1Pod, options: PodStatusOptions): V1PodStatus {
  const previous = options.previous ?? pod.status ?? {};
  const now = new Date(Math.floor(options.now.getTime() / 1000) * 1000);
  const previousStatuses = new Map(
    [
      ...(previous.initContainerStatuses ?? []),
      ...(previous.containerStatuses ?? []),
      ...(previous.ephemeralContainerStatuses ?? []),
    ].map((status) => [status.name, status]),
  );
  const statusOf = (container: V1Container, kind: ContainerKind) =>
    withResources(
      computeContainerStatus(container, {
        pod,
        kind,
        unit: options.units.get(container.name),
        override: options.overrides?.get(container.name),
        previous: previousStatuses.get(container.name),
      }),
      options.resources?.get(container.name),
    );
  const byName = (a: V1ContainerStatus, b: V1ContainerStatus) =>
    a.name < b.name ? -1 : a.name > b.name ? 1 : 0;
  const all = allContainers({ ...pod.spec, containers: pod.spec?.containers ?? [] });
  const statusesOf = (...kinds: ContainerKind[]) =>
    all.filter((c) => kinds.includes(c.kind)).map((c) => statusOf(c.container, c.kind));
  const initContainerStatuses = statusesOf("init", "sidecar");
  const containerStatuses = statusesOf("app").sort(byName);
  const ephemeralContainerStatuses = statusesOf("ephemeral").sort(byName);
  // Ephemeral containers count for neither phase nor conditions (the kubelet's getPhase).
  const statuses = [...initContainerStatuses, ...containerStatuses];

  const terminal = options.terminal ?? false;
  let phase = podPhase(pod, statuses, { podIsTerminal: terminal });
  if ((terminal && !isTerminalPhase(phase)) || options.evicted || options.rejected) {
    phase = "Failed";
  }
  if (isTerminalPhase(previous.phase)) phase = previous.phase;
  // Never created: a rejected pod's containers have no status, before or after a restart.
  const containersShown = !options.rejected &&
    !(isTerminalPhase(previous.phase) && previousStatuses.size === 0);

  const sandboxReady = options.sandboxReady ??
    all.some((c) => c.kind !== "ephemeral" && options.units.has(c.container.name));
  const keepsReason = !options.failure && isTerminalPhase(phase) && previous.phase === phase;
  const generation = pod.metadata?.generation;
  return {
    ...(generation ? { observedGeneration: generation } : {}),
    phase,
    conditions: podConditions(pod, {
      statuses,
      phase,
      sandboxReady,
      previous: previous.conditions ?? [],
      observed: pod.status?.conditions,
      set: options.conditions,
      now,
      resize: options.resizeConditions,
    }),
    reason: options.failure?.reason ?? (keepsReason ? previous.reason : undefined),
    message: options.failure?.message ?? (keepsReason ? previous.message : undefined),
    hostIP: options.addresses.hostIP,
    hostIPs: [{ ip: options.addresses.hostIP }],
    podIP: options.addresses.podIP,
    podIPs: [{ ip: options.addresses.podIP }],
    startTime: previous.startTime ? new Date(previous.startTime) : now,
    qosClass: previous.qosClass || computeQOSClass(pod),
    initContainerStatuses: containersShown && initContainerStatuses.length > 0
      ? initContainerStatuses
      : undefined,
    containerStatuses: containersShown ? containerStatuses : undefined,
    ephemeralContainerStatuses: containersShown && ephemeralContainerStatuses.length > 0
      ? ephemeralContainerStatuses
      : undefined,
  };
}
