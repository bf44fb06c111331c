/**
 * A pod's containers, as the kubelet's `SyncPod` keeps them, and the pod worker's one handle on
 * them: it ties together the pod's unit files (pod_units.ts), the start and stop order of its
 * containers (sequencer.ts) and each container's start and stop with its hooks and grace
 * (containers.ts), and passes systemd's signals about the pod's units on to them. What it does
 * itself: runs of app containers and sidecars that ended are restarted per restartPolicy after
 * the crash-loop back-off (restarts.ts), unless the pod is complete; running runs are probed
 * (prober.ts) and stopped when unhealthy; failed regular init containers are made ready for
 * their retry; the status side is told what the units and probes show. The pod worker decides
 * when; this module does it.
 *
 * @module
 */
import type { V1Pod } from "@kubernetes/client-node";
import type { PodIds, PodPlan } from "../plan/mod.ts";
import type { ContainerOverride, ContainerUnit } from "../status/mod.ts";
import type { UnitProperties } from "../unit/properties.ts";
import type { Log } from "../log/mod.ts";
import { ContainerLifecycle } from "./containers.ts";
import { type FoundPod, podKey, type PodRuntimeContext } from "./context.ts";
import { PodUnits } from "./pod_units.ts";
import type { PodEventInfo } from "./ports.ts";
import { ProberManager } from "./prober.ts";
import type { ActualResources } from "./resize.ts";
import { RestartManager } from "./restarts.ts";
import { PodSequencer, type StopAllOptions } from "./sequencer.ts";

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
  readonly #units: PodUnits;
  readonly #sequencer: PodSequencer;
  readonly #containers: ContainerLifecycle;
  readonly #restarts: RestartManager;
  readonly #prober: ProberManager;

  /** @param options the runtime's context and the pod worker's hooks. */
  constructor(options: PodContainersOptions) {
    this.#o = options;
    const context = this.#c = options.context;
    const { units, observed, node } = context;
    const event = (e: PodEventInfo) => context.events.record(options.pod(), e);
    this.#containers = new ContainerLifecycle({
      units,
      observed,
      host: node.externalIP,
      exec: context.exec,
      onEvent: event,
      onPostStart: (unit, invocation, ok) => {
        if (ok) {
          this.#syncProbes(unit);
          this.#sequencer.advance();
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
        this.#sequencer.advance();
      },
      onEvent: event,
      // The run ends; the crash-loop back-off restarts it per restartPolicy, as the kubelet.
      onUnhealthy: (unit, invocation, graceSeconds) =>
        options.enqueue(async () => {
          if (!this.#prober.probing(unit, invocation)) return;
          await this.stop(unit, graceSeconds);
        }),
    });
    this.#units = new PodUnits({
      ...options,
      replace: (unit) =>
        this.#restarts.replace(unit, async () => {
          await this.stop(unit);
          return (await units.properties(unit)).InvocationID;
        }),
      onRemoved: (unit) => {
        this.#restarts.forget(unit);
        this.#prober.stop(unit);
        this.#containers.forget(unit);
      },
    });
    this.#sequencer = new PodSequencer({
      ...options,
      units: this.#units,
      observed,
      containers: this.#containers,
      probed: () => this.#prober.results(),
      onCompleted: () => this.#restarts.cancelAll(),
    });
  }

  /** The names of the pod's units. */
  names(): string[] {
    return this.#units.names();
  }

  /** Per container name: the unit written for it (or found on the machine). */
  containerUnits(): Map<string, string> {
    return this.#units.containerUnits();
  }

  /** The ephemeral containers whose unit is written (once: they never change). */
  createdEphemeral(): Set<string> {
    return this.#units.createdEphemeral();
  }

  /** The pod ids the pod's units run with (pod_units.ts). */
  podIds(plan: PodPlan): PodIds {
    return this.#units.podIds(plan);
  }

  /** Per container: whether its unit runs, and the resources the unit records it runs with. */
  actualResources(): ActualResources {
    return this.#units.actualResources();
  }

  /** Removes a unit: stopped if needed, file deleted, forgotten. */
  remove(name: string): Promise<void> {
    return this.#units.remove(name);
  }

  /** Removes the pod's slice, once its units are gone. */
  removeSlice(): Promise<void> {
    return this.#units.removeSlice();
  }

  /**
   * Makes the containers what `plan` says: units written, the app units started (again, after
   * a retry or a changed unit), resized running units given their new resources.
   *
   * @return why a resize could not be applied to a running unit (the worker retries it).
   */
  async apply(plan: PodPlan): Promise<{ resizeError?: string }> {
    const { changed, resizeError } = await this.#units.install(plan);
    const written = changed.map((u) => u.name);
    this.#o.log.debug(
      `${plan.units.length} unit(s) planned, ${changed.length} written: ${
        written.join(", ") || "none"
      }`,
    );
    await this.#sequencer.planned(written);
    return { resizeError };
  }

  /** The pod will be tried again from the start: its units may be started again. */
  retrying(): void {
    this.#sequencer.retrying();
  }

  /**
   * A unit of the pod changed (systemd's signal).
   *
   * @return the name of a regular init container whose run just failed, when the pod's
   *   restartPolicy wants it retried.
   */
  observe(unit: string, props: UnitProperties): string | undefined {
    this.#containers.runEnded(unit, props);
    const ref = this.#units.refs.get(unit);
    if (!ref) return undefined;
    this.#followApp(unit);
    this.#sequencer.completeIfDone();
    this.#sequencer.advance();
    const failedInit = this.#units.kind(ref) === "init" && props.ActiveState === "failed";
    return failedInit && this.initRetryDue() ? ref.container : undefined;
  }

  /** Before an init container's retry: the init units' failed state reset, every unit read. */
  async resetInits(): Promise<void> {
    for (const [name, ref] of this.#units.refs) {
      if (this.#units.kind(ref) === "init") await this.#c.units.resetFailed(name);
    }
    // Each unit's state replaced at once: a status computed meanwhile must not find a running
    // sidecar without a state, and take its run for lost.
    for (const name of this.#units.names()) await this.#c.observed.refresh(name);
  }

  /** A regular init container failed and the pod's policy wants it retried. */
  initRetryDue(): boolean {
    if (this.#o.pod().spec?.restartPolicy === "Never") return false;
    return [...this.#units.refs].some(([name, ref]) =>
      this.#units.kind(ref) === "init" && this.#c.observed.get(name)?.ActiveState === "failed"
    );
  }

  /** From now on nothing starts, restarts or probes the containers. */
  quiesce(): void {
    this.#restarts.cancelAll();
    this.#prober.stopAll();
    this.#containers.abortAll();
  }

  /**
   * Follows the units the pod has, as they are: their state (read once for adopted ones, so the
   * status shows them), restarts per policy of containers that ended (adopted ones may have
   * ended while systemk was away), and probes.
   */
  async follow(): Promise<void> {
    for (const name of this.#units.names()) await this.#c.observed.current(name);
    // A pod that completed while systemk was away restarts nothing.
    this.#sequencer.completeIfDone();
    for (const name of this.#units.names()) this.#followApp(name);
  }

  /** An app or sidecar unit's restart (when its run ended) and probes, per its current state. */
  #followApp(unit: string): void {
    this.#restartIfEnded(unit);
    this.#syncProbes(unit);
  }

  /**
   * An app container's or sidecar's run ended: has the restart manager schedule its restart
   * after the crash-loop back-off when its restartPolicy wants one, showing `CrashLoopBackOff`
   * meanwhile. Nothing restarts once the pod's app containers have ended for good.
   */
  #restartIfEnded(unit: string): void {
    const restartable = this.#units.restartable(unit);
    const props = this.#c.observed.get(unit);
    if (!restartable || !props || !this.#o.running() || this.#sequencer.done()) return;
    const { container, kind } = restartable;
    const pod = this.#o.pod();
    const decision = this.#restarts.judge(unit, {
      props,
      pod,
      container,
      kind,
      restart: (ended) => this.#o.enqueue(() => this.#restartContainer(unit, ended)),
    });
    if (!decision) return;
    this.#o.log.debug(`${unit} ended; restarting in ${decision.delayMs} ms`);
    const message = `Back-off restarting failed container ${container.name} in pod ${podKey(pod)}`;
    this.#c.events.record(pod, {
      type: "Warning",
      reason: "BackOff",
      message,
      container: container.name,
    });
    this.#o.publish();
  }

  /** Starts a new run of an app container, unless its ended run was replaced meanwhile. */
  async #restartContainer(unit: string, ended: string | undefined): Promise<void> {
    if (!this.#units.refs.has(unit) || !this.#o.running() || this.#sequencer.done()) return;
    const props = await this.#c.units.properties(unit);
    // A newer run started meanwhile: nothing to restart. (A unit stopped cleanly may have been
    // unloaded by systemd's garbage collection, which forgets its InvocationID: still ended.)
    if (props.InvocationID !== "" && props.InvocationID !== ended) return this.#o.publish();
    // `RemainAfterExit=yes` keeps a run that exited 0 active: only a stop lets it start again.
    if (props.ActiveState === "active") await this.#c.units.stop(unit);
    await this.#c.units.resetFailed(unit);
    await this.#sequencer.start(unit, true);
    await this.#c.observed.refresh(unit);
    this.#restartIfEnded(unit);
    this.#o.publish();
  }

  /** Keeps a container's probes in line with its unit: only a running run is probed. */
  #syncProbes(unit: string): void {
    const container = this.#units.restartable(unit)?.container;
    if (!container) return;
    const props = this.#c.observed.get(unit);
    const running = props?.ActiveState === "active" && props.SubState === "running" &&
      !this.#containers.hookRunning(unit) && this.#o.running();
    this.#prober.sync(unit, {
      container,
      invocation: running ? props.InvocationID : undefined,
    });
  }

  /** Stops a container (its preStop hook first), within `graceSeconds` or the pod's. */
  stop(unit: string, graceSeconds?: number): Promise<void> {
    return this.#containers.stop(unit, {
      pod: this.#o.pod(),
      container: this.#units.restartable(unit)?.container,
      graceSeconds,
    });
  }

  /**
   * Stops the pod's containers as the kubelet kills a pod (sequencer.ts).
   *
   * @param options which containers, within which grace period.
   */
  stopAll(options?: StopAllOptions): Promise<void> {
    return this.#sequencer.stopAll(options);
  }

  /** Per container name: its unit's observed state, unless its postStart hook still runs. */
  statusUnits(): Map<string, ContainerUnit> {
    const units = new Map<string, ContainerUnit>();
    for (const [name, ref] of this.#units.refs) {
      const observed = this.#c.observed.observed(name);
      // A container whose postStart hook still runs shows as not yet started (kubelet).
      if (observed && !this.#containers.hookRunning(name)) {
        units.set(ref.container, { ...observed, unitName: name });
      }
    }
    return units;
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
      const container = this.#units.refs.get(unit)?.container;
      if (!container || overrides.get(container)?.waiting) continue;
      overrides.set(container, {
        ...overrides.get(container),
        waiting: { reason: "CrashLoopBackOff", message },
      });
    }
    return overrides;
  }
}
