/**
 * Test helpers of the kubelet API: a pod source over fixed pods whose containers' units are
 * written under their usual names, as the pod runtime writes them.
 *
 * @module
 */
import type { V1Pod } from "@kubernetes/client-node";
import { unitName } from "../unit/name.ts";
import type { UnitProperties } from "../unit/properties.ts";
import type { PodSource } from "./pods.ts";

/** A {@link PodSource} of `pods`, each unit's state as `unitState` says. */
export function fixedPods(
  pods: () => V1Pod[],
  unitState: (unit: string) => UnitProperties | undefined = () => undefined,
): PodSource {
  return {
    pods,
    containerUnits(pod) {
      const { namespace, name } = pod.metadata!;
      const containers = [
        ...pod.spec?.initContainers ?? [],
        ...pod.spec?.containers ?? [],
        ...pod.spec?.ephemeralContainers ?? [],
      ];
      return new Map(
        containers.map((c) => [c.name, unitName({ namespace: namespace!, name: name! }, c.name)]),
      );
    },
    unitState,
  };
}
