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
import {
  describeError,
  httpStatus,
  type KubeClients,
  type KubeLogger,
  STRATEGIC_MERGE_PATCH,
} from "./client.ts";
import { type Backoff, backoffDelay } from "./_timer.ts";
import {
  completeIPLists,
  type KeyScope,
  keyScope,
  ownedStatusKey,
  plain,
  type PlainStatus,
  statusPatch,
} from "../status/patch.ts";
import { statusWriteDuration, statusWriteErrors } from "../metrics/mod.ts";
import { log } from "../log/mod.ts";

/** Identifies one incarnation of a pod. */
export interface PodRef {
  namespace: string;
  name: string;
  uid: string;
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
  /** The API's status as last observed (write response or watch): what a patch changes. */
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
  readonly #retry: Backoff;
  readonly #log: KubeLogger;
  readonly #entries = new Map<string, Entry>();
  #stopped = false;

  /** @param options clients and retry timing. */
  constructor(options: StatusWriterOptions) {
    this.#core = options.clients.core;
    this.#retry = { baseMs: options.retryBaseMs ?? 200, maxMs: options.retryMaxMs ?? 30_000 };
    this.#log = options.log ?? log;
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
    const scope = keyScope(entry.desired);
    entry.desiredKey = ownedStatusKey(entry.desired, scope);
    // The observed key changes only with the observation (reassert, a write's response) or
    // the scope: a pod's statuses come often, and keying the observed status is not free.
    if (entry.observed && (entry.observedKey === undefined || scope !== entry.scope)) {
      entry.observedKey = ownedStatusKey(entry.observed, scope);
    }
    entry.scope = scope;
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
    entry.observed = plain(pod.status);
    if (entry.desired) {
      entry.observedKey = ownedStatusKey(entry.observed, entry.scope);
      this.#schedule(entry);
    }
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
          { namespace, name, body: statusPatch(uid, entry.desired!, { current: entry.observed }) },
          STRATEGIC_MERGE_PATCH,
        ));
      entry.attempt = 0;
      if (pod.metadata?.uid !== uid) return; // cannot happen with the precondition; be safe
      entry.writtenKey = desiredKey;
      entry.observed = plain(pod.status);
      entry.apiKey = entry.observedKey = ownedStatusKey(entry.observed, entry.scope);
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
      const delay = backoffDelay(entry.attempt++, this.#retry);
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
