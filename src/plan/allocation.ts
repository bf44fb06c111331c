/**
 * In-place pod resize, the kubelet's allocation side (pkg/kubelet/allocation): the resources a
 * pod's containers were admitted with (their allocation) against what its spec asks for now
 * (`kubectl patch --subresource resize` changes `spec.containers[].resources`), and whether a
 * resize can be allocated, as `handlePodResourcesResize` and `canResizePod` decide in 1.34:
 *
 * - static pods: `Infeasible` ("In-place resize of static-pods is not supported");
 * - the pod's requests beyond the node's allocatable: `Infeasible` ("Node didn't have enough
 *   capacity: memory, requested: …, capacity: …", memory looked at first);
 * - beyond what the other pods' allocations leave: `Deferred`, with the admission predicate's
 *   message ("Node didn't have enough resource: cpu, requested: …, used: …, capacity: …");
 * - else the resize is allocated: the pod runs with its spec's resources from then on.
 *
 * Resizable are app containers and sidecars (restartable init containers), CPU and memory (the
 * apiserver refuses any other change). Pure.
 *
 * @module
 */
import type { V1Container, V1Pod, V1ResourceRequirements } from "@kubernetes/client-node";
import { integerValue, milliValue, parseQuantity, QuantityError } from "./quantity.ts";

/** Per container name: the resources it is allocated (the kubelet's allocation checkpoint). */
export type Allocation = ReadonlyMap<string, V1ResourceRequirements>;

/** CPU (millicores) and memory (bytes): a pod's requests, or a node's allocatable. */
export interface CpuMemory {
  cpuMilli: number;
  memoryBytes: number;
}

/** Why a resize is not allocated: the `PodResizePending` condition's reason and message. */
export interface PendingResize {
  reason: "Infeasible" | "Deferred";
  message: string;
}

/** What {@link decideResize} needs besides the pod and its allocation. */
export interface ResizeContext {
  /** The node's allocatable CPU and memory. */
  allocatable: CpuMemory;
  /** The requests of every other pod the node runs, as allocated. */
  othersRequests: CpuMemory;
  /** A static pod (from `--pod-manifest-path`): never resized in place. */
  staticPod: boolean;
}

/** Whether an init container is a sidecar (`restartPolicy: Always`), which may be resized. */
function isSidecar(container: V1Container): boolean {
  return container.restartPolicy === "Always";
}

/** The containers whose resources may change in place: sidecars, then app containers. */
function resizable(pod: V1Pod): V1Container[] {
  return [...(pod.spec?.initContainers ?? []).filter(isSidecar), ...(pod.spec?.containers ?? [])];
}

/**
 * The allocation a pod is admitted with: its resizable containers' resources as its spec gives
 * them.
 *
 * @example Usage
 * ```ts
 * podAllocation({ spec: { containers: [{ name: "a", resources: { limits: { cpu: "1" } } }] } });
 * // Map { "a" => { limits: { cpu: "1" } } }
 * ```
 */
export function podAllocation(pod: V1Pod): Map<string, V1ResourceRequirements> {
  return new Map(resizable(pod).map((c) => [c.name, c.resources ?? {}]));
}

/**
 * `pod` with its resizable containers' resources replaced by their allocation (the kubelet's
 * `UpdatePodFromAllocation`): what the node runs while a resize is pending. Containers the
 * allocation does not name keep theirs.
 */
export function allocatedPod(pod: V1Pod, allocation: Allocation): V1Pod {
  const swap = (c: V1Container) => {
    const allocated = allocation.get(c.name);
    return allocated ? { ...c, resources: allocated } : c;
  };
  const spec = { ...pod.spec!, containers: pod.spec!.containers.map(swap) };
  if (spec.initContainers) {
    spec.initContainers = spec.initContainers.map((c) => isSidecar(c) ? swap(c) : c);
  }
  return { ...pod, spec };
}

/** Whether the spec asks for other resources than `allocation` gives (a resize is requested). */
export function resizeRequested(pod: V1Pod, allocation: Allocation): boolean {
  return resizable(pod).some((c) =>
    allocation.has(c.name) &&
    canonicalResources(c.resources) !== canonicalResources(allocation.get(c.name))
  );
}

/** Resources as a string that ignores key order and empty lists. */
function canonicalResources(r: V1ResourceRequirements | undefined): string {
  const list = (l?: Record<string, string>) =>
    Object.entries(l ?? {}).map(([k, v]) => [k, String(v)]).sort();
  return JSON.stringify([list(r?.requests), list(r?.limits)]);
}

/**
 * The resizable resources (CPU, memory) whose request or limit differs between `a` and `b`,
 * compared as quantities (`1` and `1000m` are equal), as the kubelet compares allocated and
 * actuated resources.
 *
 * @example Usage
 * ```ts
 * changedResources({ limits: { cpu: "1" } }, { limits: { cpu: "1000m", memory: "1Gi" } });
 * // ["memory"]
 * ```
 */
export function changedResources(
  a: V1ResourceRequirements | undefined,
  b: V1ResourceRequirements | undefined,
): ("cpu" | "memory")[] {
  return (["cpu", "memory"] as const).filter((resource) =>
    (["requests", "limits"] as const).some((list) =>
      amount(resource, a?.[list]?.[resource]) !== amount(resource, b?.[list]?.[resource])
    )
  );
}

/**
 * A quantity of `resource` (CPU in millicores, anything else in whole units), 0 when absent;
 * the apiserver validated it, so a malformed one counts as 0 too.
 */
function amount(resource: string, value: string | number | undefined): number {
  if (value === undefined) return 0;
  try {
    const q = parseQuantity(String(value));
    return Number(resource === "cpu" ? milliValue(q) : integerValue(q));
  } catch (e) {
    if (e instanceof QuantityError) return 0;
    throw e;
  }
}

/**
 * A pod's CPU and memory requests as the kubelet counts them (`resource.PodRequests`): app
 * containers and sidecars add up, a regular init container counts alone (with the sidecars
 * started before it), the larger of the two wins; plus `spec.overhead`. Pod-level
 * `spec.resources.requests`, where set, replace the containers'.
 */
export function podRequests(pod: V1Pod): CpuMemory {
  const one = (resource: "cpu" | "memory") => {
    const request = (c: V1Container) => amount(resource, c.resources?.requests?.[resource]);
    const podLevel = pod.spec?.resources?.requests?.[resource];
    if (podLevel !== undefined) return amount(resource, podLevel);
    let sidecars = 0;
    let initPeak = 0;
    for (const c of pod.spec?.initContainers ?? []) {
      if (isSidecar(c)) sidecars += request(c);
      else initPeak = Math.max(initPeak, sidecars + request(c));
    }
    const apps = (pod.spec?.containers ?? []).reduce((sum, c) => sum + request(c), 0);
    return Math.max(apps + sidecars, initPeak) + amount(resource, pod.spec?.overhead?.[resource]);
  };
  return { cpuMilli: one("cpu"), memoryBytes: one("memory") };
}

/**
 * Whether the resize `pod`'s spec asks for can be allocated now, or why not (see the module
 * doc). Call it only when {@link resizeRequested}.
 *
 * @example Usage
 * ```ts
 * const pod = { spec: { containers: [{ name: "a", resources: { requests: { cpu: "3" } } }] } };
 * decideResize(pod, {
 *   allocatable: { cpuMilli: 2000, memoryBytes: 2 ** 30 },
 *   othersRequests: { cpuMilli: 0, memoryBytes: 0 },
 *   staticPod: false,
 * }); // { reason: "Infeasible", message: "Node didn't have enough capacity: cpu, requested: 3000, capacity: 2000" }
 * ```
 */
export function decideResize(pod: V1Pod, context: ResizeContext): PendingResize | undefined {
  if (context.staticPod) {
    return { reason: "Infeasible", message: "In-place resize of static-pods is not supported" };
  }
  const wanted = podRequests(pod);
  const { allocatable, othersRequests } = context;
  if (wanted.memoryBytes > allocatable.memoryBytes) {
    return {
      reason: "Infeasible",
      message: `Node didn't have enough capacity: memory, requested: ${wanted.memoryBytes}, ` +
        `capacity: ${allocatable.memoryBytes}`,
    };
  }
  if (wanted.cpuMilli > allocatable.cpuMilli) {
    return {
      reason: "Infeasible",
      message: `Node didn't have enough capacity: cpu, requested: ${wanted.cpuMilli}, ` +
        `capacity: ${allocatable.cpuMilli}`,
    };
  }
  const fits: [string, number, number, number][] = [
    ["cpu", wanted.cpuMilli, othersRequests.cpuMilli, allocatable.cpuMilli],
    ["memory", wanted.memoryBytes, othersRequests.memoryBytes, allocatable.memoryBytes],
  ];
  for (const [resource, requested, used, capacity] of fits) {
    if (requested > capacity - used) {
      return {
        reason: "Deferred",
        message: `Node didn't have enough resource: ${resource}, requested: ${requested}, ` +
          `used: ${used}, capacity: ${capacity}`,
      };
    }
  }
  return undefined;
}
