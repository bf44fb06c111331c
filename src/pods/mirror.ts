/**
 * Mirror pods: the API's read-only picture of a static pod (one from the manifest directory,
 * which runs with or without an API server). Like the kubelet's, a mirror pod has the static
 * pod's name (`<pod>-<node>`), carries `kubernetes.io/config.mirror: <the static pod's config
 * hash>` and is owned by the Node; its status is the static pod's. {@link MirrorPods} keeps
 * one per static pod: creates it, writes its status, replaces it when the manifest changes or
 * someone deletes it, and deletes it when the manifest goes. The NodeRestriction admission plugin admits a node's pod creation only
 * in that shape: the mirror annotation, `spec.nodeName` = the node, exactly one owner
 * reference (v1 Node, its own name and current UID, `controller: true`, no
 * `blockOwnerDeletion`), and no reference to other API objects (service account, secrets,
 * configmaps, PVCs, resource claims, projected tokens).
 *
 * @module
 */
import type { V1Pod, V1PodStatus, V1Volume } from "@kubernetes/client-node";
import { describeError, httpStatus, type KubeClients, type KubeLogger } from "../kube/client.ts";
import { deletePodObject } from "../kube/deletion.ts";
import type { PodEvent } from "../kube/pods.ts";
import type { PodRef, StatusWriter } from "../kube/status.ts";
import { log } from "../log/mod.ts";

/** Annotation that marks a mirror pod; its value is the static pod's config hash. */
export const MIRROR_ANNOTATION = "kubernetes.io/config.mirror";
/** The static pod's config hash, set on it when its manifest is read (src/pods/static.ts). */
export const CONFIG_HASH_ANNOTATION = "kubernetes.io/config.hash";

/**
 * Whether a pod from the API is a mirror pod (so systemk must not run it: its static pod
 * already runs).
 */
export function isMirrorPod(pod: V1Pod): boolean {
  return pod.metadata?.annotations?.[MIRROR_ANNOTATION] !== undefined;
}

function volumeProblem(v: V1Volume): string | undefined {
  if (v.hostPath || v.emptyDir || v.downwardAPI) return undefined;
  if (v.projected) {
    const bad = (v.projected.sources ?? []).find((s) => !s.downwardAPI);
    return bad ? `projected volume ${v.name} (only downwardAPI sources)` : undefined;
  }
  return `volume ${v.name} (only hostPath, emptyDir and downwardAPI)`;
}

/**
 * What in a static pod NodeRestriction would refuse to mirror (references to other API
 * objects), so the caller can report it instead of meeting a 403.
 *
 * @param pod the static pod.
 * @return a description, or undefined when the pod can be mirrored.
 */
export function mirrorReferenceProblem(pod: V1Pod): string | undefined {
  const spec = pod.spec;
  if (!spec) return undefined;
  if (spec.serviceAccountName || spec.serviceAccount) return "serviceAccountName";
  if (spec.imagePullSecrets?.length) return "imagePullSecrets";
  if (spec.resourceClaims?.length) return "resourceClaims";
  const containers = [
    ...(spec.initContainers ?? []),
    ...(spec.containers ?? []),
    ...(spec.ephemeralContainers ?? []),
  ];
  for (const c of containers) {
    if (c.envFrom?.length) return `envFrom of container ${c.name}`;
    const ref = c.env?.find((e) => e.valueFrom?.configMapKeyRef || e.valueFrom?.secretKeyRef);
    if (ref) return `env ${ref.name} of container ${c.name} (configMap/secret reference)`;
  }
  for (const v of spec.volumes ?? []) {
    const problem = volumeProblem(v);
    if (problem) return problem;
  }
  return undefined;
}

/** The config hash of a static pod: what its mirror's annotation must say. */
function configHash(staticPod: V1Pod): string {
  return staticPod.metadata?.annotations?.[CONFIG_HASH_ANNOTATION] ?? "";
}

/**
 * The mirror pod of a static pod.
 *
 * @param staticPod the static pod as the node runs it (src/pods/static.ts: named, hashed).
 * @param options node name and UID.
 */
export function buildMirrorPod(
  staticPod: V1Pod,
  options: { nodeName: string; nodeUID: string },
): V1Pod {
  const m = staticPod.metadata ?? {};
  return {
    apiVersion: "v1",
    kind: "Pod",
    metadata: {
      name: m.name,
      namespace: m.namespace || "default",
      labels: m.labels,
      annotations: { ...m.annotations, [MIRROR_ANNOTATION]: configHash(staticPod) },
      ownerReferences: [{
        apiVersion: "v1",
        kind: "Node",
        name: options.nodeName,
        uid: options.nodeUID,
        controller: true,
      }],
    },
    spec: { ...staticPod.spec!, nodeName: options.nodeName },
  };
}

/**
 * Creates a mirror pod.
 *
 * @param clients API clients of the node identity.
 * @param mirror from {@link buildMirrorPod}.
 * @return the created pod, or `exists` when a pod of that name is already there.
 * @throws other API errors (403 when NodeRestriction refuses it).
 */
export async function createMirrorPod(
  clients: Pick<KubeClients, "core">,
  mirror: V1Pod,
): Promise<V1Pod | "exists"> {
  try {
    return await clients.core.createNamespacedPod({
      namespace: mirror.metadata?.namespace ?? "default",
      body: mirror,
    });
  } catch (err) {
    if (httpStatus(err) === 409) return "exists";
    throw err;
  }
}

/** Options of {@link MirrorPods}. */
export interface MirrorPodsOptions {
  /** API clients of the node identity. */
  clients: Pick<KubeClients, "core">;
  nodeName: string;
  /** The Node's current UID, the mirrors' owner (it changes when the Node is registered anew). */
  nodeUID: () => string;
  /** Writes the mirrors' status. */
  statuses: Pick<StatusWriter, "set" | "forget">;
  /** How often failed creations and deletions are retried; default 10 s. */
  resyncMs?: number;
  log?: KubeLogger;
}

/** `namespace/name`: a static pod and its mirror share it. */
function keyOf(pod: V1Pod): string {
  return `${pod.metadata?.namespace}/${pod.metadata?.name}`;
}

function refOf(pod: V1Pod): PodRef {
  const m = pod.metadata!;
  return { namespace: m.namespace!, name: m.name!, uid: m.uid! };
}

/**
 * Keeps one mirror pod per static pod, as the kubelet does: a missing one is created; a stale
 * one (another config hash), one being deleted (someone ran `kubectl delete`) and one whose
 * static pod is gone are deleted at once, and the first two created again. Work runs one pass
 * at a time, after each change and every `resyncMs` (so API errors are retried).
 *
 * @example Usage
 * ```ts
 * const mirrors = new MirrorPods({ clients, nodeName, nodeUID: () => node.nodeUID, statuses });
 * mirrors.start();
 * // in the pod watcher's onEvent: if (mirrors.observe(event)) return; // not a pod to run
 * mirrors.setStaticPods(pods); // after each read of the manifest directory
 * mirrors.setStatus(staticPod, status); // from the runtime
 * await mirrors.stop();
 * ```
 */
export class MirrorPods {
  readonly #opts: MirrorPodsOptions;
  readonly #log: KubeLogger;
  /** Static pods by key; undefined until first given, so no mirror is deleted before. */
  #staticPods?: Map<string, V1Pod>;
  /** Static pods' statuses by the static pod's UID (an edited manifest's pod has a new one). */
  readonly #statuses = new Map<string, V1PodStatus>();
  /** Mirror pods in the API by key, as the watcher last showed them (or as created). */
  readonly #mirrors = new Map<string, V1Pod>();
  /** Keys of mirror pods by UID: a delete found by a relist carries only the UID. */
  readonly #keys = new Map<string, string>();
  /** Static pods already reported as not mirrorable, by UID. */
  readonly #refused = new Set<string>();
  #pass: Promise<void> = Promise.resolve();
  #queued = false;
  #timer?: ReturnType<typeof setInterval>;
  #stopped = false;

  /** @param options clients, the node, and the status writer. */
  constructor(options: MirrorPodsOptions) {
    this.#opts = options;
    this.#log = options.log ?? log;
  }

  /** Starts the periodic pass. */
  start(): void {
    this.#timer = setInterval(() => this.#reconcile(), this.#opts.resyncMs ?? 10_000);
  }

  /** Stops; a pass in progress finishes first. Mirror pods stay, as the kubelet leaves them. */
  async stop(): Promise<void> {
    this.#stopped = true;
    clearInterval(this.#timer);
    await this.#pass;
  }

  /** The static pods the node runs now (all of them, each time). */
  setStaticPods(pods: V1Pod[]): void {
    this.#staticPods = new Map(pods.map((p) => [keyOf(p), p]));
    const uids = new Set(pods.map((p) => p.metadata?.uid));
    for (const uid of this.#statuses.keys()) if (!uids.has(uid)) this.#statuses.delete(uid);
    for (const uid of this.#refused) if (!uids.has(uid)) this.#refused.delete(uid);
    this.#reconcile();
  }

  /**
   * A static pod's status, written to its mirror now and to each new mirror. A static pod
   * replaced by an edited manifest still reports while it stops: that is not the status of
   * the pod the mirror now shows, so it is dropped.
   */
  setStatus(staticPod: V1Pod, status: V1PodStatus): void {
    const key = keyOf(staticPod);
    const uid = staticPod.metadata?.uid;
    if (!uid || this.#staticPods?.get(key)?.metadata?.uid !== uid) return;
    this.#statuses.set(uid, status);
    const mirror = this.#mirrors.get(key);
    if (mirror && this.#current(mirror)) this.#opts.statuses.set(refOf(mirror), status);
  }

  /**
   * Takes a pod watcher event; true when it concerned a mirror pod, which the node must not
   * run (its static pod already runs).
   */
  observe(event: PodEvent): boolean {
    const { pod } = event;
    const uid = pod.metadata?.uid ?? "";
    if (event.type === "delete") {
      const key = this.#keys.get(uid);
      if (key === undefined) return isMirrorPod(pod);
      this.#keys.delete(uid);
      if (this.#mirrors.get(key)?.metadata?.uid === uid) this.#mirrors.delete(key);
      this.#opts.statuses.forget(uid);
      this.#reconcile();
      return true;
    }
    if (!isMirrorPod(pod)) return false;
    const key = keyOf(pod);
    const known = this.#mirrors.get(key)?.metadata?.uid;
    this.#mirrors.set(key, pod);
    this.#keys.set(uid, key);
    // Only a new mirror, or one whose fate changed, needs a pass; status echoes do not.
    if (known !== uid || !this.#current(pod)) this.#reconcile();
    return true;
  }

  /** Whether `mirror` mirrors today's static pod of its name and is not being deleted. */
  #current(mirror: V1Pod): boolean {
    const staticPod = this.#staticPods?.get(keyOf(mirror));
    return staticPod !== undefined && !mirror.metadata?.deletionTimestamp &&
      mirror.metadata?.annotations?.[MIRROR_ANNOTATION] === configHash(staticPod);
  }

  /** Queues a pass; passes run one at a time, and a pass asked for during one runs after. */
  #reconcile(): void {
    if (this.#queued || this.#stopped || !this.#staticPods) return;
    this.#queued = true;
    this.#pass = this.#pass.then(async () => {
      this.#queued = false;
      if (this.#stopped) return;
      try {
        await this.#deleteUnwanted();
        await this.#createMissing();
      } catch (e) {
        this.#log.warn(`mirror pods: ${describeError(e)}; retrying`);
      }
    });
  }

  async #deleteUnwanted(): Promise<void> {
    for (const [key, mirror] of [...this.#mirrors]) {
      if (this.#current(mirror)) continue;
      const outcome = await deletePodObject(this.#opts.clients, refOf(mirror));
      this.#log.info(`mirror pod ${key}: ${outcome} (${this.#staleness(mirror)})`);
      if (this.#mirrors.get(key) === mirror) this.#mirrors.delete(key);
      this.#keys.delete(mirror.metadata!.uid!);
      this.#opts.statuses.forget(mirror.metadata!.uid!);
    }
  }

  #staleness(mirror: V1Pod): string {
    const staticPod = this.#staticPods?.get(keyOf(mirror));
    if (!staticPod) return "its static pod is gone";
    return mirror.metadata?.deletionTimestamp ? "deleted through the API" : "its manifest changed";
  }

  async #createMissing(): Promise<void> {
    const { clients, nodeName, nodeUID } = this.#opts;
    for (const [key, staticPod] of this.#staticPods ?? []) {
      if (this.#mirrors.has(key)) continue;
      const uid = staticPod.metadata!.uid!;
      const problem = mirrorReferenceProblem(staticPod);
      if (problem) {
        // NodeRestriction would refuse it: say so once; the static pod runs all the same.
        if (!this.#refused.has(uid)) {
          this.#refused.add(uid);
          this.#log.warn(`mirror pod ${key}: not created, the static pod references ${problem}`);
        }
        continue;
      }
      const created = await createMirrorPod(
        clients,
        buildMirrorPod(staticPod, { nodeName, nodeUID: nodeUID() }),
      );
      // `exists`: the watcher shows it soon, and the next pass judges it.
      if (created === "exists") continue;
      this.#log.info(`mirror pod ${key}: created`);
      this.#mirrors.set(key, created);
      this.#keys.set(created.metadata!.uid!, key);
      const status = this.#statuses.get(uid);
      if (status) this.#opts.statuses.set(refOf(created), status);
    }
  }
}
