/**
 * What the kubelet API needs to know about the node's pods, as one narrow interface the pod
 * runtime (or node mode) implements, and the helpers built on it: finding a pod by name, the
 * unit of each container, and which containers are running.
 *
 * @module
 */
import type { V1Pod } from "@kubernetes/client-node";
import type { CgroupUsage, UnitProperties } from "../unit/properties.ts";
import { unitName } from "../unit/name.ts";

/** The pods this node runs, as systemk sees them. */
export interface PodSource {
  /** Every pod currently assigned to (or running on) this node. */
  pods(): readonly V1Pod[];
}

/** Reads a unit's properties (systemd's `GetAll`), accounting included. */
export type UnitPropertiesReader = (unit: string) => Promise<UnitProperties>;

/** Reads a unit's cgroup path and what systemd accounts for it (a pod's slice). */
export type CgroupUsageReader = (unit: string) => Promise<CgroupUsage>;

/**
 * The pod called `namespace/name`. When an earlier pod of the same name is still terminating
 * beside its successor, the newest one wins: it is the one `kubectl logs` means.
 */
export function findPod(source: PodSource, namespace: string, name: string): V1Pod | undefined {
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

/** Each container's unit name: init, app then ephemeral containers, in spec order. */
export function containerUnits(pod: V1Pod): Map<string, string> {
  const m = pod.metadata!;
  const containers = [
    ...pod.spec?.initContainers ?? [],
    ...pod.spec?.containers ?? [],
    ...pod.spec?.ephemeralContainers ?? [],
  ];
  return new Map(containers.map((c) => [c.name, unitName(m.namespace!, m.name!, c.name)]));
}

/** True while the unit has processes (or is getting them): what "running" means here. */
export function isRunning(props: UnitProperties): boolean {
  return ["active", "activating", "reloading", "deactivating"].includes(props.ActiveState) &&
    props.SubState !== "exited";
}
