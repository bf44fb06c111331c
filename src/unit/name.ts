/**
 * Unit names: one `.service` per container, `systemk.<namespace>.<pod>.<container>.service`.
 * Names are only ever computed from a pod, never parsed back (pod names contain dots); the
 * identity lives in the `[X-Kubernetes]` section.
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
 * unitName("default", "web-0", "nginx"); // "systemk.default.web-0.nginx.service"
 * ```
 */
export function unitName(namespace: string, pod: string, container: string): string {
  checkLabel("namespace", namespace);
  checkSubdomain("pod name", pod);
  checkLabel("container name", container);
  const body = `${namespace}.${pod}.${container}`;
  const full = PREFIX + body + SUFFIX;
  if (full.length <= UNIT_NAME_MAX) return full;
  const hash = createHash("sha256").update(`${namespace}/${pod}/${container}`).digest("hex");
  const room = UNIT_NAME_MAX - PREFIX.length - SUFFIX.length - HASH_SEPARATOR.length - HASH_LENGTH;
  return PREFIX + body.slice(0, room) + HASH_SEPARATOR + hash.slice(0, HASH_LENGTH) + SUFFIX;
}
