/**
 * Static pods: Pods read from a directory of manifest files, like the kubelet's
 * `--pod-manifest-path`. This is the source of standalone mode (no API server at all).
 *
 * As the kubelet does, a static pod's name gets the node name appended and its UID is a hash
 * of its manifest, its file and the node: editing a manifest replaces the pod.
 *
 * @module
 */
import type { V1ConfigMap, V1Pod, V1Secret } from "@kubernetes/client-node";
import { createHash } from "node:crypto";
import { parseManifests } from "../plan/manifest.ts";

/** One file that could not be used, and why. */
export interface ManifestError {
  file: string;
  message: string;
}

/** What a manifest directory holds. */
export interface ManifestSet {
  pods: V1Pod[];
  configMaps: V1ConfigMap[];
  secrets: V1Secret[];
  errors: ManifestError[];
  /** Files that parsed, so a caller can keep the last good version of the others. */
  goodFiles: Set<string>;
}

const MANIFEST = /\.(ya?ml|json)$/;

/** Reads every `*.yaml`, `*.yml` and `*.json` file of `dir` (not recursive, hidden files skipped). */
export async function readManifestDir(dir: string, nodeName: string): Promise<ManifestSet> {
  const set: ManifestSet = {
    pods: [],
    configMaps: [],
    secrets: [],
    errors: [],
    goodFiles: new Set(),
  };
  const files = [];
  for await (const entry of Deno.readDir(dir)) {
    if (
      (entry.isFile || entry.isSymlink) && MANIFEST.test(entry.name) && !entry.name.startsWith(".")
    ) {
      files.push(`${dir}/${entry.name}`);
    }
  }
  for (const file of files.sort()) {
    try {
      const found = parseManifests(await Deno.readTextFile(file));
      set.pods.push(...found.pods.map((pod) => staticPod(pod, file, nodeName)));
      set.configMaps.push(...found.configMaps);
      set.secrets.push(...found.secrets);
      set.goodFiles.add(file);
    } catch (e) {
      set.errors.push({ file, message: (e as Error).message });
    }
  }
  return set;
}

/** The pod as the node runs it: namespaced, bound to the node, named and UID'd like the kubelet. */
export function staticPod(pod: V1Pod, file: string, nodeName: string): V1Pod {
  const manifest = JSON.stringify(pod);
  const uid = createHash("sha256").update(`${nodeName}\0${file}\0${manifest}`).digest("hex");
  const namespace = pod.metadata?.namespace ?? "default";
  return {
    ...pod,
    apiVersion: "v1",
    kind: "Pod",
    metadata: {
      ...pod.metadata,
      name: `${pod.metadata?.name}-${nodeName}`,
      namespace,
      uid: `${uid.slice(0, 8)}-${uid.slice(8, 12)}-${uid.slice(12, 16)}-${uid.slice(16, 20)}-${
        uid.slice(20, 32)
      }`,
      annotations: {
        ...pod.metadata?.annotations,
        "kubernetes.io/config.source": "file",
        "kubernetes.io/config.hash": uid.slice(0, 32),
        "systemk.io/manifest": file,
      },
    },
    spec: { restartPolicy: "Always", ...pod.spec!, nodeName },
  };
}
