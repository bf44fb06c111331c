/**
 * Kubernetes manifests (multi-document YAML or JSON, `kind: List` included) → the Pods,
 * ConfigMaps, Secrets, PersistentVolumeClaims and PersistentVolumes they contain, for
 * `systemk plan` and golden tests.
 *
 * YAML is read as YAML 1.1, as kubectl reads it, so `defaultMode: 0644` is octal.
 *
 * @module
 */
import type {
  V1ConfigMap,
  V1PersistentVolume,
  V1PersistentVolumeClaim,
  V1Pod,
  V1Secret,
} from "@kubernetes/client-node";
import { parseAllDocuments } from "yaml";

/** The objects of a manifest, by kind, in document order. */
export interface Manifests {
  pods: V1Pod[];
  configMaps: V1ConfigMap[];
  secrets: V1Secret[];
  /** Always present in what {@link parseManifests} returns. */
  persistentVolumeClaims?: V1PersistentVolumeClaim[];
  /** Always present in what {@link parseManifests} returns. */
  persistentVolumes?: V1PersistentVolume[];
}

function add(out: Manifests, object: unknown, where: string): void {
  if (object === null || object === undefined) return;
  if (typeof object !== "object" || Array.isArray(object)) {
    throw new Error(`${where}: not a Kubernetes object`);
  }
  const o = object as { kind?: unknown; items?: unknown; metadata?: { name?: unknown } };
  if (o.kind === "List" || (typeof o.kind === "string" && o.kind.endsWith("List"))) {
    if (!Array.isArray(o.items)) throw new Error(`${where}: ${o.kind} without items`);
    o.items.forEach((item, i) => add(out, item, `${where}, item ${i}`));
    return;
  }
  if (typeof o.metadata?.name !== "string" || o.metadata.name === "") {
    throw new Error(`${where}: ${String(o.kind ?? "object")} without metadata.name`);
  }
  switch (o.kind) {
    case "Pod":
      out.pods.push(object as V1Pod);
      return;
    case "ConfigMap":
      out.configMaps.push(object as V1ConfigMap);
      return;
    case "Secret":
      out.secrets.push(object as V1Secret);
      return;
    case "PersistentVolumeClaim":
      out.persistentVolumeClaims!.push(object as V1PersistentVolumeClaim);
      return;
    case "PersistentVolume":
      out.persistentVolumes!.push(object as V1PersistentVolume);
      return;
  }
  throw new Error(
    `${where}: kind ${String(o.kind)} is not supported (expected Pod, ConfigMap, Secret, ` +
      "PersistentVolumeClaim, PersistentVolume or List)",
  );
}

/**
 * Parses manifests.
 *
 * @throws Error naming the document index (from 1) for syntax errors and unsupported objects.
 * @example Usage
 * ```ts
 * const { pods } = parseManifests("kind: Pod\nmetadata: {name: web}\nspec: {containers: []}");
 * ```
 */
export function parseManifests(text: string): Manifests {
  const out: Manifests = {
    pods: [],
    configMaps: [],
    secrets: [],
    persistentVolumeClaims: [],
    persistentVolumes: [],
  };
  const documents = parseAllDocuments(text, { version: "1.1" });
  const list = Array.isArray(documents) ? documents : [documents];
  list.forEach((doc, i) => {
    const where = `document ${i + 1}`;
    if (doc.errors.length > 0) throw new Error(`${where}: ${doc.errors[0].message}`);
    add(out, doc.toJS(), where);
  });
  return out;
}
