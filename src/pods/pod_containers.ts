/**
 * A pod's containers, as the kubelet's `SyncPod` keeps them: the pod's slice written first
 * (every unit runs in it), their unit files written as planned (a changed unit's old run
 * stopped first; a running unit whose resources alone changed resized in place), the app units
 * started (systemd pulls in the
 * init chain), runs that ended restarted per restartPolicy after the crash-loop back-off
 * (restarts.ts), running runs probed (prober.ts), containers stopped with their hooks and grace
 * (containers.ts). The pod worker decides when; this module does it.
 *
 * @module
 */
import type { V1Container, V1Pod, V1ResourceRequirements } from "@kubernetes/client-node";
import type { PodPlan } from "../plan/mod.ts";
import { changedResources } from "../plan/allocation.ts";
import { resourcesOnlyChange, unitResourceProperties } from "../plan/resources.ts";
import type { ContainerOverride, ContainerUnit } from "../status/mod.ts";
import type { UnitProperties } from "../unit/properties.ts";
import type { Log } from "../log/mod.ts";
import { ContainerLifecycle } from "./containers.ts";
import {
  type FoundPod,
  podKey,
  type PodRuntimeContext,
  type SliceRef,
  type UnitRef,
} from "./context.ts";
import { ProberManager } from "./prober.ts";
import { type ActualResources, unitResources } from "./resize.ts";
import { RestartManager } from "./restarts.ts";

/** What a pod's containers need from their pod worker. */
export interface PodContainersOptions {
  context: PodRuntimeContext;
  uid: string;
  /** The pod as last seen. */
  pod(): V1Pod;
  /** The pod's units and slice found on the machine. */
  adopted: FoundPod;
  log: Log;
  /** Runs a step in the pod's queue. */
  enqueue(step: () => Promise<void>): Promise<void>;
  /** The pod's status is due. */
  publish(): void;
  /** Whether containers may (re)start and be probed (the pod is syncing). */
  running(): boolean;
  /** An app container started: the pod's retry back-off starts over. */
  onStarted(): void;
}

/** The containers of one pod; see the module doc. */
export class PodContainers {
  readonly #o: PodContainersOptions;
  readonly #c: PodRuntimeContext;
  /** The pod's units by name, as planned (or found on the machine). */
  readonly #units: Map<string, UnitRef>;
  /** The pod's slice, once installed (or found on the machine). */
  #slice?: SliceRef;
  /** The app units were asked to start since the last (re)try. */
  #appsStarted = false;
  readonly #containers: ContainerLifecycle;
  readonly #restarts: RestartManager;
  readonly #prober: ProberManager;

  /** @param options the runtime's context and the pod worker's hooks. */
  constructor(options: PodContainersOptions) {
    this.#o = options;
    const context = this.#c = options.context;
    this.#units = options.adopted.units;
    this.#slice = options.adopted.slice;
    const { units, observed, node } = context;
    const event = (type: "Normal" | "Warning", reason: string, message: string, c?: string) =>
      context.events.record(options.pod(), type, reason, message, c);
    this.#containers = new ContainerLifecycle({
      units,
      observed,
      host: node.externalIP,
      exec: context.exec,
      onEvent: event,
      onPostStart: (unit, invocation, ok) => {
        if (ok) {
          this.#syncProbes(unit);
        } else {
          options.enqueue(async () => {
            if ((await units.properties(unit)).InvocationID !== invocation) return;
            await this.stop(unit);
          });
        }
        options.publish();
      },
    });
    this.#restarts = new RestartManager(context.crashLoopBackoffBaseMs);
    this.#prober = new ProberManager({
      host: node.externalIP,
      exec: context.exec,
      onResult: () => options.publish(),
      onEvent: event,
      // The run ends; the crash-loop back-off restarts it per restartPolicy, as the kubelet.
      onUnhealthy: (unit, invocation, graceSeconds) =>
        options.enqueue(async () => {
          if (!this.#prober.probing(unit, invocation)) return;
          await this.stop(unit, graceSeconds);
        }),
    });
  }

  /** The names of the pod's units. */
  names(): string[] {
    return [...this.#units.keys()];
  }

  /** The unit of an init container that failed, if `unit` is one. */
  failedInit(unit: string, props: UnitProperties): UnitRef | undefined {
    const ref = this.#units.get(unit);
    return ref?.init && props.ActiveState === "failed" ? ref : undefined;
  }

  /**
   * Makes the containers what `plan` says: units written, the app units started (again, after
   * a retry or a changed unit), resized running units given their new resources.
   *
   * @return why a resize could not be applied to a running unit (the worker retries it).
   */
  async apply(plan: PodPlan): Promise<{ resizeError?: string }> {
    const { changed, resizeError } = await this.#install(plan);
    this.#o.log.debug(
      `${plan.units.length} unit(s) planned, ${changed.length} written: ${
        changed.map((u) => u.name).join(", ") || "none"
      }`,
    );
    await this.#startApps(plan, changed.length > 0);
    return { resizeError };
  }

  /** The pod will be tried again from the start: its app units may be started again. */
  retrying(): void {
    this.#appsStarted = false;
  }

  /** A unit of the pod changed (systemd's signal). */
  observe(unit: string, props: UnitProperties): void {
    this.#containers.runEnded(unit, props);
    const ref = this.#units.get(unit);
    if (ref && !ref.init) this.#followApp(unit);
  }

  /** Before an init container's retry: the init units' failed state reset, every unit read. */
  async resetInits(): Promise<void> {
    for (const [name, ref] of this.#units) if (ref.init) await this.#c.units.resetFailed(name);
    for (const name of this.#units.keys()) this.#c.observed.invalidate(name);
    for (const name of this.#units.keys()) await this.#c.observed.refresh(name);
  }

  /** From now on nothing starts, restarts or probes the containers. */
  quiesce(): void {
    this.#restarts.cancelAll();
    this.#prober.stopAll();
    this.#containers.abortAll();
  }

  /** Per container name: its unit's observed state, unless its postStart hook still runs. */
  statusUnits(): Map<string, ContainerUnit> {
    const units = new Map<string, ContainerUnit>();
    for (const [name, ref] of this.#units) {
      const observed = this.#c.observed.observed(name);
      // A container whose postStart hook still runs shows as not yet started (kubelet).
      if (observed && !this.#containers.hookRunning(name)) {
        units.set(ref.container, { ...observed, unitName: name });
      }
    }
    return units;
  }

  /**
   * Writes the units whose text changed and removes unplanned ones. A change of resources only
   * is an in-place resize (resize.ts); any other change stops the old run first.
   */
  async #install(
    plan: PodPlan,
  ): Promise<{ changed: PodPlan["units"]; resizeError?: string }> {
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
      if (previous?.text === unit.text) {
        // An adopted unit's state must be known before #startApps judges it "fresh": else a
        // container that already ended under `restartPolicy: Never` runs again after a
        // restart of systemk.
        await observed.current(unit.name);
        continue;
      }
      if (previous && resourcesOnlyChange(previous.text, unit.text)) {
        const resized = await this.#resize(unit, previous);
        if (resized === "restart") {
          this.#c.events.record(
            this.#o.pod(),
            "Normal",
            "Killing",
            `Container ${unit.container} resize requires restart`,
            unit.container,
          );
        } else {
          resizeError ??= resized.error;
          continue;
        }
      }
      await this.#c.claim(unit.name, this.#o.uid);
      if (previous) {
        await this.#restarts.replace(unit.name, async () => {
          await this.stop(unit.name);
          return (await units.properties(unit.name)).InvocationID;
        });
      }
      await units.install(unit.name, unit.text);
      this.#units.set(unit.name, { container: unit.container, init: unit.init, text: unit.text });
      changed.push(unit);
    }
    for (const name of [...this.#units.keys()]) {
      if (!plan.units.some((u) => u.name === name)) await this.remove(name);
    }
    for (const unit of changed) {
      this.#c.events.record(
        this.#o.pod(),
        "Normal",
        "Created",
        `Created unit ${unit.name}`,
        unit.container,
      );
      await observed.refresh(unit.name);
    }
    return { changed, resizeError };
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
    const container = this.#appContainer(unit.name) ??
      this.#o.pod().spec?.initContainers?.find((c) => c.name === unit.container);
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
    await units.resize(unit.name, unit.text, properties);
    this.#o.log.debug(`${unit.name} resized in place: ${changed.join(", ")}`);
    return applied();
  }

  /** Per container: whether its unit runs, and the resources the unit records it runs with. */
  actualResources(): ActualResources {
    const out = new Map<string, { running: boolean; resources?: V1ResourceRequirements }>();
    for (const [name, ref] of this.#units) {
      const props = this.#c.observed.get(name);
      const running = props?.ActiveState === "active" && props.SubState === "running";
      out.set(ref.container, { running, resources: unitResources(ref.text) });
    }
    return out;
  }

  /**
   * Follows the units the pod has, as they are: their state (read once for adopted ones, so the
   * status shows them), restarts per policy of containers that ended (adopted ones may have
   * ended while systemk was away), and probes.
   */
  async follow(): Promise<void> {
    for (const name of [...this.#units.keys()]) {
      await this.#c.observed.current(name);
      this.#followApp(name);
    }
  }

  /** An app unit's restart (when its run ended) and probes, per its current state. */
  #followApp(unit: string): void {
    this.#restartIfEnded(unit);
    this.#syncProbes(unit);
  }

  /**
   * Starts the app units (systemd pulls in the init chain through Requires=/After=). Units that
   * already ran are left to the restart manager: starting a container that exited under
   * `restartPolicy: Never` again would be wrong.
   */
  async #startApps(plan: PodPlan, changed: boolean): Promise<void> {
    const apps = plan.units.filter((u) => !u.init);
    const fresh = apps.filter((u) => {
      const props = this.#c.observed.get(u.name);
      return !props || (props.InvocationID === "" && props.ActiveState === "inactive");
    });
    if (fresh.length === 0 || (this.#appsStarted && !changed && !this.initRetryDue())) return;
    this.#appsStarted = true;
    this.#o.log.debug(`starting ${fresh.map((u) => u.name).join(", ")}`);
    await Promise.all(fresh.map(async (unit) => {
      const result = await this.#startContainer(unit.name);
      if (result === "done") this.#o.onStarted();
      await this.#c.observed.refresh(unit.name);
    }));
    this.#o.publish();
  }

  /** Starts a container's unit and says how that went in an Event. */
  async #startContainer(unit: string): Promise<string> {
    const ref = this.#units.get(unit)!;
    const result = await this.#containers.start(unit, this.#appContainer(unit));
    if (result === "done") {
      this.#c.events.record(
        this.#o.pod(),
        "Normal",
        "Started",
        `Started unit ${unit}`,
        ref.container,
      );
    } else if (result !== "dependency") {
      this.#c.events.record(
        this.#o.pod(),
        "Warning",
        "Failed",
        `Starting unit ${unit} failed: ${result}`,
        ref.container,
      );
    }
    return result;
  }

  /** An init container failed and the pod's policy wants it retried. */
  initRetryDue(): boolean {
    if (this.#o.pod().spec?.restartPolicy === "Never") return false;
    return [...this.#units].some(([name, ref]) =>
      ref.init && this.#c.observed.get(name)?.ActiveState === "failed"
    );
  }

  /**
   * An app container's run ended: has the restart manager schedule its restart after the
   * crash-loop back-off when its restartPolicy wants one, showing `CrashLoopBackOff` meanwhile.
   */
  #restartIfEnded(unit: string): void {
    const container = this.#appContainer(unit);
    const props = this.#c.observed.get(unit);
    if (!container || !props || !this.#o.running()) return;
    const decision = this.#restarts.judge(unit, {
      props,
      pod: this.#o.pod(),
      container,
      restart: (ended) => this.#o.enqueue(() => this.#restartContainer(unit, ended)),
    });
    if (!decision) return;
    this.#o.log.debug(`${unit} ended; restarting in ${decision.delayMs} ms`);
    this.#c.events.record(
      this.#o.pod(),
      "Warning",
      "BackOff",
      `Back-off restarting failed container ${container.name} in pod ${podKey(this.#o.pod())}`,
      container.name,
    );
    this.#o.publish();
  }

  /** Starts a new run of an app container, unless its ended run was replaced meanwhile. */
  async #restartContainer(unit: string, ended: string | undefined): Promise<void> {
    if (!this.#units.has(unit) || !this.#o.running()) return;
    const props = await this.#c.units.properties(unit);
    // A newer run started meanwhile: nothing to restart. (A unit stopped cleanly may have been
    // unloaded by systemd's garbage collection, which forgets its InvocationID: still ended.)
    if (props.InvocationID !== "" && props.InvocationID !== ended) return this.#o.publish();
    // `RemainAfterExit=yes` keeps a run that exited 0 active: only a stop lets it start again.
    if (props.ActiveState === "active") await this.#c.units.stop(unit);
    await this.#c.units.resetFailed(unit);
    const result = await this.#startContainer(unit);
    if (result === "dependency") {
      this.#c.events.record(
        this.#o.pod(),
        "Warning",
        "Failed",
        `Starting unit ${unit} failed: ${result}`,
        this.#units.get(unit)!.container,
      );
    }
    await this.#c.observed.refresh(unit);
    this.#restartIfEnded(unit);
    this.#o.publish();
  }

  /** Keeps an app container's probes in line with its unit: only a running run is probed. */
  #syncProbes(unit: string): void {
    const container = this.#appContainer(unit);
    if (!container) return;
    const props = this.#c.observed.get(unit);
    const running = props?.ActiveState === "active" && props.SubState === "running" &&
      !this.#containers.hookRunning(unit) && this.#o.running();
    this.#prober.sync(unit, container, running ? props.InvocationID : undefined);
  }

  /** The spec of the app container of `unit`. */
  #appContainer(unit: string): V1Container | undefined {
    const ref = this.#units.get(unit);
    if (!ref || ref.init) return undefined;
    return this.#o.pod().spec?.containers?.find((c) => c.name === ref.container);
  }

  /** Stops a container (its preStop hook first), within `graceSeconds` or the pod's. */
  stop(unit: string, graceSeconds?: number): Promise<void> {
    return this.#containers.stop(unit, {
      pod: this.#o.pod(),
      container: this.#appContainer(unit),
      graceSeconds,
    });
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
    this.#restarts.forget(name);
    this.#prober.stop(name);
    this.#containers.forget(name);
    this.#c.release(name, this.#o.uid);
  }

  /**
   * `overrides` (what preparing the pod found) plus the probes' results and `CrashLoopBackOff`
   * for each container whose restart is pending.
   */
  overrides(base: ReadonlyMap<string, ContainerOverride>): Map<string, ContainerOverride> {
    const overrides = new Map(base);
    for (const [container, results] of this.#prober.results()) {
      overrides.set(container, { ...overrides.get(container), ...results });
    }
    for (const [unit, message] of this.#restarts.waiting()) {
      const container = this.#units.get(unit)?.container;
      if (!container || overrides.get(container)?.waiting) continue;
      overrides.set(container, {
        ...overrides.get(container),
        waiting: { reason: "CrashLoopBackOff", message },
      });
    }
    return overrides;
  }
}
