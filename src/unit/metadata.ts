/**
 * The `[X-Kubernetes]` section: who a unit belongs to, stored in the unit file itself so that
 * systemd stays the only source of truth. systemd ignores `X-` sections. Every value is a JSON
 * literal on one line (strings quoted and escaped, so any image string or name round-trips).
 *
 * @module
 */
import { isNoncharacter } from "./text.ts";
import type { UnitFile, UnitSection } from "./types.ts";

/** Name of the metadata section. */
export const METADATA_SECTION = "X-Kubernetes";

/** Identity and bookkeeping stored in a unit's `[X-Kubernetes]` section. */
export interface KubernetesMetadata {
  /** The pod's namespace. */
  namespace: string;
  /** The pod's name. */
  podName: string;
  /** The pod's UID: tells a pod from a later one with the same name. */
  podUID: string;
  /** The container's name within the pod. */
  containerName: string;
  /** Whether this is an init container. */
  init: boolean;
  /** The container's image string, as given. */
  image: string;
  /** The node the unit was written for. */
  nodeName: string;
  /** Hash of the container spec (and what it was resolved with), to detect changes. */
  containerHash: string;
  /** Position among init containers or app containers, for ordering. */
  index: number;
  /**
   * The container's `resources` the unit applies, as JSON (`{"limits":{"cpu":"1"}}`): what it
   * runs with, for in-place resize. Absent in units of systemk before it.
   */
  resources?: string;
}

/** What a pod's slice records: whose it is. */
export type PodMetadata = Pick<KubernetesMetadata, "namespace" | "podName" | "podUID" | "nodeName">;

type StringField = Exclude<keyof KubernetesMetadata, "init" | "index" | "resources">;

/** Unit-file key of each string field, in the order they are written. */
const STRING_KEYS: ReadonlyArray<[string, StringField]> = [
  ["Namespace", "namespace"],
  ["PodName", "podName"],
  ["PodUID", "podUID"],
  ["ContainerName", "containerName"],
  ["Image", "image"],
  ["NodeName", "nodeName"],
  ["ContainerHash", "containerHash"],
];

/**
 * `value` as a JSON string literal that systemd accepts on a line: noncharacters (which make
 * systemd refuse the whole file) written as `\uXXXX` escapes, as JSON allows.
 */
function jsonLiteral(value: string): string {
  let out = "";
  for (const ch of JSON.stringify(value)) {
    if (!isNoncharacter(ch.codePointAt(0)!)) out += ch;
    else for (let i = 0; i < ch.length; i++) out += "\\u" + ch.charCodeAt(i).toString(16);
  }
  return out;
}

/**
 * The `[X-Kubernetes]` section holding `meta` (keys Namespace, PodName, PodUID,
 * ContainerName, InitContainer, Image, NodeName, ContainerHash, Index).
 *
 * @example
 * ```ts
 * metadataSection({
 *   namespace: "default", podName: "web", podUID: "1f2e", containerName: "nginx", init: false,
 *   image: "nginx", nodeName: "node-1", containerHash: "ab12", index: 0,
 * }).lines[0]; // { kind: "directive", key: "Namespace", value: '"default"' }
 * ```
 */
export function metadataSection(meta: KubernetesMetadata): UnitSection {
  if (!Number.isSafeInteger(meta.index) || meta.index < 0) {
    throw new RangeError(`container index ${meta.index} is not a non-negative integer`);
  }
  const lines: UnitSection["lines"] = STRING_KEYS.map(([key, field]) => ({
    kind: "directive",
    key,
    value: jsonLiteral(meta[field]),
  }));
  lines.splice(4, 0, { kind: "directive", key: "InitContainer", value: meta.init ? "yes" : "no" });
  lines.push({ kind: "directive", key: "Index", value: String(meta.index) });
  if (meta.resources !== undefined) {
    lines.push({ kind: "directive", key: "Resources", value: jsonLiteral(meta.resources) });
  }
  return { name: METADATA_SECTION, lines };
}

/** The keys of {@link PodMetadata}, in the order they are written. */
const POD_KEYS = STRING_KEYS.filter(([, field]) =>
  field === "namespace" || field === "podName" || field === "podUID" || field === "nodeName"
);

/**
 * The `[X-Kubernetes]` section of a pod's slice (keys Namespace, PodName, PodUID, NodeName).
 *
 * @example
 * ```ts
 * podMetadataSection({ namespace: "default", podName: "web", podUID: "1f2e", nodeName: "n1" })
 *   .lines.length; // 4
 * ```
 */
export function podMetadataSection(meta: PodMetadata): UnitSection {
  return {
    name: METADATA_SECTION,
    lines: POD_KEYS.map(([key, field]) => ({
      kind: "directive",
      key,
      value: jsonLiteral(meta[field as keyof PodMetadata]),
    })),
  };
}

/** The `[X-Kubernetes]` assignments of `unit`, the last of a key winning as in systemd. */
function metadataValues(unit: UnitFile): Map<string, string> {
  const values = new Map<string, string>();
  for (const section of unit.sections) {
    if (section.name !== METADATA_SECTION) continue;
    for (const line of section.lines) {
      if (line.kind === "directive") values.set(line.key, line.value);
    }
  }
  return values;
}

/** The JSON string values of `keys`, or undefined when one is missing or malformed. */
function readStrings<F extends string>(
  values: Map<string, string>,
  keys: ReadonlyArray<readonly [string, F]>,
): Record<F, string> | undefined {
  const out: Partial<Record<F, string>> = {};
  for (const [key, field] of keys) {
    const raw = values.get(key);
    if (raw === undefined) return undefined;
    let value: unknown;
    try {
      value = JSON.parse(raw);
    } catch {
      return undefined;
    }
    if (typeof value !== "string") return undefined;
    out[field] = value;
  }
  return out as Record<F, string>;
}

/**
 * Reads a pod slice's `[X-Kubernetes]` section back; undefined when it is absent, a key is
 * missing or a value is malformed.
 */
export function readPodMetadata(unit: UnitFile): PodMetadata | undefined {
  return readStrings(metadataValues(unit), POD_KEYS) as PodMetadata | undefined;
}

/**
 * Reads the `[X-Kubernetes]` section back (the last assignment of a key wins, as in systemd);
 * undefined when the section is absent, a key is missing, or a value is malformed.
 *
 * @example
 * ```ts
 * const meta = readMetadata(parseUnit(text));
 * if (meta) console.log(meta.namespace, meta.podName);
 * ```
 */
export function readMetadata(unit: UnitFile): KubernetesMetadata | undefined {
  const values = metadataValues(unit);
  const init = values.get("InitContainer");
  const index = values.get("Index");
  if (
    (init !== "yes" && init !== "no") || index === undefined || !/^(0|[1-9][0-9]*)$/.test(index)
  ) {
    return undefined;
  }
  if (!Number.isSafeInteger(Number(index))) return undefined;
  const strings = readStrings(values, STRING_KEYS);
  const resources = values.has("Resources")
    ? readStrings(values, [["Resources", "resources"]])?.resources
    : undefined;
  if (values.has("Resources") && resources === undefined) return undefined;
  return strings && {
    ...strings,
    init: init === "yes",
    index: Number(index),
    ...(resources !== undefined ? { resources } : {}),
  };
}
