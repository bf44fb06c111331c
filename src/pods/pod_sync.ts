/**
 * One sync of a pod that should run, as the kubelet's `SyncPod` (the pod worker, worker.ts,
 * decides when, and what follows): a resize its spec asks for allocated when it fits
 * (resize.ts), the pod prepared as allocated (prepare.ts: images, references, the plan), the
 * userdb records of its ids made, its volumes made ready (volume_manager.ts), its containers
 * made what the plan says (pod_containers.ts: units written, resized in place, started), the
 * records of ids it no longer uses released, and the resize settled from what the units run
 * with. And the pod's removal once it is deleted, as the kubelet's `SyncTerminatingPod` and
 * `SyncTerminatedPod`: its containers stopped, its units, records, files and slice removed.
 *
 * @module
 */
import type { V1Pod, V1PodStatus } from "@kubernetes/client-node";
import { DEFAULT_STATE_DIR, podDirectory } from "../plan/mod.ts";
import {
  computePodStatus,
  type ContainerOverride,
  type PodFailure,
  type PodStatusOptions,
} from "../status/mod.ts";
import type { Log } from "../log/mod.ts";
import { type FoundPod, podKey, type PodRuntimeContext } from "./context.ts";
import type { PodContainers } from "./pod_containers.ts";
import { preparePod } from "./prepare.ts";
import { PodResize } from "./resize.ts";
import type { CpuMemory } from "../plan/allocation.ts";
import { mountVolumes } from "./volume_manager.ts";
import { removePodDir } from "../volumes/apply.ts";

/** What {@link PodSync} works with: the pod worker's parts. */
export interface PodSyncOptions {
  /** The runtime's context; `adopted` the pod's units found on the machine. */
  context: PodRuntimeContext & { adopted: FoundPod };
  uid: string;
  /** The pod as last seen. */
  pod(): V1Pod;
  containers: PodContainers;
  log: Log;
}

/**
 * How a sync ended: why the pod cannot run as asked (yet), and when to sync again: after the
 * back-off (`backoff`), after the back-off with the failed init containers reset (`init`), or
 * soon while a claim cannot be mounted yet (`claim`).
 */
export interface PodSyncResult {
  failure?: PodFailure;
  retry?: "backoff" | "init" | "claim";
}

/** Syncs one pod; see the module doc. */
export class PodSync {
  readonly #o: PodSyncOptions;
  /** What preparing the pod found per container (a waiting reason, say), kept across syncs. */
  readonly #overrides = new Map<string, ContainerOverride>();
  /** The pod's claims were set up once (their fsGroup given): later syncs only check them. */
  #claimsSetUp = false;

  /** The pod's resources as allocated, and its resize's conditions. */
  readonly #resize: PodResize;

  /** @param options the pod worker's parts. */
  constructor(options: PodSyncOptions) {
    this.#o = options;
    const { context, uid, pod } = options;
    this.#resize = new PodResize({
      allocatable: context.allocatable,
      othersRequests: () => context.othersRequests(uid),
      event: (event) => context.events.record(pod(), event),
    }, context.adopted.units);
  }

  /** The pod's CPU and memory requests as allocated. */
  allocatedRequests(pod: V1Pod): CpuMemory {
    return this.#resize.requests(pod);
  }

  /** A resize the pod's spec asks for waits for room on the node. */
  get resizeDeferred(): boolean {
    return this.#resize.deferred;
  }

  /**
   * The pod's API status, as the kubelet's `generateAPIPodStatus`: from what its units run
   * (their observed state, the probes' results, pending restarts, the resources they run with)
   * and `options`, what the pod worker knows of the pod's end.
   */
  generateStatus(
    pod: V1Pod,
    options: Pick<PodStatusOptions, "failure" | "evicted" | "rejected" | "conditions" | "previous">,
  ): V1PodStatus {
    const { context: c, containers } = this.#o;
    const resize = this.#resize;
    return computePodStatus(pod, {
      ...options,
      units: containers.statusUnits(),
      overrides: containers.overrides(this.#overrides),
      resources: resize.statusResources(pod, containers.actualResources()),
      resizeConditions: resize.conditions(),
      addresses: { hostIP: c.node.internalIP, podIP: c.node.externalIP },
      now: new Date(),
    });
  }

  /** Makes the pod run as `pod` says, as far as it can now. */
  async sync(pod: V1Pod): Promise<PodSyncResult> {
    const { context: c, uid, containers, log } = this.#o;
    const resize = this.#resize;
    const allocation = resize.allocate(pod, new Date());
    // Room another pod's deferred resize may have waited for.
    if (allocation.resized) c.onResized(uid);
    const prepared = await preparePod(allocation.pod, {
      ...c,
      created: containers.createdEphemeral(),
      overrides: this.#overrides,
      event: (event) => c.events.record(pod, event),
    });
    if (!prepared.plan) {
      log.debug(`not runnable yet: ${prepared.failure?.message ?? "waiting containers"}`);
      const claim = prepared.failure?.reason === "FailedMount";
      return { failure: prepared.failure, retry: claim ? "claim" : "backoff" };
    }
    const plan = prepared.plan;

    await c.userRecords?.use(uid, containers.podIds(plan));
    const failure = await mountVolumes(plan, {
      allowedHostPaths: c.allowedHostPaths ?? [],
      stateDir: c.stateDir ?? DEFAULT_STATE_DIR,
      ownership: !this.#claimsSetUp,
      podKey: podKey(pod),
    });
    if (failure) {
      c.events.record(pod, { type: "Warning", reason: failure.reason, message: failure.message });
      // Containers already running (adopted ones too) go on with the files they have.
      await containers.follow();
      return { failure, retry: "backoff" };
    }
    this.#claimsSetUp = true;
    const { resizeError } = await containers.apply(plan);
    // Only now that no unit runs with them may the ids the pod no longer uses lose records.
    await c.userRecords?.release(uid, containers.podIds(plan));
    await containers.follow();
    resize.settle(pod, containers.actualResources(), { error: resizeError, now: new Date() });
    if (containers.initRetryDue()) return { retry: "init" };
    // An ephemeral container waits for its image or its target, a resize could not be applied
    // or waits for room: tried again later (the kubelet at its next sync of the pod).
    return prepared.retry || resizeError || resize.deferred ? { retry: "backoff" } : {};
  }

  /**
   * Removes the pod: its containers stopped within `graceSeconds` (else the pod's grace
   * period), then its units, the records of its ids, its files and its slice.
   */
  async remove(pod: V1Pod, graceSeconds: number | undefined): Promise<void> {
    const { context: c, uid, containers } = this.#o;
    const names = containers.names();
    if (names.length) {
      c.events.record(pod, {
        type: "Normal",
        reason: "Killing",
        message: `Stopping ${names.length} unit(s)`,
      });
    }
    await containers.stopAll({ graceSeconds });
    for (const name of names) await containers.remove(name);
    await c.userRecords?.release(uid);
    await removePodDir(podDirectory(c.stateDir, uid));
    // The pod's cgroup goes last, as the kubelet removes it after the pod's volumes.
    await containers.removeSlice();
  }
}
