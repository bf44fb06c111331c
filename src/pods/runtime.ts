/**
 * The pod runtime: keeps systemd's units in line with the pods systemk should run, by
 * dispatching each pod to its {@link PodWorker} (one per UID) and each unit signal to the worker
 * of the pod that owns the unit.
 *
 * systemd is the source of truth: on start, units and pod slices found on the machine are
 * adopted by the pod UID stored in their `[X-Kubernetes]` section; those of a pod no one asks
 * for any more (orphans: running, but no pod is known) are stopped and removed, the slice
 * last; unit state arrives through systemd's change signals into the one observed state
 * (observed.ts).
 *
 * A pod seen for the first time is admitted first (admission.ts), as the kubelet's
 * `HandlePodAdditions`: it must fit beside the active pods (host ports), and every extra
 * admission handler (the node shutdown manager's) must let it in; otherwise its worker keeps it
 * rejected, Failed, never started. A pod being deleted or already Succeeded/Failed is not
 * admitted (nothing of it will run).
 *
 * @module
 */
import type { V1Pod } from "@kubernetes/client-node";
import { podsByPhase, reconcileErrors } from "../metrics/mod.ts";
import { isTerminalPhase } from "../status/mod.ts";
import { allocatableMemoryBytes } from "../kube/node.ts";
import { podDirectory, type PodIds } from "../plan/mod.ts";
import { podIdsOfUnit } from "../node/user_records.ts";
import type { UnitProperties } from "../unit/properties.ts";
import { isPodSliceName, parseUnit, readMetadata, readPodMetadata } from "../unit/mod.ts";
import { removePodDir } from "../volumes/apply.ts";
import { log } from "../log/mod.ts";
import { admitHostPorts } from "./admission.ts";
import { stopUnit } from "./containers.ts";
import type {
  FoundPod,
  KeptTermination,
  PodAdmitHandler,
  PodRuntimeContext,
  RuntimeOptions,
} from "./context.ts";
import { ObservedUnits } from "./observed.ts";
import { PodWorker } from "./worker.ts";

export { type PodAdmitHandler, podKey, type RuntimeOptions } from "./context.ts";
export type { KeptTermination } from "./context.ts";

/** Units and a slice found on the machine whose pod is not known: to be stopped and removed. */
interface Orphan extends FoundPod {
  uid: string;
}

/** Runs pods as systemd units; see the module doc. */
export class PodRuntime {
  readonly #o: RuntimeOptions;
  readonly #context: PodRuntimeContext;
  readonly #workers = new Map<string, PodWorker>();
  /** Units and slices found on the machine whose pod has not been claimed yet, by pod UID. */
  readonly #unclaimed = new Map<string, FoundPod>();
  /** Orphans being stopped, by pod UID: a worker of the same UID waits for it. */
  readonly #orphanStops = new Map<string, Promise<void>>();
  /** Unit name → UID of the pod that owns it. */
  readonly #owner = new Map<string, string>();
  /** The one observed state of the units (see observed.ts). */
  readonly #observed: ObservedUnits;

  /** @param options the systemd units, node facts and sinks the runtime is wired to. */
  constructor(options: RuntimeOptions) {
    this.#o = options;
    this.#observed = new ObservedUnits(options.units);
    const exec = options.units.exec;
    const machine = options.node.allocatable;
    this.#context = {
      ...options,
      allocatable: machine && {
        cpuMilli: machine.cpuMilli,
        memoryBytes: allocatableMemoryBytes(machine.memoryBytes),
      },
      observed: this.#observed,
      exec: (unit) => exec && ((execOptions) => exec(unit, execOptions)),
      claim: (unit, uid) => this.#claim(unit, uid),
      release: (unit, uid) => {
        this.#observed.forget(unit);
        if (this.#owner.get(unit) === uid) this.#owner.delete(unit);
      },
      onRemoved: async (uid, pod) => {
        this.#workers.delete(uid);
        this.#countPhases();
        this.#retryDeferredResizes();
        await options.onTerminated?.(pod);
      },
      othersRequests: (uid) => {
        const sum = { cpuMilli: 0, memoryBytes: 0 };
        for (const [other, worker] of this.#workers) {
          const requests = other === uid ? undefined : worker.allocatedRequests;
          sum.cpuMilli += requests?.cpuMilli ?? 0;
          sum.memoryBytes += requests?.memoryBytes ?? 0;
        }
        return sum;
      },
      onResized: () => this.#retryDeferredResizes(),
      onStatus: (pod, status) => {
        this.#countPhases();
        options.onStatus(pod, status);
      },
    };
    options.units.onChange((name, props) => this.#observe(name, props));
    options.oomKills?.onKill((name) => this.#oomKill(name));
  }

  /** Reads systemk's units from the machine so running pods are adopted, not restarted. */
  async adopt(): Promise<number> {
    // Records of pod ids stay for the units found (another node's too, in a shared systemd);
    // those no unit uses any more go.
    const inUse = new Map<string, PodIds>();
    for (const unit of await this.#o.units.list()) {
      if (isPodSliceName(unit.name)) {
        this.#adoptSlice(unit.name, unit.text);
        continue;
      }
      let meta;
      try {
        meta = readMetadata(parseUnit(unit.text));
      } catch {
        meta = undefined;
      }
      if (!meta) continue;
      const ids = podIdsOfUnit(unit.text);
      const seen = inUse.get(meta.podUID);
      inUse.set(meta.podUID, {
        users: [...(seen?.users ?? []), ...ids.users],
        groups: [...(seen?.groups ?? []), ...ids.groups],
      });
      if (meta.nodeName !== this.#o.node.name) continue;
      this.#found(meta.podUID).units.set(unit.name, {
        container: meta.containerName,
        init: meta.init,
        text: unit.text,
      });
      this.#owner.set(unit.name, meta.podUID);
    }
    await this.#o.userRecords?.adopt(inUse);
    return this.#unclaimed.size;
  }

  /** Makes `pod` run (or terminate, when it carries a deletionTimestamp). */
  sync(pod: V1Pod): void {
    this.#worker(pod).sync(pod);
  }

  /**
   * A status-only change of `pod` (a condition another controller set, such as a readiness
   * gate): its status is computed again, nothing else happens.
   */
  updateStatus(pod: V1Pod): void {
    this.#workers.get(pod.metadata!.uid!)?.updateStatus(pod);
  }

  /** Stops and removes a pod's units and files; `graceSeconds` may shorten the pod's own. */
  terminate(uid: string, graceSeconds?: number): Promise<void> {
    return this.#workers.get(uid)?.terminate(graceSeconds) ?? this.#orphanStops.get(uid) ??
      Promise.resolve();
  }

  /**
   * Ends pod `uid` for good but keeps it, Failed as `termination` says, its containers stopped
   * within its grace period (the node shutdown); resolves once they are stopped.
   */
  terminateAbnormally(uid: string, termination: KeptTermination): Promise<void> {
    return this.#workers.get(uid)?.terminateAbnormally(termination) ?? Promise.resolve();
  }

  /**
   * The pods running on the node, as the kubelet's active pods: admitted and not terminated
   * yet (a pod being deleted counts until its containers are stopped).
   */
  activePods(): V1Pod[] {
    return [...this.#workers.values()].filter((w) => w.active).map((w) => w.pod);
  }

  /**
   * Per container name of pod `uid`: its unit as planned and written (the kubelet API's logs,
   * exec and stats follow these); empty while none is written.
   */
  containerUnits(uid: string): ReadonlyMap<string, string> {
    return this.#workers.get(uid)?.containerUnits() ?? new Map();
  }

  /** A unit's state as last observed (see observed.ts), if it is one of the pods'. */
  unitState(unit: string): UnitProperties | undefined {
    return this.#observed.get(unit);
  }

  /** Stops every adopted pod that is not in `desired` (after the first full listing). */
  async collectOrphans(desired: ReadonlySet<string>): Promise<void> {
    const orphans = [...this.#unclaimed].filter(([uid]) => !desired.has(uid));
    await Promise.all(orphans.map(([uid, found]) => this.#stopOrphan({ uid, ...found }, 0)));
  }

  /**
   * Units whose `ActiveState` in systemd, read now, differs from the observed state (which
   * only systemd's signals and the runtime's own reads change), each as
   * `unit is X in systemd, Y as last heard`. Every owned unit is compared, in one call to
   * systemd (the kubelet's PLEG relists every container); a unit systemd has unloaded is
   * skipped. Every unit is `Restart=no`, so a run systemd starts or ends without systemk
   * changes the active state.
   */
  async staleUnits(): Promise<string[]> {
    const states = await this.#o.units.activeStates();
    return [...this.#owner.keys()].flatMap((unit) => {
      const seen = this.#observed.get(unit)?.ActiveState;
      const now = states.get(unit);
      return seen === undefined || now === undefined || now === seen
        ? []
        : [`${unit} is ${now} in systemd, ${seen} as last heard`];
    });
  }

  /** Waits for every worker's running step; sets no timer any more. Pods keep running. */
  async close(): Promise<void> {
    await Promise.all([...this.#workers.values()].map((w) => w.close()));
    await Promise.all(this.#orphanStops.values());
  }

  #worker(pod: V1Pod): PodWorker {
    const uid = pod.metadata!.uid!;
    let worker = this.#workers.get(uid);
    if (!worker) {
      worker = new PodWorker(pod, {
        ...this.#context,
        adopted: this.#unclaimed.get(uid) ?? { units: new Map() },
        after: this.#orphanStops.get(uid),
        rejection: this.#admit(pod),
      });
      this.#unclaimed.delete(uid);
      this.#workers.set(uid, worker);
    }
    return worker;
  }

  /**
   * Why `pod`, seen for the first time, may not run beside the active pods, if it may not (the
   * kubelet's `canAdmitPod`: its predicates, then the other admission handlers).
   */
  #admit(pod: V1Pod): ReturnType<PodAdmitHandler> {
    if (pod.metadata?.deletionTimestamp || isTerminalPhase(pod.status?.phase)) return;
    const active = this.activePods();
    return admitHostPorts(pod, active) ??
      this.#o.admitHandlers?.map((admit) => admit(pod)).find((rejection) => rejection);
  }

  /** Another pod (same namespace/name, other UID) still owns a unit name: it must go first. */
  async #claim(unit: string, uid: string): Promise<void> {
    const owner = this.#owner.get(unit);
    if (owner && owner !== uid) {
      const found = this.#unclaimed.get(owner);
      // An orphan being stopped already, or a pod: its termination is waited for.
      if (found) await this.#stopOrphan({ uid: owner, ...found });
      else await this.terminate(owner);
    }
    this.#owner.set(unit, uid);
  }

  /** What was found on the machine of pod `uid` so far. */
  #found(uid: string): FoundPod {
    let found = this.#unclaimed.get(uid);
    if (!found) this.#unclaimed.set(uid, found = { units: new Map() });
    return found;
  }

  /** A pod slice found on the machine: adopted by the pod UID in its `[X-Kubernetes]`. */
  #adoptSlice(name: string, text: string): void {
    let meta;
    try {
      meta = readPodMetadata(parseUnit(text));
    } catch {
      meta = undefined;
    }
    if (meta?.nodeName === this.#o.node.name) this.#found(meta.podUID).slice = { name, text };
  }

  /**
   * Stops and removes an orphan's units, then its directory and slice (no pod: no hooks, no
   * events).
   */
  #stopOrphan(orphan: Orphan, graceSeconds?: number): Promise<void> {
    const { uid, units, slice } = orphan;
    this.#unclaimed.delete(uid);
    const stop = (async () => {
      const names = [...units.keys()];
      await Promise.all(names.map((name) => stopUnit(this.#o.units, name, { graceSeconds })));
      for (const name of names) {
        await this.#o.units.remove(name);
        this.#context.release(name, uid);
      }
      await this.#o.userRecords?.release(uid);
      await removePodDir(podDirectory(this.#o.stateDir, uid));
      if (slice) await this.#o.units.remove(slice.name);
    })().catch((e) => {
      log.error(`systemk could not stop and clean up ${uid}: ${e.message}`);
      reconcileErrors.inc();
    })
      .finally(() => this.#orphanStops.delete(uid));
    this.#orphanStops.set(uid, stop);
    return stop;
  }

  #observe(name: string, props: UnitProperties): void {
    const uid = this.#owner.get(name);
    if (!uid) return;
    this.#observed.set(name, props);
    this.#workers.get(uid)?.observe(name, props);
  }

  /** The kernel's OOM killer hit a unit: its pod's status says OOMKilled. */
  #oomKill(name: string): void {
    const uid = this.#owner.get(name);
    if (!uid) return;
    this.#observed.oomKill(name).then((hit) => {
      if (hit) this.#workers.get(uid)?.publish();
    }, (e) => log.warn(`reading ${name} after an OOM kill: ${e.message}`));
  }

  /**
   * Resizes deferred for want of room are tried again: a pod went, or one was resized (the
   * kubelet retries them then, and every 3 minutes).
   */
  #retryDeferredResizes(): void {
    for (const worker of this.#workers.values()) worker.retryDeferredResize();
  }

  /** Sets the pods-by-phase gauge from the statuses last computed. */
  #countPhases(): void {
    const counts = new Map<string, number>();
    for (const worker of this.#workers.values()) {
      const phase = worker.lastStatus?.phase;
      if (phase) counts.set(phase, (counts.get(phase) ?? 0) + 1);
    }
    podsByPhase.replaceAll([...counts].map(([phase, value]) => ({ labels: { phase }, value })));
  }
}
