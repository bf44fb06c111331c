/**
 * The pod controller (virtual-kubelet's `podcontroller`): turns the pods systemk is asked to
 * run into calls of the pod runtime, in both modes.
 *
 * - Node mode (`api`): the pods the API server schedules to this node, from a watch. Updates
 *   that only echo a status write are dropped; one that changes a condition another
 *   controller owns (a readiness gate) recomputes the status; a pod gone from the API before
 *   its termination finished (a force delete) is stopped at once. A terminated pod's API
 *   object is deleted (UID precondition). References (ConfigMaps, Secrets, service account
 *   tokens, PersistentVolumeClaims) are fetched (and the first two watched) per pod; a 403 from
 *   the Node authorizer is a container config error (for a claim: `FailedMount`), retried.
 * - Static pods (`manifestDir`): the directory's pods run as they are, their references from the
 *   directory; in node mode each is mirrored into the API, where its status is shown.
 * - Standalone mode: static pods only; statuses go to `onStatus`.
 *
 * @module
 */
import type { V1Pod, V1PodStatus } from "@kubernetes/client-node";
import type { KubeClients } from "../kube/client.ts";
import { deletePodObject } from "../kube/deletion.ts";
import { MirrorPods } from "./mirror.ts";
import { ObjectAccess, ObjectForbiddenError } from "../kube/objects.ts";
import { type PodEvent, PodWatcher } from "../kube/pods.ts";
import { StatusWriter } from "../kube/status.ts";
import { ServiceAccountTokens } from "../kube/tokens.ts";
import { PodError } from "../pod_error.ts";
import { KUBELET_CONDITION_TYPES } from "../status/mod.ts";
import type { UnitProperties } from "../unit/properties.ts";
import type { RuntimeOptions } from "./context.ts";
import type { References } from "./ports.ts";
import { podReferences } from "./references.ts";
import { PodRuntime } from "./runtime.ts";
import { StaticPodSource } from "./static.ts";
import { PodClaims } from "./claims.ts";

/** What the pod controller is wired to. */
export interface PodControllerOptions {
  /** The runtime's parts; the controller supplies statuses, references and terminations. */
  runtime: Omit<RuntimeOptions, "onStatus" | "references" | "onTerminated">;
  /** Node mode: the API server, and the Node object's UID (owner of mirror pods). */
  api?: { clients: KubeClients; nodeUID(): string };
  /** `--pod-manifest-path`: the directory of static pods. */
  manifestDir?: string;
  /** Standalone mode (no `api`): where the pods' statuses go. */
  onStatus?(pod: V1Pod, status: V1PodStatus): void;
}

/** What {@link PodController.start} found. */
export interface PodControllerStart {
  /** Pods whose units were found running on the machine. */
  adopted: number;
  /** Pods the API server assigns to this node (node mode). */
  assigned: number;
}

/** The API side of node mode: one status writer, the pods' references, mirror pods. */
interface ApiParts {
  clients: KubeClients;
  statuses: StatusWriter;
  objects: ObjectAccess;
  claims: PodClaims;
  tokens: ServiceAccountTokens;
  mirrors: MirrorPods;
  watcher: PodWatcher;
}

/** Runs the pods systemk is asked to run; see the module doc. */
export class PodController {
  readonly runtime: PodRuntime;
  readonly #api?: ApiParts;
  readonly #source?: StaticPodSource;
  /** Pods from the API, by UID, as last seen. */
  readonly #latest = new Map<string, V1Pod>();
  /** Per API pod: what of it the runtime acts on, and others' conditions, as last seen. */
  readonly #fingerprints = new Map<string, { desired: string; conditions: string }>();
  /** Static pods by UID, from their manifest's reading until their termination. */
  readonly #staticPods = new Map<string, V1Pod>();

  /** @param options the runtime's parts and where pods come from. */
  constructor(options: PodControllerOptions) {
    const { api, manifestDir } = options;
    const nodeName = options.runtime.node.name;
    this.#source = manifestDir === undefined ? undefined : new StaticPodSource({
      dir: manifestDir,
      nodeName,
      onChange: (pods, removed) => this.#staticPodsChanged(pods, removed),
    });
    if (api) {
      const { clients } = api;
      const statuses = new StatusWriter({ clients });
      const objects = new ObjectAccess({ clients });
      this.#api = {
        clients,
        statuses,
        objects,
        claims: new PodClaims({ objects, clients, nodeName }),
        tokens: new ServiceAccountTokens({ clients, onRenewalDue: (uid) => this.#resync(uid) }),
        // Static pods run whatever the API says; their mirrors only show them there.
        mirrors: new MirrorPods({ clients, nodeName, nodeUID: api.nodeUID, statuses }),
        watcher: new PodWatcher({ clients, nodeName, onEvent: (event) => this.#apiEvent(event) }),
      };
    }
    this.runtime = new PodRuntime({
      ...options.runtime,
      onStatus: (pod, status) => {
        const m = pod.metadata!;
        if (!this.#api) return options.onStatus?.(pod, status);
        if (this.#staticPods.has(m.uid!)) return this.#api.mirrors.setStatus(pod, status);
        this.#api.statuses.set({ namespace: m.namespace!, name: m.name!, uid: m.uid! }, status);
      },
      references: (pod) =>
        this.#source && this.#staticPods.has(pod.metadata!.uid!)
          ? Promise.resolve(this.#source.references(pod))
          : this.#fetchReferences(pod),
      onTerminated: (pod) => this.#terminated(pod),
    });
  }

  /**
   * Adopts the pods running on the machine, reads the static pods, lists the API's pods, then
   * stops adopted pods no one asks for any more.
   */
  async start(): Promise<PodControllerStart> {
    const adopted = await this.runtime.adopt();
    await this.#source?.start();
    if (this.#api) {
      // Without a manifest directory there are no static pods: mirrors left from before go.
      if (!this.#source) this.#api.mirrors.setStaticPods([]);
      this.#api.mirrors.start();
      await this.#api.watcher.start();
    }
    await this.runtime.collectOrphans(
      new Set([...this.#latest.keys(), ...this.#staticPods.keys()]),
    );
    return { adopted, assigned: this.#latest.size };
  }

  /** Every pod this node runs or is asked to run (a static pod answers for its mirror). */
  pods(): V1Pod[] {
    return [...this.#latest.values(), ...this.#staticPods.values()];
  }

  /** Per container name of `pod`: its unit, as the runtime wrote it. */
  containerUnits(pod: V1Pod): ReadonlyMap<string, string> {
    return this.runtime.containerUnits(pod.metadata!.uid!);
  }

  /** A unit's state as last observed. */
  unitState(unit: string): UnitProperties | undefined {
    return this.runtime.unitState(unit);
  }

  /** Resolves once the statuses computed so far are written (node mode; failed writes retry). */
  async statusesWritten(): Promise<void> {
    // A status is computed in a microtask after the change that caused it.
    await new Promise((resolve) => setTimeout(resolve, 0));
    await this.#api?.statuses.idle();
  }

  /** Stops following pods; the pods keep running (a restarted systemk adopts them). */
  async stop(): Promise<void> {
    await this.#api?.watcher.stop();
    await this.#source?.stop();
    await this.#api?.mirrors.stop();
    await this.runtime.close();
    await this.#api?.statuses.stop();
    await this.#api?.objects.stop();
    this.#api?.tokens.stop();
  }

  async #staticPodsChanged(pods: V1Pod[], removed: string[]): Promise<void> {
    for (const pod of pods) {
      this.#staticPods.set(pod.metadata!.uid!, pod);
      this.runtime.sync(pod);
    }
    this.#api?.mirrors.setStaticPods(pods);
    for (const uid of removed) {
      await this.runtime.terminate(uid);
      this.#staticPods.delete(uid);
    }
  }

  #apiEvent(event: PodEvent): void {
    const api = this.#api!;
    const { type, pod } = event;
    if (api.mirrors.observe(event)) {
      if (type === "upsert") api.statuses.reassert(pod);
      return;
    }
    const uid = pod.metadata!.uid!;
    if (type === "delete") {
      // Gone from the API without us finishing its termination (force delete): stop it now.
      this.#latest.delete(uid);
      void this.runtime.terminate(uid, 0).then(() => this.#forget(uid));
      return;
    }
    this.#latest.set(uid, pod);
    api.statuses.reassert(pod);
    // Our own status writes come back as updates: only what the runtime acts on matters.
    const before = this.#fingerprints.get(uid);
    const now = { desired: desiredFingerprint(pod), conditions: othersConditions(pod) };
    this.#fingerprints.set(uid, now);
    if (before?.desired !== now.desired) this.runtime.sync(pod);
    else if (before.conditions !== now.conditions) this.runtime.updateStatus(pod);
  }

  /** The pod's latest version is synced again (a reference or token changed). */
  #resync(uid: string): void {
    const current = this.#latest.get(uid);
    if (current) this.runtime.sync(current);
  }

  /**
   * Reads what the pod references. Each ConfigMap and Secret is watched, so an edit reaches the
   * files and a missing (or not yet permitted) one starts the pod once it appears. A 403 means
   * the Node authorizer has not linked the object to this pod yet: like a missing object, a
   * container config error the runtime shows and retries. Claims are read at each sync until
   * they resolve (claims.ts).
   */
  async #fetchReferences(pod: V1Pod): Promise<References> {
    const { objects, tokens, claims } = this.#api!;
    const uid = pod.metadata!.uid!;
    try {
      const [found, serviceAccountTokens, claimed] = await Promise.all([
        objects.getReferenced(pod.metadata!.namespace!, podReferences(pod), {
          podUID: uid,
          onChange: () => this.#resync(uid),
        }),
        tokens.tokensFor(pod),
        claims.forPod(pod),
      ]);
      return { ...found, serviceAccountTokens, ...claimed };
    } catch (e) {
      if (!(e instanceof ObjectForbiddenError)) throw e;
      throw new PodError("CreateContainerConfigError", `${e.message}; retrying`);
    }
  }

  /** A pod's units and files are gone: its API object goes too (it was the last holder). */
  async #terminated(pod: V1Pod): Promise<void> {
    const m = pod.metadata!;
    if (this.#api && this.#latest.has(m.uid!)) {
      await deletePodObject(this.#api.clients, {
        namespace: m.namespace!,
        name: m.name!,
        uid: m.uid!,
      });
    }
    this.#forget(m.uid!);
  }

  #forget(uid: string): void {
    this.#latest.delete(uid);
    this.#fingerprints.delete(uid);
    this.#api?.statuses.forget(uid);
    this.#api?.objects.releasePod(uid);
    this.#api?.claims.release(uid);
    this.#api?.tokens.release(uid);
  }
}

/** What of a pod the runtime acts on: spec, deletion, and the metadata the downward API shows. */
export function desiredFingerprint(pod: V1Pod): string {
  const m = pod.metadata ?? {};
  return JSON.stringify([
    pod.spec,
    m.deletionTimestamp,
    m.deletionGracePeriodSeconds,
    m.labels,
    m.annotations,
  ]);
}

/** The pod's conditions other controllers own (readiness gates): type and status. */
export function othersConditions(pod: V1Pod): string {
  return JSON.stringify(
    (pod.status?.conditions ?? []).filter((c) => !KUBELET_CONDITION_TYPES.includes(c.type))
      .map((c) => [c.type, c.status]),
  );
}
