/**
 * Comparing pod statuses and patching only what changed, so the status writer skips no-op
 * writes and never touches fields systemk does not own.
 *
 * @module
 */
import type { V1PodStatus } from "@kubernetes/client-node";

/** The `status` fields systemk computes and writes; every other field belongs to others. */
export const OWNED_STATUS_FIELDS = [
  "phase",
  "conditions",
  "reason",
  "message",
  "hostIP",
  "hostIPs",
  "podIP",
  "podIPs",
  "startTime",
  "qosClass",
  "initContainerStatuses",
  "containerStatuses",
] as const;

/** Fields holding `metav1.Time`: a `Date`, or an RFC 3339 string when read as raw JSON/YAML. */
const TIME_FIELDS = new Set([
  "startTime",
  "lastTransitionTime",
  "lastProbeTime",
  "startedAt",
  "finishedAt",
]);

/** Lists whose order carries no meaning, and the key their entries are matched by. */
const UNORDERED_LISTS: Record<string, string> = {
  conditions: "type",
  containerStatuses: "name",
  initContainerStatuses: "name",
};

/** Lists a strategic merge patch merges by `ip` (so removals need a `$patch: delete`). */
const IP_LISTS = new Set(["hostIPs", "podIPs"]);

/**
 * Whether two statuses agree on every field systemk owns, as the API would store them: times
 * at whole seconds, `Date` and RFC 3339 string alike, unset / `null` / `""` / `[]` / `{}`
 * alike (the API omits them), conditions and container statuses in any order.
 *
 * @param a One status.
 * @param b The other.
 * @return True when writing `b` over `a` would change nothing systemk owns.
 *
 * @example Usage
 * ```ts
 * import { podStatusEqual } from "./patch.ts";
 * import assert from "node:assert/strict";
 * assert.equal(
 *   podStatusEqual({ startTime: new Date("2026-01-01T00:00:00.400Z") }, { startTime: "2026-01-01T00:00:00Z" as unknown as Date }),
 *   true,
 * );
 * ```
 */
export function podStatusEqual(a: V1PodStatus, b: V1PodStatus): boolean {
  return OWNED_STATUS_FIELDS.every((field) => sameField(a, b, field));
}

/** Options of `statusPatch`. */
export interface StatusPatchOptions {
  /**
   * The pod's UID: put into the patch as `metadata.uid`, a precondition that makes the API
   * server refuse the patch if the name now belongs to another pod (as the kubelet does).
   */
  uid?: string;
}

/** A strategic merge patch of a pod's `status` subresource. */
export interface StatusPatch {
  metadata?: { uid: string };
  status: Record<string, unknown>;
}

/**
 * A strategic merge patch (`application/strategic-merge-patch+json`, what the kubelet sends)
 * that turns `previous` into `next` on the fields systemk owns, or undefined when there is
 * nothing to change.
 *
 * Changed fields are sent whole; fields `next` lacks are sent as `null` (removed).
 * `conditions` merge by `type`, so conditions set by others in the meantime survive;
 * `hostIPs`/`podIPs` merge by `ip`, so addresses that went away are deleted explicitly.
 *
 * @param previous The status as last read or written.
 * @param next The status just computed.
 * @param options The pod's UID for the precondition.
 * @return The patch body, or undefined.
 *
 * @example Usage
 * ```ts
 * import { statusPatch } from "./patch.ts";
 * import assert from "node:assert/strict";
 * assert.deepEqual(statusPatch({ phase: "Pending" }, { phase: "Running" }), { status: { phase: "Running" } });
 * assert.equal(statusPatch({ phase: "Running" }, { phase: "Running" }), undefined);
 * ```
 */
export function statusPatch(
  previous: V1PodStatus,
  next: V1PodStatus,
  options: StatusPatchOptions = {},
): StatusPatch | undefined {
  const status: Record<string, unknown> = {};
  for (const field of OWNED_STATUS_FIELDS) {
    if (sameField(previous, next, field)) continue;
    const value = next[field];
    if (canonical(value, field) === undefined) {
      status[field] = null;
    } else if (IP_LISTS.has(field)) {
      const ips = value as { ip: string }[];
      const kept = new Set(ips.map((entry) => entry.ip));
      const removed = ((previous[field] ?? []) as { ip: string }[])
        .filter((entry) => !kept.has(entry.ip))
        .map((entry) => ({ ip: entry.ip, $patch: "delete" }));
      status[field] = [...ips, ...removed];
      status[`$setElementOrder/${field}`] = ips.map((entry) => ({ ip: entry.ip }));
    } else {
      status[field] = value;
    }
  }
  if (Object.keys(status).length === 0) return undefined;
  return options.uid ? { metadata: { uid: options.uid }, status } : { status };
}

function sameField(a: V1PodStatus, b: V1PodStatus, field: keyof V1PodStatus): boolean {
  return JSON.stringify(canonical(a[field], field)) === JSON.stringify(canonical(b[field], field));
}

/**
 * The form the API server would return `value` in: empty values dropped, times as whole
 * seconds, object keys sorted, unordered lists sorted by their key.
 */
function canonical(value: unknown, key: string): unknown {
  if (value === undefined || value === null || value === "") return undefined;
  if (TIME_FIELDS.has(key) && (value instanceof Date || typeof value === "string")) {
    const time = new Date(value).getTime();
    return Number.isNaN(time) ? value : new Date(Math.floor(time / 1000) * 1000).toISOString();
  }
  if (Array.isArray(value)) {
    const items = value.map((item) => canonical(item, "")).filter((item) => item !== undefined);
    const sortKey = UNORDERED_LISTS[key];
    if (sortKey) {
      const keyOf = (item: unknown) => String((item as Record<string, unknown>)[sortKey]);
      items.sort((x, y) => (keyOf(x) < keyOf(y) ? -1 : keyOf(x) > keyOf(y) ? 1 : 0));
    }
    return items.length > 0 ? items : undefined;
  }
  if (typeof value === "object") {
    const entries = Object.keys(value as object).sort()
      .map((k) => [k, canonical((value as Record<string, unknown>)[k], k)] as const)
      .filter(([, v]) => v !== undefined);
    return entries.length > 0 ? Object.fromEntries(entries) : undefined;
  }
  return value;
}
