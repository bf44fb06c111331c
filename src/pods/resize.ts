/**
 * A pod's in-place resize, as the kubelet's allocation manager and status manager keep it: what
 * its containers are allocated, whether a resize the spec asks for can be allocated
 * (src/plan/allocation.ts: `Infeasible`, `Deferred`), and the conditions that say where a resize
 * is: `PodResizePending` (not allocated: reason and message) and `PodResizeInProgress` (allocated,
 * not yet what the running units have; reason `Error` when applying it failed), each with the
 * pod's generation of its start, cleared when done (`ResizeCompleted` event).
 *
 * The allocation is kept in memory and seeded, after a restart of systemk, from the resources its
 * units record (their `Resources=`): what the running units were given is what was allocated.
 * The pod worker plans the pod as allocated (pod_units.ts applies the change to running units);
 * this module decides and reports.
 *
 * @module
 */
import type { V1Pod, V1PodCondition, V1ResourceRequirements } from "@kubernetes/client-node";
import {
  allocatedPod,
  changedResources,
  type CpuMemory,
  decideResize,
  podAllocation,
  podRequests,
  resizeRequested,
} from "../plan/allocation.ts";
import type { ContainerResources } from "../status/mod.ts";
import { parseUnit, readMetadata } from "../unit/mod.ts";
import type { UnitRef } from "./context.ts";
import type { PodEventInfo } from "./ports.ts";
import { manifestOf } from "./static.ts";

/** What the running units of a pod's containers have, by container name. */
export type ActualResources = ReadonlyMap<
  string,
  { running: boolean; resources?: V1ResourceRequirements }
>;

/** What a pod's resize needs from its worker and the runtime. */
export interface PodResizeOptions {
  /** The node's allocatable CPU and memory; unknown = every resize fits. */
  allocatable?: CpuMemory;
  /** The requests of every other pod the node runs, as allocated. */
  othersRequests(): CpuMemory;
  /** Records an Event about the pod. */
  event(event: PodEventInfo): void;
}

/** The resources a unit's `[X-Kubernetes]` records it runs with; undefined when it records none. */
export function unitResources(text: string): V1ResourceRequirements | undefined {
  try {
    const recorded = readMetadata(parseUnit(text))?.resources;
    return recorded === undefined ? undefined : JSON.parse(recorded);
  } catch {
    return undefined;
  }
}

/** How applying a pod's resize went: see {@link PodResize.settle}. */
export interface ResizeSettleOptions {
  /** Why applying the allocated resources to the units failed; undefined when it did not. */
  error?: string;
  /** The current time, for the conditions' transition times. */
  now: Date;
}

/** One pod's allocation and resize conditions; see the module doc. */
export class PodResize {
  readonly #o: PodResizeOptions;
  /** Per container: its allocated resources; seeded from the units found on the machine. */
  readonly #allocation = new Map<string, V1ResourceRequirements>();
  #pending?: V1PodCondition;
  #inProgress?: V1PodCondition;
  /** The conditions the API shows were taken over (after a restart of systemk). */
  #backfilled = false;

  /**
   * @param options the node's allocatable, the other pods' requests, the event sink.
   * @param adopted the pod's units found on the machine.
   */
  constructor(options: PodResizeOptions, adopted: ReadonlyMap<string, UnitRef>) {
    this.#o = options;
    for (const ref of adopted.values()) {
      const resources = unitResources(ref.text);
      if (resources) this.#allocation.set(ref.container, resources);
    }
  }

  /**
   * The pod as it is to run: a resize its spec asks for allocated when it can be (then in
   * progress until the units have it), else pending with the reason; a container not allocated
   * yet gets its spec's resources (admission).
   *
   * @return the pod with its containers' resources as allocated, and whether a resize was
   *   allocated now.
   */
  allocate(pod: V1Pod, now: Date): { pod: V1Pod; resized: boolean } {
    if (!this.#backfilled) {
      // As the kubelet's BackfillPodResizeConditions: a restart neither repeats events nor
      // moves transition times.
      const shown = (type: string) => pod.status?.conditions?.find((c) => c.type === type);
      this.#pending = shown("PodResizePending");
      this.#inProgress = shown("PodResizeInProgress");
      this.#backfilled = true;
    }
    for (const [name, resources] of podAllocation(pod)) {
      if (!this.#allocation.has(name)) this.#allocation.set(name, resources);
    }
    if (!resizeRequested(pod, this.#allocation)) {
      this.#pending = undefined;
      return { pod: allocatedPod(pod, this.#allocation), resized: false };
    }
    const unknown = { cpuMilli: Infinity, memoryBytes: Infinity };
    const pending = decideResize(pod, {
      allocatable: this.#o.allocatable ?? unknown,
      othersRequests: this.#o.othersRequests(),
      staticPod: manifestOf(pod) !== undefined,
    });
    const generation = pod.metadata?.generation;
    if (pending) {
      if (this.#pending?.reason !== pending.reason || this.#pending.message !== pending.message) {
        // The kubelet of 1.35 says so in an event too; the condition alone is easy to miss.
        this.#o.event({
          type: "Warning",
          reason: `Resize${pending.reason}`,
          message: `Pod resize ${pending.reason}: ${pending.message}`,
        });
      }
      this.#pending = condition("PodResizePending", this.#pending, { ...pending, generation, now });
      return { pod: allocatedPod(pod, this.#allocation), resized: false };
    }
    for (const [name, resources] of podAllocation(pod)) this.#allocation.set(name, resources);
    this.#pending = undefined;
    // A new allocation starts a new resize: an earlier error no longer applies.
    this.#inProgress = condition("PodResizeInProgress", undefined, { generation, now });
    return { pod, resized: true };
  }

  /**
   * After the containers were brought in line: the resize is in progress while a running
   * container's unit has other resources than allocated (with `error` when applying them
   * failed), and completed once none has.
   */
  settle(pod: V1Pod, actual: ActualResources, options: ResizeSettleOptions): void {
    const { error, now } = options;
    const behind = [...actual].some(([name, unit]) =>
      unit.running && this.#allocation.has(name) &&
      changedResources(this.#allocation.get(name), unit.resources).length > 0
    );
    if (error) {
      this.#inProgress = condition("PodResizeInProgress", this.#inProgress, {
        reason: "Error",
        message: error,
        generation: this.#inProgress?.observedGeneration ?? pod.metadata?.generation,
        now,
      });
    } else if (behind) {
      this.#inProgress ??= condition("PodResizeInProgress", undefined, {
        generation: pod.metadata?.generation,
        now,
      });
    } else if (this.#inProgress) {
      this.#inProgress = undefined;
      this.#o.event({
        type: "Normal",
        reason: "ResizeCompleted",
        message: `Pod resize completed: ${this.#summary(pod)}`,
      });
    }
  }

  /** Whether a resize waits for room on the node (retried when other pods shrink or go). */
  get deferred(): boolean {
    return this.#pending?.reason === "Deferred";
  }

  /** The resize conditions to report. */
  conditions(): V1PodCondition[] {
    return [this.#pending, this.#inProgress].filter((c) => c !== undefined);
  }

  /** The pod's requests as allocated, as the other pods' resizes count them. */
  requests(pod: V1Pod): CpuMemory {
    return podRequests(allocatedPod(pod, this.#allocation));
  }

  /** Per container: allocated resources (its spec's, for one not resizable) and its unit's. */
  statusResources(pod: V1Pod, actual: ActualResources): Map<string, ContainerResources> {
    const out = new Map<string, ContainerResources>();
    for (const c of [...(pod.spec?.initContainers ?? []), ...(pod.spec?.containers ?? [])]) {
      const unit = actual.get(c.name);
      out.set(c.name, {
        allocated: this.#allocation.get(c.name) ?? c.resources ?? {},
        ...(unit?.resources ? { actual: unit.resources } : {}),
      });
    }
    return out;
  }

  /** The allocated resources, as the kubelet's `ResizeCompleted` event lists them. */
  #summary(pod: V1Pod): string {
    const list = (containers: { name: string }[] = []) =>
      containers.filter((c) => this.#allocation.has(c.name))
        .map((c) => ({ name: c.name, resources: this.#allocation.get(c.name) }));
    const initContainers = list(pod.spec?.initContainers);
    return JSON.stringify({
      ...(initContainers.length ? { initContainers } : {}),
      containers: list(pod.spec?.containers),
    });
  }
}

/**
 * A resize condition as the kubelet's status manager writes it: `True`, its reason and message,
 * the generation it is about; the transition time kept while the reason stays.
 */
function condition(
  type: "PodResizePending" | "PodResizeInProgress",
  before: V1PodCondition | undefined,
  next: { reason?: string; message?: string; generation?: number; now: Date },
): V1PodCondition {
  const now = new Date(Math.floor(next.now.getTime() / 1000) * 1000);
  const same = before && (before.reason ?? "") === (next.reason ?? "");
  return {
    type,
    status: "True",
    ...(next.reason ? { reason: next.reason } : {}),
    ...(next.message ? { message: next.message } : {}),
    ...(next.generation ? { observedGeneration: next.generation } : {}),
    lastProbeTime: same && before.message === next.message ? before.lastProbeTime : now,
    lastTransitionTime: same ? before.lastTransitionTime : now,
  };
}
