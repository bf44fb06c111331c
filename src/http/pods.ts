/**
 * What the kubelet API needs to know about the node's pods, as one narrow interface the pod
 * runtime (or node mode) implements, and the helpers built on it: finding a pod by name, the
 * unit of each container, and which containers are running.
 *
 * @module
 */
import type { V1Pod } from "@kubernetes/client-node";
import type { CgroupUsage, UnitProperties } from "../unit/properties.ts";
import type { NamespacedName } from "../unit/name.ts";

/** The pods this node runs, as systemk sees them. */
export interface PodSource {
  /** Every pod currently assigned to (or running on) this node. */
  pods(): readonly V1Pod[];
  /**
   * Per container name of `pod`: its unit, as the pod runtime planned and wrote it (none yet
   * for a container whose unit is not written).
   */
  containerUnits(pod: V1Pod): ReadonlyMap<string, string>;
  /** A unit's state as the runtime last observed it (systemd's signals). */
  unitState(unit: string): UnitProperties | undefined;
}

/** Reads a unit's properties (systemd's `GetAll`), accounting included. */
export type UnitPropertiesReader = (unit: string) => Promise<UnitProperties>;

/** Reads a unit's cgroup path and what systemd accounts for it (a pod's slice). */
export type CgroupUsageReader = (unit: string) => Promise<CgroupUsage>;

/**
 * The pod called `namespace/name`. When an earlier pod of the same name is still terminating
 * beside its successor, the newest one wins: it is the one `kubectl logs` means.
 */
export function findPod(source: PodSource, pod: NamespacedName): V1Pod | undefined {
  const { namespace, name } = pod;
  const matches = source.pods().filter((p) =>
    p.metadata?.namespace === namespace && p.metadata?.name === name
  );
  return matches.sort((a, b) =>
    creationMillis(b) - creationMillis(a) || Number(!!a.metadata?.deletionTimestamp) -
      Number(!!b.metadata?.deletionTimestamp)
  )[0];
}

/** The pod's creation time in ms since the epoch (0 when unknown). */
export function creationMillis(pod: V1Pod): number {
  const t = pod.metadata?.creationTimestamp;
  return t ? new Date(t).getTime() : 0;
}

/** One container of a pod, by its name: see {@link containerUnit}. */
export interface PodContainer {
  /** The pod, as {@link PodSource.pods} gave it. */
  pod: V1Pod;
  /** The container's name (init, app or ephemeral). */
  container: string;
}

/**
 * The unit of `container` in `pod`, or the answer when there is none: 404 for a container the
 * pod does not have, 400 (as the kubelet says of a container not yet created) while its unit
 * is not written.
 */
export function containerUnit(
  source: PodSource,
  ref: PodContainer,
): string | { status: 400 | 404; message: string } {
  const { pod, container } = ref;
  const unit = source.containerUnits(pod).get(container);
  if (unit) return unit;
  const { namespace, name } = pod.metadata!;
  const declared = [
    ...pod.spec?.initContainers ?? [],
    ...pod.spec?.containers ?? [],
    ...pod.spec?.ephemeralContainers ?? [],
  ].some((c) => c.name === container);
  return declared
    ? { status: 400, message: `container "${container}" in pod "${name}" is waiting to start` }
    : { status: 404, message: `container "${container}" not found in pod "${namespace}/${name}"` };
}

/** True while the unit has processes (or is getting them): what "running" means here. */
export function isRunning(props: UnitProperties): boolean {
  return ["active", "activating", "reloading", "deactivating"].includes(props.ActiveState) &&
    props.SubState !== "exited";
}
