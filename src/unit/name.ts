/**
 * Unit names: one `.service` per container, `systemk.<namespace>.<pod>.<container>.service`,
 * inside one slice per pod, `systemk-pod<uid>.slice` (under `systemk.slice`). Names are only ever
 * computed from a pod, never parsed back (pod names contain dots); the identity lives in the
 * `[X-Kubernetes]` section.
 *
 * @module
 */
import { createHash } from "node:crypto";
import { UnitValueError } from "./errors.ts";

/** systemd's UNIT_NAME_MAX is 256 including the NUL byte. */
const UNIT_NAME_MAX = 255;
const PREFIX = "systemk.";
const SUFFIX = ".service";
const HASH_LENGTH = 10;
/**
 * Separates the truncated name from the hash in a shortened name. `_` never occurs in a
 * Kubernetes name, so a shortened name can never equal a full one.
 */
const HASH_SEPARATOR = "_";

const DNS1123_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

function checkLabel(what: string, value: string): void {
  if (value.length > 63 || !DNS1123_LABEL.test(value)) {
    throw new UnitValueError(`${what} ${JSON.stringify(value)} is not a DNS-1123 label`);
  }
}

function checkSubdomain(what: string, value: string): void {
  if (value.length > 253 || !value.split(".").every((label) => DNS1123_LABEL.test(label))) {
    throw new UnitValueError(`${what} ${JSON.stringify(value)} is not a DNS-1123 subdomain`);
  }
}

/**
 * systemd's `unit_name_is_valid()` for a plain (non-template) unit name: at most 255 bytes,
 * characters `[A-Za-z0-9:_.\\-]`, a non-empty prefix and a known type suffix.
 *
 * @example
 * ```ts
 * isValidUnitName("systemk.default.web.nginx.service"); // true
 * isValidUnitName("a b.service"); // false
 * ```
 */
export function isValidUnitName(name: string): boolean {
  const dot = name.lastIndexOf(".");
  return name.length <= UNIT_NAME_MAX && dot > 0 &&
    /^[A-Za-z0-9:_.\\-]+$/.test(name.slice(0, dot)) &&
    /^(service|socket|target|device|mount|automount|swap|timer|path|slice|scope)$/.test(
      name.slice(dot + 1),
    );
}

/** A pod by its namespace and name: the Kubernetes `NamespacedName`. */
export interface NamespacedName {
  /** The pod's namespace, a DNS-1123 label. */
  namespace: string;
  /** The pod's name, a DNS-1123 subdomain. */
  name: string;
}

/**
 * The unit of one container: `systemk.<namespace>.<pod>.<container>.service`. When that would
 * exceed systemd's 255 bytes, the middle is truncated and `_` plus the first 10 hex digits of the
 * SHA-256 of `namespace/pod/container` are appended, so the name stays unique and deterministic.
 *
 * Throws {@link UnitValueError} unless namespace and container are DNS-1123 labels and pod is
 * a DNS-1123 subdomain (what the API server admits).
 *
 * @example
 * ```ts
 * unitName({ namespace: "default", name: "web-0" }, "nginx");
 * // "systemk.default.web-0.nginx.service"
 * ```
 */
export function unitName(pod: NamespacedName, container: string): string {
  const { namespace, name } = pod;
  checkLabel("namespace", namespace);
  checkSubdomain("pod name", name);
  checkLabel("container name", container);
  const body = `${namespace}.${name}.${container}`;
  const full = PREFIX + body + SUFFIX;
  if (full.length <= UNIT_NAME_MAX) return full;
  const hash = createHash("sha256").update(`${namespace}/${name}/${container}`).digest("hex");
  const room = UNIT_NAME_MAX - PREFIX.length - SUFFIX.length - HASH_SEPARATOR.length - HASH_LENGTH;
  return PREFIX + body.slice(0, room) + HASH_SEPARATOR + hash.slice(0, HASH_LENGTH) + SUFFIX;
}

/** The slice every pod's slice sits in: systemd makes it implicitly, as the parent of theirs. */
export const PODS_SLICE = "systemk.slice";
const POD_SLICE_PREFIX = "systemk-pod";
const SLICE_SUFFIX = ".slice";

/**
 * The slice of the pod with UID `uid`: `systemk-pod<uid>.slice`, its dashes written as `_`
 * (in a slice name a dash means "child of", the kubelet's systemd driver does the same with
 * `kubepods-pod<uid>.slice`), so it is a child of {@link PODS_SLICE}. A UID that would make the
 * name longer than systemd's 255 bytes is replaced by the first 32 hex digits of its SHA-256.
 *
 * Throws {@link UnitValueError} when `uid` is empty or holds other characters than
 * `[A-Za-z0-9._-]` (a UID as the API server makes them is 36 characters of hex and dashes).
 *
 * @example
 * ```ts
 * podSliceName("0b0a7e4c-1d2e-4f3a-9b8c-7d6e5f4a3b2c");
 * // "systemk-pod0b0a7e4c_1d2e_4f3a_9b8c_7d6e5f4a3b2c.slice"
 * ```
 */
export function podSliceName(uid: string): string {
  if (!/^[A-Za-z0-9._-]+$/.test(uid)) {
    throw new UnitValueError(`pod UID ${JSON.stringify(uid)} cannot name a slice`);
  }
  const name = POD_SLICE_PREFIX + uid.replaceAll("-", "_") + SLICE_SUFFIX;
  if (name.length <= UNIT_NAME_MAX) return name;
  const hash = createHash("sha256").update(uid).digest("hex").slice(0, 32);
  return POD_SLICE_PREFIX + hash + SLICE_SUFFIX;
}

/** Whether `name` is a pod's slice as {@link podSliceName} makes them. */
export function isPodSliceName(name: string): boolean {
  return name.startsWith(POD_SLICE_PREFIX) && name.endsWith(SLICE_SUFFIX) &&
    /^[A-Za-z0-9._]+$/.test(name.slice(POD_SLICE_PREFIX.length, -SLICE_SUFFIX.length)) &&
    name.length <= UNIT_NAME_MAX;
}
