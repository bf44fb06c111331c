/**
 * A pod's unit files and slice, as the kubelet's `computePodActions` finds what of a pod's
 * containers must change and `SyncPod` applies it: the pod's slice written first (every unit
 * runs in it); each unit whose text changed written as planned, its old run stopped first (by
 * the pod's containers, pod_containers.ts); a running unit whose resources alone changed
 * resized in place (`SetUnitProperties`) or restarted per its `resizePolicy`; units no longer
 * planned removed; an ephemeral container's unit written once and kept while the pod lives.
 * It owns the pod's units ({@link UnitRef} by name) and answers what they are: the container
 * and kind of each, the resources they record, the pod ids they run with.
 *
 * @module
 */
import type { V1Container, V1Pod, V1ResourceRequirements } from "@kubernetes/client-node";
import { allContainers, type ContainerKind, type PodIds, type PodPlan } from "../plan/mod.ts";
import { changedResources } from "../plan/allocation.ts";
import { resourcesOnlyChange, unitResourceProperties } from "../plan/resources.ts";
import { podIdsOfUnit } from "../node/user_records.ts";
import type { Log } from "../log/mod.ts";
import type { FoundPod, PodRuntimeContext, SliceRef, UnitRef } from "./context.ts";
import { type ActualResources, unitResources } from "./resize.ts";

/** What a pod's units need from their pod worker and its containers. */
export interface PodUnitsOptions {
  context: PodRuntimeContext;
  uid: string;
  /** The pod as last seen. */
  pod(): V1Pod;
  /** The pod's units and slice found on the machine. */
  adopted: FoundPod;
  log: Log;
  /** Stops the run of a unit about to be rewritten (its end is not a crash). */
  replace(unit: string): Promise<void>;
  /** A unit was removed: nothing follows its runs any more. */
  onRemoved(unit: string): void;
}

/** A unit of the pod with its container's spec and kind, as the pod's spec says now. */
export interface SpecUnit {
  name: string;
  container: V1Container;
  kind: ContainerKind;
}

/** What writing a plan changed. */
export interface Installed {
  /** The units written anew (not resized in place). */
  changed: PodPlan["units"];
  /** Why a resize could not be applied to a running unit (retried). */
  resizeError?: string;
}

/** The unit files and slice of one pod; see the module doc. */
export class PodUnits {
  readonly #o: PodUnitsOptions;
  readonly #c: PodRuntimeContext;
  /** The pod's units by name, as planned (or found on the machine). */
  readonly #units: Map<string, UnitRef>;
  /** The pod's slice, once installed (or found on the machine). */
  #slice?: SliceRef;
  /**
   * The resources each unit's text records, read once per text (a ref is replaced when its
   * text changes): every status of the pod reports them, and would parse the unit again.
   */
  readonly #recorded = new WeakMap<UnitRef, V1ResourceRequirements | undefined>();

  /** @param options the runtime's context, the pod worker's and the containers' hooks. */
  constructor(options: PodUnitsOptions) {
    this.#o = options;
    this.#c = options.context;
    this.#units = options.adopted.units;
    this.#slice = options.adopted.slice;
  }

  /** The pod's units by name (a live view). */
  get refs(): ReadonlyMap<string, UnitRef> {
    return this.#units;
  }

  /** The names of the pod's units. */
  names(): string[] {
    return [...this.#units.keys()];
  }

  /** Per container name: the unit written for it (or found on the machine). */
  containerUnits(): Map<string, string> {
    return new Map([...this.#units].map(([unit, ref]) => [ref.container, unit]));
  }

  /** The ephemeral containers whose unit is written (once: they never change). */
  createdEphemeral(): Set<string> {
    return new Set(
      this.specUnits().filter((u) => u.kind === "ephemeral").map((u) => u.container.name),
    );
  }

  /**
   * The pod ids the pod's units run with: the plan's, and those of its created ephemeral
   * containers' units (written once, never planned again), which need their records too.
   */
  podIds(plan: PodPlan): PodIds {
    const ids = [
      plan.podIds,
      ...this.specUnits().filter((u) => u.kind === "ephemeral")
        .map((u) => podIdsOfUnit(this.#units.get(u.name)!.text)),
    ];
    const union = (lists: number[][]) => [...new Set(lists.flat())].sort((a, b) => a - b);
    return { users: union(ids.map((i) => i.users)), groups: union(ids.map((i) => i.groups)) };
  }

  /** The pod's units in spec order, with their containers' specs and kinds. */
  specUnits(): SpecUnit[] {
    const spec = this.#o.pod().spec;
    const byContainer = new Map([...this.#units].map(([name, ref]) => [ref.container, name]));
    return allContainers({ ...spec, containers: spec?.containers ?? [] }).flatMap((c) => {
      const name = byContainer.get(c.container.name);
      return name ? [{ name, ...c }] : [];
    });
  }

  /** The spec unit of `unit`, if the pod's spec still has its container. */
  specUnit(unit: string): SpecUnit | undefined {
    return this.specUnits().find((u) => u.name === unit);
  }

  /**
   * The spec unit of `unit` when its container is an app container or a sidecar: what restarts,
   * is probed and has lifecycle hooks.
   */
  restartable(unit: string): (SpecUnit & { kind: "app" | "sidecar" }) | undefined {
    const found = this.specUnit(unit);
    return found && (found.kind === "app" || found.kind === "sidecar")
      ? { ...found, kind: found.kind }
      : undefined;
  }

  /** What the unit's container is to the pod (a unit whose container left the spec: app). */
  kind(ref: UnitRef): ContainerKind {
    return this.specUnits().find((u) => u.container.name === ref.container)?.kind ??
      (ref.init ? "init" : "app");
  }

  /**
   * Writes the units whose text changed and removes unplanned ones. A change of resources only
   * is an in-place resize (resize.ts); any other change stops the old run first.
   */
  async install(plan: PodPlan): Promise<Installed> {
    const { units, observed } = this.#c;
    // The units run in the pod's slice: it must be there before the first of them starts.
    if (this.#slice?.text !== plan.slice.text) {
      await units.install(plan.slice.name, plan.slice.text);
      this.#slice = { name: plan.slice.name, text: plan.slice.text };
    }
    const changed = [];
    let resizeError: string | undefined;
    for (const unit of plan.units) {
      const previous = this.#units.get(unit.name);
      if (previous?.text === unit.text) continue;
      if (previous && resourcesOnlyChange(previous.text, unit.text)) {
        const resized = await this.#resize(unit, previous);
        if (resized === "restart") {
          this.#event("Killing", `Container ${unit.container} resize requires restart`, unit);
        } else {
          resizeError ??= resized.error;
          continue;
        }
      }
      await this.#c.claim(unit.name, this.#o.uid);
      if (previous) await this.#o.replace(unit.name);
      await units.install(unit.name, unit.text);
      this.#units.set(unit.name, { container: unit.container, init: unit.init, text: unit.text });
      changed.push(unit);
    }
    // An ephemeral container never changes (the API refuses to): its unit, written when it was
    // created (naming its target's main PID), stays as it is until the pod goes.
    for (const [name, ref] of [...this.#units]) {
      if (this.kind(ref) === "ephemeral" || plan.units.some((u) => u.name === name)) continue;
      await this.remove(name);
    }
    // An adopted unit's state must be known before the containers judge it "fresh": else a
    // container that already ended under `restartPolicy: Never`, or an ephemeral one (never
    // planned again), runs again after a restart of systemk.
    for (const name of this.#units.keys()) {
      if (!changed.some((u) => u.name === name)) await observed.current(name);
    }
    for (const unit of changed) {
      this.#event("Created", `Created unit ${unit.name}`, unit);
      await observed.refresh(unit.name);
    }
    return { changed, resizeError };
  }

  /** A Normal Event about a planned unit's container. */
  #event(reason: string, message: string, unit: PodPlan["units"][number]): void {
    this.#c.events.record(this.#o.pod(), {
      type: "Normal",
      reason,
      message,
      container: unit.container,
    });
  }

  /**
   * A unit whose resources alone changed, as the kubelet's `computePodResizeAction` treats its
   * container: one not running just gets its new file (its next start has them); a running one
   * is restarted when the `resizePolicy` of a changed resource says `RestartContainer`, else
   * given the new values in place (`SetUnitProperties`: same invocation) — unless its memory
   * limit would drop to or below what it uses now, which the kubelet refuses (the kernel would
   * have to reclaim or kill; on cgroup v1 systemd would fail to lower it and not say so).
   *
   * @return `restart`, or an `error` that keeps the resize in progress (retried).
   */
  async #resize(
    unit: PodPlan["units"][number],
    previous: UnitRef,
  ): Promise<"restart" | { error?: string }> {
    const { units } = this.#c;
    const props = await units.properties(unit.name);
    const applied = () => {
      this.#units.set(unit.name, { ...previous, text: unit.text });
      return {};
    };
    if (props.ActiveState !== "active" || props.SubState !== "running") {
      await units.install(unit.name, unit.text);
      return applied();
    }
    const container = this.specUnit(unit.name)?.container;
    const before = unitResources(previous.text);
    const after = unitResources(unit.text);
    const changed = changedResources(before, after);
    const policy = (resource: string) =>
      container?.resizePolicy?.find((p) => p.resourceName === resource)?.restartPolicy;
    if (changed.some((resource) => policy(resource) === "RestartContainer")) return "restart";
    const properties = unitResourceProperties(unit.text);
    const limit = properties.MemoryMax;
    const usage = props.MemoryCurrent;
    if (
      limit !== undefined && usage !== undefined && limit <= BigInt(usage) &&
      limit < (unitResourceProperties(previous.text).MemoryMax ?? BigInt(Number.MAX_SAFE_INTEGER))
    ) {
      return {
        error: `cannot decrease memory limits: attempting to set container "${unit.container}" ` +
          `memory limit (${limit}) below current usage (${usage})`,
      };
    }
    await units.resize(unit.name, { text: unit.text, properties });
    this.#o.log.debug(`${unit.name} resized in place: ${changed.join(", ")}`);
    return applied();
  }

  /** Per container: whether its unit runs, and the resources the unit records it runs with. */
  actualResources(): ActualResources {
    const out = new Map<string, { running: boolean; resources?: V1ResourceRequirements }>();
    for (const [name, ref] of this.#units) {
      const props = this.#c.observed.get(name);
      const running = props?.ActiveState === "active" && props.SubState === "running";
      if (!this.#recorded.has(ref)) this.#recorded.set(ref, unitResources(ref.text));
      out.set(ref.container, { running, resources: this.#recorded.get(ref) });
    }
    return out;
  }

  /** Removes the pod's slice, once its units are gone. */
  async removeSlice(): Promise<void> {
    if (!this.#slice) return;
    await this.#c.units.remove(this.#slice.name);
    this.#slice = undefined;
  }

  /** Removes a unit: stopped if needed, file deleted, forgotten. */
  async remove(name: string): Promise<void> {
    await this.#c.units.remove(name);
    this.#units.delete(name);
    this.#o.onRemoved(name);
    this.#c.release(name, this.#o.uid);
  }
}
