/**
 * The in-place resize fields of a container's status, as the kubelet's
 * `convertToAPIContainerStatuses` writes them: `allocatedResources` (the requests the container
 * is allocated) and `resources` (what it runs with: the allocated resources, with CPU and memory
 * as its running unit has them; the allocated ones when it is not running). Both only for a
 * container that has run. The apiserver accepts a resize only for pods whose running containers
 * report `resources` (its check of the node's support), so systemk always reports them. Pure.
 *
 * @module
 */
import type { V1ContainerStatus, V1ResourceRequirements } from "@kubernetes/client-node";

/** A container's resources: allocated, and as its running unit has them. */
export interface ContainerResources {
  allocated: V1ResourceRequirements;
  /** What the unit runs with (the unit file written once systemd took them); absent = allocated. */
  actual?: V1ResourceRequirements;
}

/** The resources in-place resize changes. */
const RESIZABLE = ["cpu", "memory"] as const;

/**
 * `status` with `resources` and `allocatedResources`, when the container has run.
 *
 * @example Usage
 * ```ts
 * const status = { name: "a", image: "x", imageID: "", ready: true, restartCount: 0,
 *   state: { running: {} } };
 * withResources(status, { allocated: { requests: { cpu: "1" } }, actual: { requests: { cpu: "500m" } } });
 * // { ..., resources: { requests: { cpu: "500m" } }, allocatedResources: { cpu: "1" } }
 * ```
 */
export function withResources(
  status: V1ContainerStatus,
  resources: ContainerResources | undefined,
): V1ContainerStatus {
  const hasRun = status.state?.running || status.state?.terminated ||
    status.lastState?.terminated;
  if (!resources || !hasRun) return status;
  const { allocated, actual } = resources;
  const reported: V1ResourceRequirements = {};
  for (const list of ["requests", "limits"] as const) {
    const values = allocated[list];
    if (!values) continue;
    const out = { ...values };
    for (const resource of RESIZABLE) {
      const running = actual?.[list]?.[resource];
      if (status.state?.running && resource in out && running !== undefined) {
        out[resource] = running;
      }
    }
    reported[list] = out;
  }
  return {
    ...status,
    resources: reported,
    ...(allocated.requests ? { allocatedResources: { ...allocated.requests } } : {}),
  };
}
