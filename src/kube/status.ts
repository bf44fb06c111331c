/**
 * The only writer of `pods/<name>/status`. Callers say what a pod's status should be; the
 * writer coalesces per pod (latest wins), skips writes the API already reflects, patches only
 * the fields systemk owns (so fields and conditions others set survive), refuses to touch a
 * pod re-created under the same name (UID precondition), retries with backoff, and re-asserts
 * its status when someone else overwrites it (e.g. the node lifecycle controller marking pods
 * NotReady while the node was unreachable).
 *
 * @module
 */
import type { V1Pod, V1PodStatus } from "@kubernetes/client-node";
import { ObjectSerializer } from "@kubernetes/client-node/dist/serializer.js";
import {
  consoleLogger,
  describeError,
  httpStatus,
  type KubeClients,
  type KubeLogger,
  STRATEGIC_MERGE_PATCH,
} from "./client.ts";
import { backoffDelay } from "./_timer.ts";
import { KUBELET_CONDITION_TYPES } from "../status/conditions.ts";
import { statusWriteDuration, statusWriteErrors } from "../metrics/mod.ts";

/** Identifies one incarnation of a pod. */
export interface PodRef {
  namespace: string;
  name: string;
  uid: string;
}

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
] as const;

/** Owned fields written when given but never cleared: the apiserver keeps them immutable. */
const STICKY_FIELDS: ReadonlySet<string> = new Set(["qosClass"]);

function isEmpty(value: unknown): boolean {
  return value === undefined || value === null || value === "" ||
    (Array.isArray(value) && value.length === 0);
}

/** A plain-JSON pod status (times as strings), as sent over the wire. */
type PlainStatus = Record<string, unknown>;

/** The wire form of a client-node status (Dates → RFC 3339 strings). */
function plain(status: V1PodStatus | undefined): PlainStatus {
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
  /** Condition types compared (others' conditions, e.g. readiness gates, are theirs). */
  conditionTypes: ReadonlySet<string>;
}

/**
 * What to compare for a desired status: the owned fields, except `qosClass` when the desired
 * status leaves it to the apiserver (which sets it at creation and keeps it immutable), and
 * the kubelet's condition types plus the desired ones.
 *
 * @param desired plain desired status.
 */
export function keyScope(desired: PlainStatus): KeyScope {
  const types = ((desired.conditions ?? []) as { type?: string }[]).map((c) => c.type ?? "");
  return {
    fields: OWNED_STATUS_FIELDS.filter((f) => !STICKY_FIELDS.has(f) || !isEmpty(desired[f])),
    conditionTypes: new Set([...KUBELET_CONDITION_TYPES, ...types]),
  };
}

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
    .filter((c) => scope.conditionTypes.has(c.type ?? ""))
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

/**
 * The strategic merge patch body that sets the owned fields to `desired`: absent fields
 * become `null` (deleted), conditions merge by type, pod and host IP lists are replaced
 * (their merge key would keep stale addresses), and `metadata.uid` makes the write fail on a
 * pod re-created under the same name.
 *
 * @param uid UID of the pod incarnation the status belongs to.
 * @param desired plain desired status.
 */
export function statusPatch(uid: string, desired: PlainStatus): Record<string, unknown> {
  const status: Record<string, unknown> = {};
  for (const field of OWNED_STATUS_FIELDS) {
    const value = desired[field];
    if (isEmpty(value)) {
      // Conditions merge by type: leaving them out keeps everyone's, ours included.
      if (field !== "conditions" && !STICKY_FIELDS.has(field)) status[field] = null;
    } else if (field === "hostIPs" || field === "podIPs") {
      status[field] = [{ $patch: "replace" }, ...(value as unknown[])];
    } else status[field] = value;
  }
  return { metadata: { uid }, status };
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

/** Per pod: what we want, what we last wrote, what the API showed. */
interface Entry {
  ref: PodRef;
  desired?: PlainStatus;
  scope: KeyScope;
  desiredKey?: string;
  /** desiredKey of the last successful write. */
  writtenKey?: string;
  /** The API's owned status right after our last write. */
  apiKey?: string;
  /** The API's owned status as last observed (write response or watch). */
  observedKey?: string;
  /** desiredKey the apiserver refused as invalid (422): not retried until the desire changes. */
  rejectedKey?: string;
  /** The last observed plain status, kept only until a desired status arrives to compare. */
  observed?: PlainStatus;
  inFlight?: Promise<void>;
  timer?: ReturnType<typeof setTimeout>;
  attempt: number;
}

/** Options of a {@link StatusWriter}. */
export interface StatusWriterOptions {
  clients: Pick<KubeClients, "core">;
  /** First retry delay; default 200 ms, doubling up to `retryMaxMs`. */
  retryBaseMs?: number;
  /** Largest retry delay; default 30 s. */
  retryMaxMs?: number;
  log?: KubeLogger;
}

/**
 * Writes pod statuses.
 *
 * @example Usage
 * ```ts
 * const writer = new StatusWriter({ clients });
 * writer.set({ namespace: "default", name: "web", uid }, { phase: "Running", ... });
 * // on every watch upsert of a pod on this node:
 * writer.reassert(pod);
 * // when the pod is gone:
 * writer.forget(uid);
 * ```
 */
export class StatusWriter {
  readonly #core: StatusWriterOptions["clients"]["core"];
  readonly #retryBaseMs: number;
  readonly #retryMaxMs: number;
  readonly #log: KubeLogger;
  readonly #entries = new Map<string, Entry>();
  #stopped = false;

  /** @param options clients and retry timing. */
  constructor(options: StatusWriterOptions) {
    this.#core = options.clients.core;
    this.#retryBaseMs = options.retryBaseMs ?? 200;
    this.#retryMaxMs = options.retryMaxMs ?? 30_000;
    this.#log = options.log ?? consoleLogger;
  }

  /** Number of pods the writer tracks. */
  get size(): number {
    return this.#entries.size;
  }

  /**
   * Sets the status a pod should have. Returns at once; the write happens in the background,
   * after any in-flight write of the same pod, with the latest status given by then.
   *
   * @param ref the pod incarnation.
   * @param status the complete status systemk computes (fields it leaves out are cleared).
   */
  set(ref: PodRef, status: V1PodStatus): void {
    if (this.#stopped) return;
    const entry = this.#entry(ref);
    entry.desired = completeIPLists(plain(status));
    entry.scope = keyScope(entry.desired);
    entry.desiredKey = ownedStatusKey(entry.desired, entry.scope);
    if (entry.observed) {
      entry.observedKey = ownedStatusKey(entry.observed, entry.scope);
      entry.observed = undefined;
    }
    this.#schedule(entry);
  }

  /**
   * Tells the writer what the API shows for a pod (call it on every watch upsert). If the
   * owned fields differ from what systemk last wrote, because someone else changed them, the
   * desired status is written again. For a pod not `set` yet the observation is kept, so a
   * first `set` equal to it (e.g. after a systemk restart) writes nothing.
   *
   * @param pod the pod as observed.
   */
  reassert(pod: V1Pod): void {
    const { uid, namespace = "", name = "" } = pod.metadata ?? {};
    if (!uid || this.#stopped) return;
    const entry = this.#entry({ namespace, name, uid });
    const observed = plain(pod.status);
    if (entry.desired) {
      entry.observedKey = ownedStatusKey(observed, entry.scope);
      this.#schedule(entry);
    } else entry.observed = observed;
  }

  /**
   * Drops a pod (deleted, or replaced by a new incarnation); a pending retry is cancelled.
   *
   * @param uid the pod's UID.
   */
  forget(uid: string): void {
    const entry = this.#entries.get(uid);
    if (entry) clearTimeout(entry.timer);
    this.#entries.delete(uid);
  }

  /** Resolves when no write is in flight or due (retries waiting for backoff excluded). */
  async idle(): Promise<void> {
    for (;;) {
      const busy = [...this.#entries.values()].map((e) => e.inFlight).filter(Boolean);
      if (busy.length === 0) return;
      await Promise.all(busy);
    }
  }

  /** Stops writing: cancels retries and waits for in-flight writes. */
  async stop(): Promise<void> {
    this.#stopped = true;
    for (const entry of this.#entries.values()) clearTimeout(entry.timer);
    await this.idle();
    this.#entries.clear();
  }

  #entry(ref: PodRef): Entry {
    let entry = this.#entries.get(ref.uid);
    if (!entry) {
      entry = { ref, scope: keyScope({}), attempt: 0 };
      this.#entries.set(ref.uid, entry);
    }
    return entry;
  }

  #needsWrite(e: Entry): boolean {
    if (!e.desiredKey || e.observedKey === e.desiredKey || e.desiredKey === e.rejectedKey) {
      return false;
    }
    return e.desiredKey !== e.writtenKey || e.observedKey !== e.apiKey;
  }

  #schedule(entry: Entry): void {
    // A retry timer or an in-flight write re-checks when it finishes.
    if (entry.inFlight || entry.timer || !this.#needsWrite(entry)) return;
    entry.inFlight = this.#write(entry).finally(() => {
      entry.inFlight = undefined;
      if (this.#entries.get(entry.ref.uid) === entry && !entry.timer) this.#schedule(entry);
    });
  }

  async #write(entry: Entry): Promise<void> {
    const { namespace, name, uid } = entry.ref;
    const desiredKey = entry.desiredKey;
    try {
      const pod = await statusWriteDuration.time({}, () =>
        this.#core.patchNamespacedPodStatus(
          { namespace, name, body: statusPatch(uid, entry.desired!) },
          STRATEGIC_MERGE_PATCH,
        ));
      entry.attempt = 0;
      if (pod.metadata?.uid !== uid) return; // cannot happen with the precondition; be safe
      entry.writtenKey = desiredKey;
      entry.apiKey = entry.observedKey = ownedStatusKey(plain(pod.status), entry.scope);
    } catch (err) {
      statusWriteErrors.inc();
      const code = httpStatus(err);
      if (code === 404 || code === 409 || code === 422 && isUIDMismatch(err)) {
        // Gone, or a new pod under the same name: this status belongs to no one any more.
        this.#log.info(
          `status of pod ${namespace}/${name} (${uid}) dropped: ${describeError(err)}`,
        );
        this.forget(uid);
        return;
      }
      if (code === 422) {
        // Invalid (e.g. a changed qosClass): the same status would fail again; wait for a new one.
        this.#log.warn(`status of pod ${namespace}/${name} refused: ${describeError(err)}`);
        entry.rejectedKey = desiredKey;
        return;
      }
      const delay = backoffDelay(entry.attempt++, this.#retryBaseMs, this.#retryMaxMs);
      this.#log.warn(
        `status of pod ${namespace}/${name}: ${describeError(err)}; retrying in ${delay} ms`,
      );
      entry.timer = setTimeout(() => {
        entry.timer = undefined;
        if (!this.#stopped && this.#entries.get(uid) === entry) this.#schedule(entry);
      }, delay);
    }
  }
}

/** Whether an API error says the patch's `metadata.uid` differs from the stored pod's. */
function isUIDMismatch(err: unknown): boolean {
  return /metadata\.uid: /.test(describeError(err));
}
