/**
 * A pod's containers, as the kubelet's `SyncPod` keeps them: the pod's slice written first
 * (every unit runs in it), their unit files written as planned (a changed unit's old run
 * stopped first; a running unit whose resources alone changed resized in place; an ephemeral
 * container's unit is written once and kept while the pod lives), the units started in the
 * kubelet's order (sequence.ts: systemd pulls in the regular init containers, the worker starts
 * each sidecar once what precedes it is done and what follows a sidecar once it has started),
 * runs of app containers and sidecars that ended restarted per restartPolicy after the
 * crash-loop back-off (restarts.ts), running runs probed (prober.ts), containers stopped with
 * their hooks and grace (containers.ts), sidecars after the app containers, and once the app
 * containers have ended for good (a Job's pod) with nothing to restart. The pod worker decides
 * when; this module does it.
 *
 * @module
 */
import type { V1Container, V1Pod, V1ResourceRequirements } from "@kubernetes/client-node";
import { allContainers, type ContainerKind, type PodIds, type PodPlan } from "../plan/mod.ts";
import { changedResources } from "../plan/allocation.ts";
import { resourcesOnlyChange, unitResourceProperties } from "../plan/resources.ts";
import { podIdsOfUnit } from "../node/user_records.ts";
import {
  type ContainerOverride,
  type ContainerUnit,
  observeUnit,
  restartPolicyOf,
  willRestart,
} from "../status/mod.ts";
import type { UnitProperties } from "../unit/properties.ts";
import type { Log } from "../log/mod.ts";
import { ContainerLifecycle } from "./containers.ts";
import { hasEnded } from "./crash_loop.ts";
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
import { appsCompleted, type SequencedUnit, terminationOrder, unitsToStart } from "./sequence.ts";

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

/** A unit of the pod with its container's spec and kind, as the pod's spec says now. */
interface SpecUnit {
  name: string;
  container: V1Container;
  kind: ContainerKind;
}

/** Options of {@link PodContainers.stopAll}. */
export interface StopAllOptions {
  /** The grace period; default: the pod's `terminationGracePeriodSeconds`. */
  graceSeconds?: number;
  /** Which kinds of containers to stop; default: all. */
  only?: (kind: ContainerKind) => boolean;
  /**
   * Leaves containers whose last run is over as they are (a pod kept after it ended): stopping
   * an ended unit only lets systemd unload it, and the run's record (its InvocationID, exit
   * status) goes with it.
   */
  keepEnded?: boolean;
}

/** The containers of one pod; see the module doc. */
export class PodContainers {
  readonly #o: PodContainersOptions;
  readonly #c: PodRuntimeContext;
  /** The pod's units by name, as planned (or found on the machine). */
  readonly #units: Map<string, UnitRef>;
  /** The pod's slice, once installed (or found on the machine). */
  #slice?: SliceRef;
  /** Units asked to start since the last (re)try (a start may end before they run). */
  readonly #asked = new Set<string>();
  /** The units were written as planned once: from then on the sequence may start them. */
  #planned = false;
  /** A step to start what the sequence allows is queued. */
  #advancePending = false;
  /** The pod's app containers ended for good and its other containers are being stopped. */
  #completing = false;
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
          this.#advance();
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
      onResult: () => {
        options.publish();
        // A sidecar's startup probe passing lets what follows it start.
        this.#advance();
      },
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

  /** Per container name: the unit written for it (or found on the machine). */
  containerUnits(): Map<string, string> {
    return new Map([...this.#units].map(([unit, ref]) => [ref.container, unit]));
  }

  /** The ephemeral containers whose unit is written (once: they never change). */
  createdEphemeral(): Set<string> {
    return new Set(
      this.#specUnits().filter((u) => u.kind === "ephemeral").map((u) => u.container.name),
    );
  }

  /**
   * The pod ids the pod's units run with: the plan's, and those of its created ephemeral
   * containers' units (written once, never planned again), which need their records too.
   */
  podIds(plan: PodPlan): PodIds {
    const ids = [
      plan.podIds,
      ...this.#specUnits().filter((u) => u.kind === "ephemeral")
        .map((u) => podIdsOfUnit(this.#units.get(u.name)!.text)),
    ];
    const union = (lists: number[][]) => [...new Set(lists.flat())].sort((a, b) => a - b);
    return { users: union(ids.map((i) => i.users)), groups: union(ids.map((i) => i.groups)) };
  }

  /** The unit of a regular init container that failed, if `unit` is one. */
  failedInit(unit: string, props: UnitProperties): UnitRef | undefined {
    const ref = this.#units.get(unit);
    return ref && this.#kind(ref) === "init" && props.ActiveState === "failed" ? ref : undefined;
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
    for (const unit of changed) this.#asked.delete(unit.name);
    this.#planned = true;
    await this.#startDue();
    return { resizeError };
  }

  /** The pod will be tried again from the start: its units may be started again. */
  retrying(): void {
    this.#asked.clear();
  }

  /** A unit of the pod changed (systemd's signal). */
  observe(unit: string, props: UnitProperties): void {
    this.#containers.runEnded(unit, props);
    if (!this.#units.has(unit)) return;
    this.#followApp(unit);
    this.#completeIfDone();
    this.#advance();
  }

  /** Before an init container's retry: the init units' failed state reset, every unit read. */
  async resetInits(): Promise<void> {
    for (const [name, ref] of this.#units) {
      if (this.#kind(ref) === "init") await this.#c.units.resetFailed(name);
    }
    // Each unit's state replaced at once: a status computed meanwhile must not find a running
    // sidecar without a state, and take its run for lost.
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
      if (previous?.text === unit.text) continue;
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
    // An ephemeral container never changes (the API refuses to): its unit, written when it was
    // created (naming its target's main PID), stays as it is until the pod goes.
    for (const [name, ref] of [...this.#units]) {
      if (this.#kind(ref) === "ephemeral" || plan.units.some((u) => u.name === name)) continue;
      await this.remove(name);
    }
    // An adopted unit's state must be known before #startDue judges it "fresh": else a
    // container that already ended under `restartPolicy: Never`, or an ephemeral one (never
    // planned again), runs again after a restart of systemk.
    for (const name of this.#units.keys()) {
      if (!changed.some((u) => u.name === name)) await observed.current(name);
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
    const container = this.#specUnit(unit.name)?.container;
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
    for (const name of [...this.#units.keys()]) await this.#c.observed.current(name);
    // A pod that completed while systemk was away restarts nothing.
    this.#completeIfDone();
    for (const name of [...this.#units.keys()]) this.#followApp(name);
  }

  /** An app or sidecar unit's restart (when its run ended) and probes, per its current state. */
  #followApp(unit: string): void {
    this.#restartIfEnded(unit);
    this.#syncProbes(unit);
  }

  /** The pod's units in spec order, with their containers' specs and kinds. */
  #specUnits(): SpecUnit[] {
    const spec = this.#o.pod().spec;
    const byContainer = new Map([...this.#units].map(([name, ref]) => [ref.container, name]));
    return allContainers({ ...spec, containers: spec?.containers ?? [] }).flatMap((c) => {
      const name = byContainer.get(c.container.name);
      return name ? [{ name, ...c }] : [];
    });
  }

  /** The spec unit of `unit`, if the pod's spec still has its container. */
  #specUnit(unit: string): SpecUnit | undefined {
    return this.#specUnits().find((u) => u.name === unit);
  }

  /** What the unit's container is to the pod (a unit whose container left the spec: app). */
  #kind(ref: UnitRef): ContainerKind {
    return this.#specUnits().find((u) => u.container.name === ref.container)?.kind ??
      (ref.init ? "init" : "app");
  }

  /** The units as the sequence sees them (sequence.ts). */
  #sequenced(): SequencedUnit[] {
    const pod = this.#o.pod();
    return this.#specUnits().map(({ name, container, kind }) => {
      const props = this.#c.observed.get(name);
      const sequenced = (state: SequencedUnit["state"], endedForGood = false) => ({
        name,
        kind,
        state,
        ...(kind === "app" ? { endedForGood } : {}),
      });
      if (!props || (props.InvocationID === "" && props.ActiveState === "inactive")) {
        return sequenced("fresh");
      }
      if (kind === "init" && props.ActiveState === "inactive") return sequenced("idle");
      const observation = observeUnit({ unitName: name, props });
      if (observation.kind === "absent") return sequenced("fresh");
      if (observation.kind === "running") {
        const started = kind !== "init" && !this.#containers.hookRunning(name) &&
          (!container.startupProbe || this.#prober.results().get(container.name)?.started);
        return sequenced(started ? "started" : "running");
      }
      const { exitCode } = observation.terminated;
      return sequenced(
        exitCode === 0 ? "succeeded" : "failed",
        !willRestart(restartPolicyOf(pod, kind), exitCode),
      );
    });
  }

  /** The app containers ended for good: nothing restarts any more. */
  #done(): boolean {
    return this.#completing || appsCompleted(this.#sequenced());
  }

  /** Starts what the sequence allows now, in a step of the pod's queue (coalesced). */
  #advance(): void {
    if (!this.#planned || this.#advancePending || !this.#o.running()) return;
    this.#advancePending = true;
    this.#o.enqueue(async () => {
      this.#advancePending = false;
      if (this.#o.running()) await this.#startDue();
    });
  }

  /**
   * The app containers ended for good (a Job's pod): the pod is done, as when the kubelet
   * kills a pod with nothing left to start: its sidecars and ephemeral containers are stopped
   * (sidecars last, in reverse order) and not restarted.
   */
  #completeIfDone(): void {
    if (this.#completing || !this.#o.running() || !appsCompleted(this.#sequenced())) return;
    this.#completing = true;
    this.#restarts.cancelAll();
    this.#o.log.debug("app containers ended for good: stopping the pod's other containers");
    this.#o.enqueue(() => this.stopAll({ only: (kind) => kind !== "app" && kind !== "init" }));
  }

  /**
   * Starts the units the sequence allows now (sequence.ts) that were not asked to start since
   * the last (re)try. Units that already ran are left to the restart manager: starting a
   * container that exited under `restartPolicy: Never` again would be wrong.
   */
  async #startDue(): Promise<void> {
    const due = unitsToStart(this.#sequenced()).filter((name) => !this.#asked.has(name));
    if (due.length === 0) return;
    due.forEach((name) => this.#asked.add(name));
    this.#o.log.debug(`starting ${due.join(", ")}`);
    await Promise.all(due.map(async (unit) => {
      const result = await this.#startContainer(unit);
      if (result === "done" && this.#specUnit(unit)?.kind === "app") this.#o.onStarted();
      await this.#c.observed.refresh(unit);
    }));
    this.#o.publish();
  }

  /** Starts a container's unit and says how that went in an Event. */
  async #startContainer(unit: string): Promise<string> {
    const ref = this.#units.get(unit)!;
    const result = await this.#containers.start(unit, this.#restartable(unit)?.container);
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

  /** A regular init container failed and the pod's policy wants it retried. */
  initRetryDue(): boolean {
    if (this.#o.pod().spec?.restartPolicy === "Never") return false;
    return [...this.#units].some(([name, ref]) =>
      this.#kind(ref) === "init" && this.#c.observed.get(name)?.ActiveState === "failed"
    );
  }

  /**
   * An app container's or sidecar's run ended: has the restart manager schedule its restart
   * after the crash-loop back-off when its restartPolicy wants one, showing `CrashLoopBackOff`
   * meanwhile. Nothing restarts once the pod's app containers have ended for good.
   */
  #restartIfEnded(unit: string): void {
    const restartable = this.#restartable(unit);
    const props = this.#c.observed.get(unit);
    if (!restartable || !props || !this.#o.running() || this.#done()) return;
    const { container, kind } = restartable;
    const decision = this.#restarts.judge(unit, {
      props,
      pod: this.#o.pod(),
      container,
      kind,
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
    if (!this.#units.has(unit) || !this.#o.running() || this.#done()) return;
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

  /** Keeps a container's probes in line with its unit: only a running run is probed. */
  #syncProbes(unit: string): void {
    const container = this.#restartable(unit)?.container;
    if (!container) return;
    const props = this.#c.observed.get(unit);
    const running = props?.ActiveState === "active" && props.SubState === "running" &&
      !this.#containers.hookRunning(unit) && this.#o.running();
    this.#prober.sync(unit, container, running ? props.InvocationID : undefined);
  }

  /**
   * The spec unit of `unit` when its container is an app container or a sidecar: what restarts,
   * is probed and has lifecycle hooks.
   */
  #restartable(unit: string): (SpecUnit & { kind: "app" | "sidecar" }) | undefined {
    const found = this.#specUnit(unit);
    return found && (found.kind === "app" || found.kind === "sidecar")
      ? { ...found, kind: found.kind }
      : undefined;
  }

  /** Stops a container (its preStop hook first), within `graceSeconds` or the pod's. */
  stop(unit: string, graceSeconds?: number): Promise<void> {
    return this.#containers.stop(unit, {
      pod: this.#o.pod(),
      container: this.#restartable(unit)?.container,
      graceSeconds,
    });
  }

  /**
   * Stops the pod's containers as the kubelet kills a pod: all at once, each with its preStop
   * hook, within one grace period (`graceSeconds`, else the pod's); sidecars get SIGTERM only
   * after the app containers and the sidecars after them have stopped (sequence.ts).
   *
   * @param options which containers, within which grace period.
   */
  async stopAll(options: StopAllOptions = {}): Promise<void> {
    const { graceSeconds, only = () => true } = options;
    const units = this.#sequenced();
    const order = terminationOrder(units);
    const kinds = new Map(units.map((u) => [u.name, u.kind]));
    // Units whose container left the spec have no turn to wait for.
    let names = [...this.#units.keys()].filter((name) => only(kinds.get(name) ?? "app"));
    if (options.keepEnded) {
      // An adopted unit's state is read first: it may have ended while systemk was away.
      const states = await Promise.all(names.map((name) => this.#c.observed.current(name)));
      names = names.filter((_, i) => states[i].InvocationID === "" || !hasEnded(states[i]));
    }
    const stopped = new Map<string, Promise<void>>();
    const stopping = (name: string): Promise<void> => {
      let stop = stopped.get(name);
      if (stop) return stop;
      const waits = (order.get(name) ?? []).filter((other) => names.includes(other));
      stop = this.#containers.stop(name, {
        pod: this.#o.pod(),
        container: this.#restartable(name)?.container,
        graceSeconds,
        turn: waits.length ? Promise.all(waits.map(stopping)) : undefined,
      });
      stopped.set(name, stop);
      return stop;
    };
    await Promise.all(names.map(stopping));
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
