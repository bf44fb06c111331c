/**
 * Which ConfigMaps and Secrets a pod references: volumes (also projected sources), env
 * `valueFrom` and `envFrom`, of init and app containers; and which PersistentVolumeClaims its
 * volumes claim. Image pull secrets are left out: systemk pulls no container images.
 *
 * @module
 */
import type { V1Container, V1Pod } from "@kubernetes/client-node";

/** Referenced object names, each listed once, in first-seen order. */
export interface PodReferences {
  configMaps: string[];
  secrets: string[];
  persistentVolumeClaims: string[];
}

/** Names of the ConfigMaps, Secrets and claims `pod` needs, in its own namespace. */
export function podReferences(pod: V1Pod): PodReferences {
  const configMaps = new Set<string>();
  const secrets = new Set<string>();
  const claims = new Set<string>();
  const add = (set: Set<string>, name: string | undefined) => name && set.add(name);
  for (const volume of pod.spec?.volumes ?? []) {
    add(configMaps, volume.configMap?.name);
    add(secrets, volume.secret?.secretName);
    add(claims, volume.persistentVolumeClaim?.claimName);
    for (const source of volume.projected?.sources ?? []) {
      add(configMaps, source.configMap?.name);
      add(secrets, source.secret?.name);
    }
  }
  const containers: V1Container[] = [
    ...(pod.spec?.initContainers ?? []),
    ...(pod.spec?.containers ?? []),
  ];
  for (const container of containers) {
    for (const env of container.env ?? []) {
      add(configMaps, env.valueFrom?.configMapKeyRef?.name);
      add(secrets, env.valueFrom?.secretKeyRef?.name);
    }
    for (const from of container.envFrom ?? []) {
      add(configMaps, from.configMapRef?.name);
      add(secrets, from.secretRef?.name);
    }
  }
  return {
    configMaps: [...configMaps],
    secrets: [...secrets],
    persistentVolumeClaims: [...claims],
  };
}
