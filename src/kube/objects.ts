/**
 * ConfigMaps and Secrets read with the node's own credentials, one object at a time, as the
 * kubelet's watch-based manager does: the Node authorizer lets a node get/list/watch only the
 * objects its pods reference (a watch is scoped with `fieldSelector=metadata.name=<name>`), so
 * there is no cluster-wide watch. Watches are shared between pods and closed when no pod
 * references the object any more. While a watch holds an object, reads are answered from it,
 * and concurrent reads of one object share one GET: every pod's `kube-root-ca.crt` costs one
 * watch per namespace, not a GET per pod (also in a burst of pods).
 *
 * PersistentVolumeClaims and PersistentVolumes are read the same way but never watched: the Node
 * authorizer lets a node only get a claim one of its pods references and the volume bound to it.
 *
 * @module
 */
import type {
  V1ConfigMap,
  V1PersistentVolume,
  V1PersistentVolumeClaim,
  V1Secret,
} from "@kubernetes/client-node";
import { httpStatus, type KubeClients, type KubeLogger } from "./client.ts";
import { Reflector } from "./_reflector.ts";
import { type Backoff, backoffDelay, sleep } from "./_timer.ts";
import { log } from "../log/mod.ts";

/** Between reads the node may not make yet: from 0.1 s, doubling up to 1 s. */
const FORBIDDEN_BACKOFF: Backoff = { baseMs: 100, maxMs: 1000 };

/** The kinds a pod may reference for env and volumes; only the first two are watched. */
export type ObjectKind = WatchedKind | "PersistentVolumeClaim" | "PersistentVolume";

/** The kinds a node may watch (the others it may only get). */
export type WatchedKind = "ConfigMap" | "Secret";

/** One referenced object; a PersistentVolume's namespace is `""`. */
export interface ObjectRef {
  kind: ObjectKind;
  namespace: string;
  name: string;
}

/** The object type for a kind. */
export type ObjectOf<K extends ObjectKind> = K extends "ConfigMap" ? V1ConfigMap
  : K extends "Secret" ? V1Secret
  : K extends "PersistentVolumeClaim" ? V1PersistentVolumeClaim
  : V1PersistentVolume;

/** Result of a read: the object, or a definite "does not exist". */
export type GetResult<K extends ObjectKind> =
  | { found: true; object: ObjectOf<K> }
  | { found: false };

/**
 * The Node authorizer refused access: no pod on this node references the object (yet; its
 * graph follows pod creation by a moment, which `get` already waited out).
 */
export class ObjectForbiddenError extends Error {
  /** @param ref the object that was refused. */
  constructor(readonly ref: ObjectRef) {
    const name = ref.namespace ? `${ref.namespace}/${ref.name}` : ref.name;
    super(`${ref.kind} ${name}: forbidden to this node (no pod on it references it)`);
    this.name = "ObjectForbiddenError";
  }
}

/** Options of an {@link ObjectAccess}. */
export interface ObjectAccessOptions {
  clients: Pick<KubeClients, "core" | "watch">;
  /** How long a 403 is retried before it is final; default 3 s. */
  forbiddenRetryMs?: number;
  /** Watchdog of each object watch; default 5 min. */
  quietTimeoutMs?: number;
  log?: KubeLogger;
}

/** A shared watch of one object and the pods that want it. */
interface SharedWatch {
  reflector: Reflector<V1ConfigMap | V1Secret>;
  listeners: Map<string, (object: V1ConfigMap | V1Secret | undefined) => void>;
  /**
   * The object as the watch last saw it or, until the watch has listed, as a read returned it
   * (undefined: it does not exist); unset while neither has answered.
   */
  known?: { object?: V1ConfigMap | V1Secret };
}

function keyOf(ref: ObjectRef): string {
  return `${ref.kind}/${ref.namespace}/${ref.name}`;
}

/**
 * Reads and watches the ConfigMaps and Secrets of this node's pods.
 *
 * @example Usage
 * ```ts
 * const objects = new ObjectAccess({ clients });
 * const ref = { kind: "ConfigMap", namespace: "default", name: "web-config" } as const;
 * const got = await objects.get(ref); // { found: false } → "configmap web-config not found"
 * const unwatch = objects.watchObject(ref, { podUID, onChange: (cm) => rewrite(cm) });
 * objects.releasePod(podUID); // or unwatch()
 * ```
 */
export class ObjectAccess {
  readonly #clients: ObjectAccessOptions["clients"];
  readonly #forbiddenRetryMs: number;
  readonly #quietTimeoutMs: number;
  readonly #log: KubeLogger;
  readonly #watches = new Map<string, SharedWatch>();
  /** GETs in flight, by object: concurrent readers share one. */
  readonly #reading = new Map<string, Promise<GetResult<ObjectKind>>>();

  /** @param options clients and timing. */
  constructor(options: ObjectAccessOptions) {
    this.#clients = options.clients;
    this.#forbiddenRetryMs = options.forbiddenRetryMs ?? 3000;
    this.#quietTimeoutMs = options.quietTimeoutMs ?? 5 * 60_000;
    this.#log = options.log ?? log;
  }

  /** Number of objects watched right now. */
  get watchCount(): number {
    return this.#watches.size;
  }

  /**
   * Reads one object: from its watch when that knows it, else from the API (one GET shared
   * by concurrent callers).
   *
   * @param ref kind, namespace, name.
   * @return the object, or `{ found: false }` when it does not exist.
   * @throws {ObjectForbiddenError} when the node may not read it (after retrying for
   * `forbiddenRetryMs`, since the authorizer learns of new pods a moment late).
   * @throws other API errors as client-node reports them.
   */
  get<K extends ObjectKind>(ref: ObjectRef & { kind: K }): Promise<GetResult<K>> {
    const key = keyOf(ref);
    const known = this.#watches.get(key)?.known;
    if (known) {
      return Promise.resolve(
        known.object ? { found: true, object: known.object as ObjectOf<K> } : { found: false },
      );
    }
    let reading = this.#reading.get(key);
    if (!reading) {
      reading = this.#read(ref).finally(() => this.#reading.delete(key));
      this.#reading.set(key, reading);
    }
    return reading as Promise<GetResult<K>>;
  }

  async #read<K extends ObjectKind>(ref: ObjectRef & { kind: K }): Promise<GetResult<K>> {
    const deadline = Date.now() + this.#forbiddenRetryMs;
    for (let attempt = 0;; attempt++) {
      try {
        return { found: true, object: await this.#fetch(ref) };
      } catch (err) {
        const code = httpStatus(err);
        if (code === 404) return { found: false };
        if (code !== 403) throw err;
        if (Date.now() >= deadline) throw new ObjectForbiddenError(ref);
        await sleep(Math.min(backoffDelay(attempt, FORBIDDEN_BACKOFF), deadline - Date.now()));
      }
    }
  }

  /** One GET of the object. */
  async #fetch<K extends ObjectKind>(ref: ObjectRef & { kind: K }): Promise<ObjectOf<K>> {
    const { core } = this.#clients;
    const params = { namespace: ref.namespace, name: ref.name };
    switch (ref.kind) {
      case "ConfigMap":
        return await core.readNamespacedConfigMap(params) as ObjectOf<K>;
      case "Secret":
        return await core.readNamespacedSecret(params) as ObjectOf<K>;
      case "PersistentVolumeClaim":
        return await core.readNamespacedPersistentVolumeClaim(params) as ObjectOf<K>;
      default:
        return await core.readPersistentVolume({ name: ref.name }) as ObjectOf<K>;
    }
  }

  /**
   * Reads every ConfigMap and Secret a pod references and watches each of them — also one that
   * is missing or still refused — so `onChange` fires once it is edited, created or permitted.
   *
   * @param namespace the pod's namespace.
   * @param names the names of the referenced ConfigMaps and Secrets.
   * @param watch the pod that references them, and the callback.
   * @return the objects that exist, by name.
   * @throws {ObjectForbiddenError} when one is still refused after `forbiddenRetryMs`.
   */
  async getReferenced(
    namespace: string,
    names: { configMaps: readonly string[]; secrets: readonly string[] },
    watch: { podUID: string; onChange: () => void },
  ): Promise<{ configMaps: Map<string, V1ConfigMap>; secrets: Map<string, V1Secret> }> {
    const found = {
      configMaps: new Map<string, V1ConfigMap>(),
      secrets: new Map<string, V1Secret>(),
    };
    const fetch = async <K extends WatchedKind>(
      kind: K,
      name: string,
      into: Map<string, ObjectOf<K>>,
    ) => {
      const ref = { kind, namespace, name };
      let got: GetResult<K>;
      try {
        got = await this.get(ref);
      } finally {
        // Watched after the read, whose 403 retries wait out the authorizer's graph (a LIST
        // right at pod creation is refused and backs off).
        this.watchObject(ref, watch);
      }
      // Until the watch lists, the read's answer serves the pods that follow.
      this.#watches.get(keyOf(ref))!.known ??= { object: got.found ? got.object : undefined };
      if (got.found) into.set(name, got.object);
    };
    await Promise.all([
      ...names.configMaps.map((name) => fetch("ConfigMap", name, found.configMaps)),
      ...names.secrets.map((name) => fetch("Secret", name, found.secrets)),
    ]);
    return found;
  }

  /**
   * Calls `onChange` whenever the object changes (with `undefined` when it is deleted), for
   * as long as pod `podUID` wants it. Read the current value with {@link get} first: the
   * watch reports changes, and its initial listing also arrives as a change.
   *
   * @param ref kind, namespace, name.
   * @param options the pod that references the object, and the callback.
   * @return a function that ends this pod's interest.
   */
  watchObject(
    ref: ObjectRef & { kind: WatchedKind },
    options: { podUID: string; onChange: (object: V1ConfigMap | V1Secret | undefined) => void },
  ): () => void {
    const key = keyOf(ref);
    let shared = this.#watches.get(key);
    if (!shared) {
      shared = this.#startWatch(ref);
      this.#watches.set(key, shared);
    }
    shared.listeners.set(options.podUID, options.onChange);
    return () => this.#unwatch(key, options.podUID);
  }

  /**
   * Ends every watch interest of a pod (it was deleted).
   *
   * @param podUID the pod's UID.
   */
  releasePod(podUID: string): void {
    for (const key of [...this.#watches.keys()]) this.#unwatch(key, podUID);
  }

  /** Stops every watch. */
  async stop(): Promise<void> {
    const all = [...this.#watches.values()];
    this.#watches.clear();
    await Promise.all(all.map((w) => w.reflector.stop()));
  }

  #unwatch(key: string, podUID: string): void {
    const shared = this.#watches.get(key);
    if (!shared?.listeners.delete(podUID) || shared.listeners.size > 0) return;
    this.#watches.delete(key);
    shared.reflector.stop();
  }

  #startWatch(ref: ObjectRef & { kind: WatchedKind }): SharedWatch {
    const { core, watch } = this.#clients;
    const fieldSelector = `metadata.name=${ref.name}`;
    const plural = ref.kind === "ConfigMap" ? "configmaps" : "secrets";
    const shared = { listeners: new Map() } as SharedWatch;
    let delivered = false;
    shared.reflector = new Reflector<V1ConfigMap | V1Secret>({
      watch,
      list: () =>
        ref.kind === "ConfigMap"
          ? core.listNamespacedConfigMap({ namespace: ref.namespace, fieldSelector })
          : core.listNamespacedSecret({ namespace: ref.namespace, fieldSelector }),
      path: `/api/v1/namespaces/${ref.namespace}/${plural}`,
      query: { fieldSelector },
      model: ref.kind === "ConfigMap" ? "V1ConfigMap" : "V1Secret",
      onEvent: ({ type, object }) => {
        const value = type === "delete" ? undefined : object;
        shared.known = { object: value };
        delivered = true;
        for (const listener of [...shared.listeners.values()]) listener(value);
      },
      quietTimeoutMs: this.#quietTimeoutMs,
      description: `${ref.kind} ${ref.namespace}/${ref.name}`,
      log: this.#log,
    });
    // Not awaited: the reflector retries failed lists itself (a 403 until the authorizer
    // has seen the pod) and reports through the listeners. A first listing without the
    // object delivers no event: then it does not exist, whatever a read said before.
    shared.reflector.start().then(() => {
      if (!delivered) shared.known = {};
    });
    return shared;
  }
}
