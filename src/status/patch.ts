/**
 * The wire side of a pod status, pure: which fields systemk owns, a canonical key of them to
 * tell whether the API already shows what systemk wants, and the strategic merge patch that
 * writes them (src/kube/status.ts sends it).
 *
 * @module
 */
import type { V1PodStatus } from "@kubernetes/client-node";
import { ObjectSerializer } from "@kubernetes/client-node/dist/serializer.js";
import { isKubeletCondition, KUBELET_CONDITION_TYPES } from "./conditions.ts";

/** Status fields systemk owns; everything else in `status` is left to others. */
export const OWNED_STATUS_FIELDS = [
  "observedGeneration",
  "phase",
  "conditions",
  "message",
  "reason",
  "hostIP",
  "hostIPs",
  "podIP",
  "podIPs",
  "startTime",
  "qosClass",
  "initContainerStatuses",
  "containerStatuses",
  "ephemeralContainerStatuses",
] as const;

/** Owned fields written when given but never cleared: the apiserver keeps them immutable. */
const STICKY_FIELDS: ReadonlySet<string> = new Set(["qosClass"]);

function isEmpty(value: unknown): boolean {
  return value === undefined || value === null || value === "" ||
    (Array.isArray(value) && value.length === 0);
}

/** A plain-JSON pod status (times as strings), as sent over the wire. */
export type PlainStatus = Record<string, unknown>;

/** The wire form of a client-node status (Dates → RFC 3339 strings). */
export function plain(status: V1PodStatus | undefined): PlainStatus {
  return (status ? ObjectSerializer.serialize(status, "V1PodStatus") : {}) as PlainStatus;
}

const TIMESTAMP = /^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(\.\d+)?Z$/;

/** Equal meaning ⇒ equal output: sorted keys, empty values dropped, times to the second. */
function normalize(value: unknown): unknown {
  if (typeof value === "string") {
    const m = TIMESTAMP.exec(value);
    return m ? `${m[1]}Z` : value || undefined;
  }
  if (Array.isArray(value)) {
    const items = value.map(normalize).filter((v) => v !== undefined);
    return items.length ? items : undefined;
  }
  if (value && typeof value === "object") {
    const entries = Object.keys(value).sort()
      .map((k) => [k, normalize((value as Record<string, unknown>)[k])] as const)
      .filter(([, v]) => v !== undefined);
    return entries.length ? Object.fromEntries(entries) : undefined;
  }
  return value ?? undefined;
}

/** What a comparison of two statuses looks at. */
export interface KeyScope {
  /** Owned fields compared. */
  fields: readonly string[];
  /**
   * Condition types compared (others' conditions, e.g. readiness gates, are theirs), besides
   * the `DisruptionTarget` systemk sets itself ({@link isKubeletCondition}).
   */
  conditionTypes: ReadonlySet<string>;
}

/** The condition types systemk writes: the kubelet's. Others' (readiness gates) are theirs. */
const OWNED_CONDITION_TYPES: ReadonlySet<string> = new Set(KUBELET_CONDITION_TYPES);

/**
 * What to compare for a desired status: the owned fields, except `qosClass` when the desired
 * status leaves it to the apiserver (which sets it at creation and keeps it immutable), and
 * the kubelet's condition types. A desired status carries others' conditions as it last saw
 * them (a readiness gate's); writing them back would undo their owner's later change. Equal
 * scopes are the same object.
 *
 * @param desired plain desired status.
 */
export function keyScope(desired: PlainStatus): KeyScope {
  const fields = OWNED_STATUS_FIELDS.filter((f) => !STICKY_FIELDS.has(f) || !isEmpty(desired[f]));
  const id = fields.join();
  let scope = SCOPES.get(id);
  if (!scope) SCOPES.set(id, scope = { fields, conditionTypes: OWNED_CONDITION_TYPES });
  return scope;
}

/**
 * The scopes {@link keyScope} has returned, by their fields: one object per distinct scope, so
 * that an unchanged scope is the same object and keys computed with it need not be again.
 */
const SCOPES = new Map<string, KeyScope>();

/**
 * A canonical string of the part of a status in `scope`: equal meaning gives equal strings
 * (key order, empty values, Date vs string, sub-second digits do not matter).
 *
 * @param status plain status (wire form).
 * @param scope from {@link keyScope}.
 */
export function ownedStatusKey(status: PlainStatus, scope: KeyScope): string {
  const owned: Record<string, unknown> = {};
  for (const field of scope.fields) owned[field] = status[field];
  const conditions = (status.conditions as { type?: string }[] | undefined) ?? [];
  owned.conditions = conditions
    .filter((c) => scope.conditionTypes.has(c.type ?? "") || isKubeletCondition(c))
    .sort((a, b) => (a.type ?? "").localeCompare(b.type ?? ""));
  return JSON.stringify(normalize(owned) ?? {});
}

/**
 * Whether `current` already says what `desired` says, in the fields and conditions systemk
 * owns: the test the writer uses to skip no-op writes.
 *
 * @param current a status as read back from the API (Dates or RFC 3339 strings).
 * @param desired the status systemk computed.
 */
export function sameOwnedStatus(current: V1PodStatus, desired: V1PodStatus): boolean {
  const want = plain(desired);
  const scope = keyScope(want);
  return ownedStatusKey(plain(current), scope) === ownedStatusKey(want, scope);
}

/** Options of {@link statusPatch}. */
export interface StatusPatchOptions {
  /**
   * The status as the API shows it now (plain), when known. A condition merges by type, field
   * by field: a field the API's condition has and the desired one lacks (the `reason` and
   * `message` of an earlier `False`) is sent as `null`, as the kubelet's two-way patch does,
   * or the API would keep it.
   */
  current?: PlainStatus;
}

/**
 * The strategic merge patch body that sets the owned fields to `desired`: absent fields
 * become `null` (deleted), the kubelet's conditions merge by type (fields the current
 * condition has and the desired lacks become `null`, and one the desired status lacks is
 * deleted; others' conditions are not sent), pod and host IP lists are replaced (their merge key would
 * keep stale addresses), and `metadata.uid` makes the write fail on a pod re-created under
 * the same name.
 *
 * @param uid UID of the pod incarnation the status belongs to.
 * @param desired plain desired status.
 * @param options the API's current status.
 */
export function statusPatch(
  uid: string,
  desired: PlainStatus,
  options: StatusPatchOptions = {},
): Record<string, unknown> {
  const status: Record<string, unknown> = {};
  for (const field of OWNED_STATUS_FIELDS) {
    const value = desired[field];
    if (isEmpty(value)) {
      // Conditions merge by type: leaving them out keeps everyone's, ours included.
      if (field !== "conditions" && !STICKY_FIELDS.has(field)) status[field] = null;
    } else if (field === "hostIPs" || field === "podIPs") {
      status[field] = [{ $patch: "replace" }, ...(value as unknown[])];
    } else if (field === "conditions") {
      const owned = (value as Condition[]).filter((c) => isKubeletCondition(c));
      status[field] = clearedConditionFields(owned, options.current?.conditions);
    } else status[field] = value;
  }
  return { metadata: { uid }, status };
}

/** A plain pod condition. */
type Condition = Record<string, unknown> & { type?: string };

/**
 * `desired`, each condition with `null` for the fields its current counterpart has beyond it,
 * and a `$patch: delete` for each of our conditions the API shows but `desired` lacks (a
 * `PodResizePending` whose resize was allocated).
 */
function clearedConditionFields(desired: Condition[], current: unknown): Condition[] {
  const before = new Map(((current ?? []) as Condition[]).map((c) => [c.type, c]));
  const kept = desired.map((condition) => {
    const stale = Object.keys(before.get(condition.type) ?? {})
      .filter((key) => isEmpty(condition[key]));
    return stale.length
      ? { ...condition, ...Object.fromEntries(stale.map((key) => [key, null])) }
      : condition;
  });
  const gone = [...before.keys()].filter((type) =>
    OWNED_CONDITION_TYPES.has(type ?? "") && !desired.some((c) => c.type === type)
  );
  return [...kept, ...gone.map((type) => ({ type, $patch: "delete" }))];
}

/**
 * Fills `podIPs` / `hostIPs` from `podIP` / `hostIP` when only the single address is given:
 * the apiserver requires the list's first entry to match, and clearing the list while setting
 * the address would be refused.
 *
 * @param status plain status.
 * @return the status, with the lists completed.
 */
export function completeIPLists(status: PlainStatus): PlainStatus {
  const out = { ...status };
  if (!isEmpty(out.podIP) && isEmpty(out.podIPs)) out.podIPs = [{ ip: out.podIP }];
  if (!isEmpty(out.hostIP) && isEmpty(out.hostIPs)) out.hostIPs = [{ ip: out.hostIP }];
  return out;
}
