/**
 * Mirror pods: the API's read-only picture of a static pod (one from the manifest directory,
 * which runs with or without an API server). Like the kubelet's, a mirror pod is named
 * `<pod>-<node>`, carries `kubernetes.io/config.mirror: <hash of the static pod>` and is
 * owned by the Node. The NodeRestriction admission plugin admits a node's pod creation only
 * in that shape: the mirror annotation, `spec.nodeName` = the node, exactly one owner
 * reference (v1 Node, its own name and current UID, `controller: true`, no
 * `blockOwnerDeletion`), and no reference to other API objects (service account, secrets,
 * configmaps, PVCs, resource claims, projected tokens).
 *
 * @module
 */
import type { V1Pod, V1Volume } from "@kubernetes/client-node";
import { httpStatus, type KubeClients } from "./client.ts";

/** Annotation that marks a mirror pod; its value is the static pod's config hash. */
export const MIRROR_ANNOTATION = "kubernetes.io/config.mirror";
/** The static pod's config hash (also on the static pod itself in the kubelet). */
export const CONFIG_HASH_ANNOTATION = "kubernetes.io/config.hash";
/** Where the static pod came from (`file`). */
export const CONFIG_SOURCE_ANNOTATION = "kubernetes.io/config.source";

/**
 * Whether a pod from the API is a mirror pod (so systemk must not run it: its static pod
 * already runs).
 */
export function isMirrorPod(pod: V1Pod): boolean {
  return pod.metadata?.annotations?.[MIRROR_ANNOTATION] !== undefined;
}

/**
 * Name of the mirror pod of a static pod, as the kubelet names it.
 *
 * @param podName the static pod's `metadata.name`.
 * @param nodeName node name.
 */
export function mirrorPodName(podName: string, nodeName: string): string {
  return `${podName}-${nodeName}`;
}

/** Sorted-key JSON, so equal manifests hash equally. */
function canonicalJSON(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJSON).join(",")}]`;
  if (value && typeof value === "object" && !(value instanceof Date)) {
    const obj = value as Record<string, unknown>;
    const keys = Object.keys(obj).filter((k) => obj[k] !== undefined).sort();
    return `{${keys.map((k) => `${JSON.stringify(k)}:${canonicalJSON(obj[k])}`).join(",")}}`;
  }
  return JSON.stringify(value);
}

/**
 * The config hash of a static pod: hex SHA-256 of its canonical JSON, first 32 digits. It
 * changes whenever the manifest does, which is how a stale mirror pod is recognised.
 *
 * @param pod the static pod as read from its manifest.
 */
export async function staticPodHash(pod: V1Pod): Promise<string> {
  const bytes = new TextEncoder().encode(canonicalJSON(pod));
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
  return [...digest].map((b) => b.toString(16).padStart(2, "0")).join("").slice(0, 32);
}

function volumeProblem(v: V1Volume): string | undefined {
  if (v.hostPath || v.emptyDir || v.downwardAPI) return undefined;
  if (v.projected) {
    const bad = (v.projected.sources ?? []).find((s) => !s.downwardAPI);
    return bad ? `projected volume ${v.name} (only downwardAPI sources)` : undefined;
  }
  return `volume ${v.name} (only hostPath, emptyDir and downwardAPI)`;
}

/**
 * What in a static pod NodeRestriction would refuse to mirror (references to other API
 * objects), so the caller can report it instead of meeting a 403.
 *
 * @param pod the static pod.
 * @return a description, or undefined when the pod can be mirrored.
 */
export function mirrorReferenceProblem(pod: V1Pod): string | undefined {
  const spec = pod.spec;
  if (!spec) return undefined;
  if (spec.serviceAccountName || spec.serviceAccount) return "serviceAccountName";
  if (spec.imagePullSecrets?.length) return "imagePullSecrets";
  if (spec.resourceClaims?.length) return "resourceClaims";
  const containers = [
    ...(spec.initContainers ?? []),
    ...(spec.containers ?? []),
    ...(spec.ephemeralContainers ?? []),
  ];
  for (const c of containers) {
    if (c.envFrom?.length) return `envFrom of container ${c.name}`;
    const ref = c.env?.find((e) => e.valueFrom?.configMapKeyRef || e.valueFrom?.secretKeyRef);
    if (ref) return `env ${ref.name} of container ${c.name} (configMap/secret reference)`;
  }
  for (const v of spec.volumes ?? []) {
    const problem = volumeProblem(v);
    if (problem) return problem;
  }
  return undefined;
}

/**
 * The mirror pod of a static pod.
 *
 * @param staticPod the static pod from its manifest.
 * @param options node name and UID, and the static pod's config hash.
 */
export function buildMirrorPod(
  staticPod: V1Pod,
  options: { nodeName: string; nodeUID: string; hash: string },
): V1Pod {
  const m = staticPod.metadata ?? {};
  return {
    apiVersion: "v1",
    kind: "Pod",
    metadata: {
      name: mirrorPodName(m.name ?? "", options.nodeName),
      namespace: m.namespace || "default",
      labels: m.labels,
      annotations: {
        ...m.annotations,
        [MIRROR_ANNOTATION]: options.hash,
        [CONFIG_HASH_ANNOTATION]: options.hash,
        [CONFIG_SOURCE_ANNOTATION]: "file",
      },
      ownerReferences: [{
        apiVersion: "v1",
        kind: "Node",
        name: options.nodeName,
        uid: options.nodeUID,
        controller: true,
      }],
    },
    spec: { ...staticPod.spec!, nodeName: options.nodeName },
  };
}

/**
 * Creates a mirror pod.
 *
 * @param clients API clients of the node identity.
 * @param mirror from {@link buildMirrorPod}.
 * @return the created pod, or `exists` when a pod of that name is already there (compare its
 * mirror annotation with the hash; if stale, delete it with `deletePodObject` and create again).
 * @throws other API errors (403 when NodeRestriction refuses it).
 */
export async function createMirrorPod(
  clients: Pick<KubeClients, "core">,
  mirror: V1Pod,
): Promise<V1Pod | "exists"> {
  try {
    return await clients.core.createNamespacedPod({
      namespace: mirror.metadata?.namespace ?? "default",
      body: mirror,
    });
  } catch (err) {
    if (httpStatus(err) === 409) return "exists";
    throw err;
  }
}
