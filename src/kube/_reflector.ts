/**
 * A list-then-watch loop over one kind of namespaced object (client-go calls it a reflector):
 * LIST, then WATCH from the list's resourceVersion with bookmarks; a watch that ends, fails,
 * answers 410 Gone, or stays silent longer than the quiet timeout is replaced by a fresh LIST
 * whose difference to what was delivered before is emitted, so consumers always converge.
 * It keeps only namespace, name and resourceVersion per object, not the objects, and drops
 * `metadata.managedFields` (server-side apply bookkeeping, often the largest part of a small
 * object, read by no one here) before handing objects on, as consumers keep them.
 *
 * @module
 */
import { watchRestarts } from "../metrics/mod.ts";
import type { Watch } from "@kubernetes/client-node";
import { ObjectSerializer } from "@kubernetes/client-node/dist/serializer.js";
import { describeError, type KubeLogger } from "./client.ts";
import { type Backoff, backoffDelay, sleep } from "./_timer.ts";

/** Between failed lists, and watches that end at once: from 0.5 s, doubling up to 30 s. */
const RELIST_BACKOFF: Backoff = { baseMs: 500, maxMs: 30_000 };

/** The metadata a reflector relies on. */
interface Meta {
  metadata?: {
    namespace?: string;
    name?: string;
    uid?: string;
    resourceVersion?: string;
    managedFields?: unknown;
  };
}

/** `object` without `metadata.managedFields` (removed in place). */
function withoutManagedFields<T>(object: T): T {
  delete (object as Meta | undefined)?.metadata?.managedFields;
  return object;
}

/**
 * One change. For a delete found by a relist (the DELETED event itself was missed) `object`
 * is a stub carrying only `metadata.namespace/name/uid`.
 */
export interface ReflectorEvent<T> {
  type: "upsert" | "delete";
  object: T;
}

/** What to list and watch, and where changes go. */
export interface ReflectorOptions<T extends Meta> {
  watch: Pick<Watch, "watch">;
  /** The LIST call (with the same selectors as the watch). */
  list: () => Promise<{ items: T[]; metadata?: { resourceVersion?: string } }>;
  /** Collection path to watch, e.g. `/api/v1/pods`. */
  path: string;
  /** Selectors of the watch, e.g. `{ fieldSelector: "spec.nodeName=n1" }`. */
  query: Record<string, string>;
  /** client-node model name of the objects (`V1Pod`), to give watch events the LIST's shape. */
  model: string;
  /** Receives every change, in order; must not throw. */
  onEvent: (event: ReflectorEvent<T>) => void;
  /** Relist when the watch delivers nothing (not even a bookmark) this long. */
  quietTimeoutMs: number;
  /** Names the watched set in log lines. */
  description: string;
  log: KubeLogger;
}

/** What the reflector remembers per delivered object: enough to diff a relist and stub a delete. */
interface Known {
  namespace?: string;
  name?: string;
  resourceVersion: string;
}

/** Why a watch ended. */
type WatchEnd = "stopped" | "relist";

/** Lists and watches one set of objects; see the module doc. */
export class Reflector<T extends Meta> {
  readonly #o: ReflectorOptions<T>;
  readonly #known = new Map<string, Known>();
  #resourceVersion = "";
  #abort: AbortController | undefined;
  #endWatch: ((end: WatchEnd) => void) | undefined;
  #loop: Promise<void> | undefined;
  #lists = 0;

  /** @param options what to list and watch. */
  constructor(options: ReflectorOptions<T>) {
    this.#o = options;
  }

  /** How many LISTs have been made (the first included). */
  get listCount(): number {
    return this.#lists;
  }

  /** Number of objects currently known. */
  get size(): number {
    return this.#known.size;
  }

  /**
   * Starts; resolves once the first LIST has been delivered as upserts. Failed LISTs are
   * logged and retried with backoff (up to 30 s apart).
   */
  start(): Promise<void> {
    if (this.#abort) throw new Error(`${this.#o.description}: already started`);
    const abort = new AbortController();
    this.#abort = abort;
    return new Promise((synced) => {
      this.#loop = this.#run(abort.signal, synced);
    });
  }

  /** Stops the watch and waits until no more events will be delivered. */
  async stop(): Promise<void> {
    this.#abort?.abort();
    this.#endWatch?.("stopped");
    await this.#loop;
  }

  /** Ends the current watch and relists now. */
  relist(): void {
    this.#endWatch?.("relist");
  }

  async #run(signal: AbortSignal, synced: () => void): Promise<void> {
    let failures = 0;
    while (!signal.aborted) {
      try {
        await this.#list();
        synced();
      } catch (err) {
        this.#o.log.warn(`${this.#o.description}: list failed: ${describeError(err)}`);
        await sleep(backoffDelay(failures++, RELIST_BACKOFF), signal);
        continue;
      }
      const started = Date.now();
      if (await this.#watch(signal) === "stopped") return;
      watchRestarts.inc({ resource: this.#o.path.split("/").pop() ?? this.#o.path });
      // A watch that ends at once (e.g. the apiserver is restarting) must not turn into a
      // tight LIST loop; one that ran a while resets the backoff.
      if (Date.now() - started < 1000) {
        await sleep(backoffDelay(failures++, RELIST_BACKOFF), signal);
      } else failures = 0;
    }
  }

  async #list(): Promise<void> {
    this.#lists++;
    const list = await this.#o.list();
    const unseen = new Set(this.#known.keys());
    for (const object of list.items) {
      const uid = object.metadata?.uid;
      if (!uid) continue;
      unseen.delete(uid);
      this.#upsert(uid, withoutManagedFields(object));
    }
    for (const uid of unseen) {
      const { namespace, name } = this.#known.get(uid)!;
      this.#known.delete(uid);
      this.#o.onEvent({ type: "delete", object: { metadata: { namespace, name, uid } } as T });
    }
    this.#resourceVersion = list.metadata?.resourceVersion ?? "";
  }

  #upsert(uid: string, object: T): void {
    const { namespace, name, resourceVersion = "" } = object.metadata ?? {};
    if (this.#known.get(uid)?.resourceVersion === resourceVersion) return;
    this.#known.set(uid, { namespace, name, resourceVersion });
    this.#o.onEvent({ type: "upsert", object });
  }

  /** Watches until the watch ends for any reason; says whether to relist or stop. */
  #watch(signal: AbortSignal): Promise<WatchEnd> {
    return new Promise<WatchEnd>((resolve) => {
      let controller: AbortController | undefined;
      let watchdog: ReturnType<typeof setTimeout> | undefined;
      let ended = false;
      const end = (how: WatchEnd) => {
        if (ended) return;
        ended = true;
        clearTimeout(watchdog);
        this.#endWatch = undefined;
        controller?.abort();
        resolve(signal.aborted ? "stopped" : how);
      };
      const feed = () => {
        clearTimeout(watchdog);
        watchdog = setTimeout(() => {
          this.#o.log.warn(
            `${this.#o.description}: watch silent for ${this.#o.quietTimeoutMs} ms; relisting`,
          );
          end("relist");
        }, this.#o.quietTimeoutMs);
      };
      this.#endWatch = end;
      if (signal.aborted) return end("stopped");
      feed();
      this.#o.watch.watch(
        this.#o.path,
        { ...this.#o.query, resourceVersion: this.#resourceVersion, allowWatchBookmarks: true },
        (type, object) => {
          if (ended) return;
          feed();
          if (!this.#handle(type, object)) end("relist");
        },
        (err) => {
          if (err && !ended && !signal.aborted) {
            this.#o.log.warn(`${this.#o.description}: watch: ${describeError(err)}`);
          }
          end("relist");
        },
      ).then((c) => {
        controller = c;
        if (ended) c.abort();
      }, () => end("relist"));
    });
  }

  /** Applies one watch event; false when the watch must be replaced by a relist. */
  #handle(type: string, raw: unknown): boolean {
    switch (type) {
      case "ADDED":
      case "MODIFIED":
      case "DELETED": {
        // Dropped before deserializing: no model objects are built for it.
        const object = ObjectSerializer.deserialize(withoutManagedFields(raw), this.#o.model) as T;
        const uid = object.metadata?.uid;
        if (!uid) break;
        if (type !== "DELETED") this.#upsert(uid, object);
        else if (this.#known.delete(uid)) this.#o.onEvent({ type: "delete", object });
        break;
      }
      case "BOOKMARK":
        break;
      default: {
        // ERROR carries a Status; 410 Gone only means our resourceVersion is too old.
        const status = raw as { code?: number; message?: string };
        if (status?.code !== 410) {
          this.#o.log.warn(
            `${this.#o.description}: watch error ${status?.code}: ${status?.message}`,
          );
        }
        return false;
      }
    }
    const rv = (raw as Meta)?.metadata?.resourceVersion;
    if (rv) this.#resourceVersion = rv;
    return true;
  }
}
