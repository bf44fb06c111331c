/**
 * A pod worker, as the kubelet's `pod_workers.go`: one per pod UID, running the pod's steps one
 * at a time (a pod's steps never interleave; different pods proceed concurrently) through an
 * explicit lifecycle:
 *
 * - `syncing`: the pod should run; each sync prepares it (prepare.ts), writes its volume and
 *   unit files, starts its containers (containers.ts), restarts the ones that ended per
 *   restartPolicy (restarts.ts) and probes them (prober.ts);
 * - `terminating`: its containers are being stopped, for good: nothing starts, restarts or
 *   probes them any more;
 * - `terminated`: stopped. A deleted pod is then removed (units, files) and forgotten; a pod
 *   terminated with a final status (its active deadline passed) is kept, Failed.
 *
 * @module
 */
import type { V1Container, V1Pod, V1PodStatus } from "@kubernetes/client-node";
import { isNoSuchUnit, isTransientBusError } from "../systemd/mod.ts";
import { reconcileDuration, reconcileErrors } from "../metrics/mod.ts";
import { DEFAULT_STATE_DIR, type PodPlan } from "../plan/mod.ts";
import { computePodStatus } from "../status/mod.ts";
import type { ContainerOverride, ContainerUnit, PodFailure } from "../status/mod.ts";
import type { UnitProperties } from "../unit/properties.ts";
import { applyVolumes, removePodDir } from "../volumes/apply.ts";
import { type Log, podLogger } from "../log/mod.ts";
import { activeDeadlineRemainingMs, DEADLINE_EXCEEDED } from "./deadline.ts";
import { ContainerLifecycle } from "./containers.ts";
import { ProberManager } from "./prober.ts";
import { RestartManager } from "./restarts.ts";
import { preparePod } from "./prepare.ts";
import { podKey, type PodRuntimeContext, type UnitRef } from "./context.ts";

/** Retry delay after a D-Bus failure that was not the pod's fault (systemd re-executing). */
const TRANSIENT_RETRY_MS = 1000;

/** Where a pod worker is in the pod's life; see the module doc. */
export type PodLifecycle = "syncing" | "terminating" | "terminated";

/** Runs one pod; see the module doc. */
export class PodWorker {
  readonly #c: PodRuntimeContext;
  readonly #uid: string;
  #pod: V1Pod;
  readonly #log: Log;
  #lifecycle: PodLifecycle = "syncing";
  /** Why the pod was terminated while kept (its active deadline passed). */
  #final?: PodFailure;
  /** The grace period its termination asked for, while terminating for deletion. */
  #termination?: { graceSeconds?: number };
  /** systemk stops: no timer is set any more (pods keep running). */
  #closed = false;
  #queue: Promise<void>;
  readonly #units: Map<string, UnitRef>;
  #podDir?: string;
  readonly #overrides = new Map<string, ContainerOverride>();
  #failure?: PodFailure;
  #lastStatus?: V1PodStatus;
  #retry?: ReturnType<typeof setTimeout>;
  #backoffMs: number;
  /** The app units were asked to start since the last (re)try. */
  #appsStarted = false;
  /** Wakes the pod when its active deadline passes (activeDeadlineSeconds). */
  #deadline?: ReturnType<typeof setTimeout>;
  #publishPending = false;
  readonly #containers: ContainerLifecycle;
  readonly #restarts: RestartManager;
  readonly #prober: ProberManager;

  /**
   * @param pod the pod as last seen.
   * @param context what the runtime shares with its workers; `adopted` the pod's units found
   *   on the machine, `after` a step of the same UID still running.
   */
  constructor(
    pod: V1Pod,
    context: PodRuntimeContext & { adopted: Map<string, UnitRef>; after?: Promise<void> },
  ) {
    this.#c = context;
    this.#uid = pod.metadata!.uid!;
    this.#pod = pod;
    this.#log = podLogger(podKey(pod));
    this.#units = context.adopted;
    this.#queue = context.after ?? Promise.resolve();
    this.#backoffMs = this.#backoffBaseMs;
    const { units, observed, node } = context;
    const event = (type: "Normal" | "Warning", reason: string, message: string, c?: string) =>
      context.events.record(this.#pod, type, reason, message, c);
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
          this.#enqueue(async () => {
            if ((await units.properties(unit)).InvocationID !== invocation) return;
            await this.#stopContainer(unit);
          });
        }
        this.publish();
      },
    });
    this.#restarts = new RestartManager(context.crashLoopBackoffBaseMs);
    this.#prober = new ProberManager({
      host: node.externalIP,
      exec: context.exec,
      onResult: () => this.publish(),
      onEvent: event,
      // The run ends; the crash-loop back-off restarts it per restartPolicy, as the kubelet.
      onUnhealthy: (unit, invocation, graceSeconds) =>
        this.#enqueue(async () => {
          if (!this.#prober.probing(unit, invocation)) return;
          await this.#stopContainer(unit, graceSeconds);
        }),
    });
  }

  /** The pod as last seen. */
  get pod(): V1Pod {
    return this.#pod;
  }

  /** Where the worker is in the pod's life. */
  get lifecycle(): PodLifecycle {
    return this.#lifecycle;
  }

  /** The status last computed. */
  get lastStatus(): V1PodStatus | undefined {
    return this.#lastStatus;
  }

  /** Makes the pod run as `pod` says (or terminate, when it carries a deletionTimestamp). */
  sync(pod: V1Pod): void {
    this.#pod = pod;
    this.#enqueue(() => reconcileDuration.time({}, () => this.#reconcile()));
  }

  /**
   * A status-only change of the pod (another controller's condition, a readiness gate):
   * nothing to run differently, but the pod's status is computed again from it.
   */
  updateStatus(pod: V1Pod): void {
    this.#pod = pod;
    this.publish();
  }

  /** Stops and removes the pod's units and files; `graceSeconds` may shorten the pod's own. */
  terminate(graceSeconds?: number): Promise<void> {
    return this.#enqueue(() => this.#terminate(graceSeconds));
  }

  /** Runs `step` in the pod's queue. */
  #enqueue(step: () => Promise<void>): Promise<void> {
    const next = this.#queue.then(step).catch((e) => this.#fail(e));
    this.#queue = next;
    return next;
  }

  /** A unit of the pod changed (systemd's signal; the observed state has it already). */
  observe(unit: string, props: UnitProperties): void {
    this.publish();
    const ref = this.#units.get(unit);
    this.#containers.runEnded(unit, props);
    if (ref && !ref.init) this.#followApp(unit);
    if (
      ref?.init && props.ActiveState === "failed" && this.#retry === undefined &&
      this.#lifecycle === "syncing" && this.#initRetryDue()
    ) {
      this.#c.events.record(
        this.#pod,
        "Warning",
        "BackOff",
        `Back-off restarting failed init container ${ref.container}`,
        ref.container,
      );
      this.#scheduleRetry(async () => {
        for (const [name, r] of this.#units) if (r.init) await this.#c.units.resetFailed(name);
        for (const name of this.#units.keys()) this.#c.observed.invalidate(name);
        for (const name of this.#units.keys()) await this.#c.observed.refresh(name);
      });
    }
  }

  /** Waits for the running step; sets no timer any more. */
  async close(): Promise<void> {
    this.#closed = true;
    clearTimeout(this.#retry);
    clearTimeout(this.#deadline);
    this.#restarts.cancelAll();
    this.#prober.stopAll();
    this.#containers.abortAll();
    await this.#queue;
  }

  async #reconcile(): Promise<void> {
    const pod = this.#pod;
    if (pod.metadata?.deletionTimestamp) {
      return await this.#terminate(pod.metadata.deletionGracePeriodSeconds);
    }
    // Once terminating, a pod never runs again (a failed termination is retried as such).
    if (this.#termination) return await this.#terminate(this.#termination.graceSeconds);
    if (this.#final || this.#deadlinePassed()) {
      return await this.#terminateWithStatus(this.#final ?? DEADLINE_EXCEEDED);
    }
    clearTimeout(this.#retry);
    this.#retry = undefined;
    this.#failure = undefined;

    const prepared = await preparePod(pod, {
      ...this.#c,
      overrides: this.#overrides,
      event: (type, reason, message, container) =>
        this.#c.events.record(pod, type, reason, message, container),
    });
    if (!prepared.plan) {
      this.#log.debug(`not runnable yet: ${prepared.failure?.message ?? "waiting containers"}`);
      this.#failure = prepared.failure;
      this.publish();
      return this.#retryLater();
    }
    const plan = prepared.plan;
    this.#podDir = plan.podDir;

    try {
      await applyVolumes(plan.volumes);
    } catch (e) {
      const message = `writing volumes of ${podKey(pod)} failed: ${(e as Error).message}`;
      this.#failure = { reason: "FailedMount", message };
      this.#c.events.record(pod, "Warning", "FailedMount", message);
      // Containers already running (adopted ones too) go on with the files they have.
      await this.#followUnits();
      this.publish();
      return this.#retryLater();
    }
    const changed = await this.#installUnits(plan);
    this.#log.debug(
      `${plan.units.length} unit(s) planned, ${changed.length} written: ${
        changed.map((u) => u.name).join(", ") || "none"
      }`,
    );
    await this.#startApps(plan, changed.length > 0);
    await this.#followUnits();
    this.publish();
  }

  /** Writes the units whose text changed (stopping the old run) and removes unplanned ones. */
  async #installUnits(plan: PodPlan): Promise<PodPlan["units"]> {
    const { units, observed } = this.#c;
    const changed = [];
    for (const unit of plan.units) {
      const previous = this.#units.get(unit.name);
      if (previous?.text === unit.text) {
        // An adopted unit's state must be known before #startApps judges it "fresh": else a
        // container that already ended under `restartPolicy: Never` runs again after a
        // restart of systemk.
        await observed.current(unit.name);
        continue;
      }
      await this.#c.claim(unit.name, this.#uid);
      if (previous) {
        await this.#restarts.replace(unit.name, async () => {
          await this.#stopContainer(unit.name);
          return (await units.properties(unit.name)).InvocationID;
        });
      }
      await units.install(unit.name, unit.text);
      this.#units.set(unit.name, { container: unit.container, init: unit.init, text: unit.text });
      changed.push(unit);
    }
    for (const name of [...this.#units.keys()]) {
      if (!plan.units.some((u) => u.name === name)) await this.#removeUnit(name);
    }
    for (const unit of changed) {
      this.#c.events.record(
        this.#pod,
        "Normal",
        "Created",
        `Created unit ${unit.name}`,
        unit.container,
      );
      await observed.refresh(unit.name);
    }
    return changed;
  }

  /**
   * Follows the units the pod has, as they are: their state (read once for adopted ones, so the
   * status shows them), restarts per policy of containers that ended (adopted ones may have
   * ended while systemk was away), and probes.
   */
  async #followUnits(): Promise<void> {
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
    if (fresh.length === 0 || (this.#appsStarted && !changed && !this.#initRetryDue())) return;
    this.#appsStarted = true;
    this.#log.debug(`starting ${fresh.map((u) => u.name).join(", ")}`);
    await Promise.all(fresh.map(async (unit) => {
      const result = await this.#startContainer(unit.name);
      if (result === "done") this.#backoffMs = this.#backoffBaseMs;
      await this.#c.observed.refresh(unit.name);
    }));
    this.publish();
  }

  /** Starts a container's unit and says how that went in an Event. */
  async #startContainer(unit: string): Promise<string> {
    const ref = this.#units.get(unit)!;
    const result = await this.#containers.start(unit, this.#appContainer(unit));
    if (result === "done") {
      this.#c.events.record(this.#pod, "Normal", "Started", `Started unit ${unit}`, ref.container);
    } else if (result !== "dependency") {
      this.#c.events.record(
        this.#pod,
        "Warning",
        "Failed",
        `Starting unit ${unit} failed: ${result}`,
        ref.container,
      );
    }
    return result;
  }

  /** An init container failed and the pod's policy wants it retried. */
  #initRetryDue(): boolean {
    if (this.#pod.spec?.restartPolicy === "Never") return false;
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
    if (!container || !props || !this.#running()) return;
    const decision = this.#restarts.judge(unit, {
      props,
      pod: this.#pod,
      container,
      restart: (ended) => this.#enqueue(() => this.#restartContainer(unit, ended)),
    });
    if (!decision) return;
    this.#log.debug(`${unit} ended; restarting in ${decision.delayMs} ms`);
    this.#c.events.record(
      this.#pod,
      "Warning",
      "BackOff",
      `Back-off restarting failed container ${container.name} in pod ${podKey(this.#pod)}`,
      container.name,
    );
    this.publish();
  }

  /** Starts a new run of an app container, unless its ended run was replaced meanwhile. */
  async #restartContainer(unit: string, ended: string | undefined): Promise<void> {
    if (!this.#units.has(unit) || !this.#running()) return;
    const props = await this.#c.units.properties(unit);
    // A newer run started meanwhile: nothing to restart. (A unit stopped cleanly may have been
    // unloaded by systemd's garbage collection, which forgets its InvocationID: still ended.)
    if (props.InvocationID !== "" && props.InvocationID !== ended) return this.publish();
    // `RemainAfterExit=yes` keeps a run that exited 0 active: only a stop lets it start again.
    if (props.ActiveState === "active") await this.#c.units.stop(unit);
    await this.#c.units.resetFailed(unit);
    const result = await this.#startContainer(unit);
    if (result === "dependency") {
      this.#c.events.record(
        this.#pod,
        "Warning",
        "Failed",
        `Starting unit ${unit} failed: ${result}`,
        this.#units.get(unit)!.container,
      );
    }
    await this.#c.observed.refresh(unit);
    this.#restartIfEnded(unit);
    this.publish();
  }

  /** Keeps an app container's probes in line with its unit: only a running run is probed. */
  #syncProbes(unit: string): void {
    const container = this.#appContainer(unit);
    if (!container) return;
    const props = this.#c.observed.get(unit);
    const running = props?.ActiveState === "active" && props.SubState === "running" &&
      !this.#containers.hookRunning(unit) && this.#running();
    this.#prober.sync(unit, container, running ? props.InvocationID : undefined);
  }

  /** Whether the pod's containers may (re)start and be probed: syncing, and not closing. */
  #running(): boolean {
    return this.#lifecycle === "syncing" && !this.#closed &&
      !this.#pod.metadata?.deletionTimestamp;
  }

  /** The spec of the app container of `unit`. */
  #appContainer(unit: string): V1Container | undefined {
    const ref = this.#units.get(unit);
    if (!ref || ref.init) return undefined;
    return this.#pod.spec?.containers?.find((c) => c.name === ref.container);
  }

  #stopContainer(unit: string, graceSeconds?: number): Promise<void> {
    return this.#containers.stop(unit, {
      pod: this.#pod,
      container: this.#appContainer(unit),
      graceSeconds,
    });
  }

  #retryLater(): void {
    this.#scheduleRetry(() => Promise.resolve());
  }

  #scheduleRetry(before: () => Promise<void>, fixedDelayMs?: number): void {
    if (this.#closed || this.#removed()) return;
    clearTimeout(this.#retry);
    const delay = fixedDelayMs ?? this.#backoffMs;
    if (fixedDelayMs === undefined) {
      this.#backoffMs = Math.min(delay * 2, this.#c.backoffMaxMs ?? 300_000);
    }
    this.#log.debug(`retrying in ${delay} ms`);
    this.#retry = setTimeout(() => {
      this.#retry = undefined;
      this.#enqueue(async () => {
        await before();
        this.#appsStarted = false;
        await this.#reconcile();
      });
    }, delay);
  }

  /** From now on nothing starts, restarts or probes the pod's containers. */
  #beginTermination(): void {
    clearTimeout(this.#retry);
    clearTimeout(this.#deadline);
    this.#lifecycle = "terminating";
    this.#restarts.cancelAll();
    this.#prober.stopAll();
    this.#containers.abortAll();
  }

  /** Terminates the pod for deletion: stops its containers, removes its units and files. */
  async #terminate(graceSeconds: number | undefined): Promise<void> {
    if (this.#lifecycle === "terminated" && !this.#final) return;
    this.#termination = { graceSeconds };
    this.#beginTermination();
    const names = [...this.#units.keys()];
    if (names.length) {
      this.#c.events.record(this.#pod, "Normal", "Killing", `Stopping ${names.length} unit(s)`);
    }
    await Promise.all(names.map((name) => this.#stopContainer(name, graceSeconds)));
    for (const name of names) await this.#removeUnit(name);
    await removePodDir(this.#podDir ?? `${this.#c.stateDir ?? DEFAULT_STATE_DIR}/${this.#uid}`);
    this.#lifecycle = "terminated";
    this.#final = undefined;
    await this.#c.onRemoved(this.#uid, this.#pod);
  }

  /**
   * Terminates the pod but keeps it, as the kubelet's eviction by a pod sync handler (here the
   * active deadline): event, every unit stopped within the pod's grace period, nothing
   * restarted, phase Failed with `failure` as reason and message. Runs again on every sync of
   * the terminated pod (and after a restart of systemk) to keep its units stopped.
   */
  async #terminateWithStatus(failure: PodFailure): Promise<void> {
    if (!this.#final) {
      this.#final = failure;
      this.#beginTermination();
      // After a restart of systemk the pod already says so: the event was given then.
      if ((this.#lastStatus ?? this.#pod.status)?.reason !== failure.reason) {
        this.#c.events.record(this.#pod, "Normal", failure.reason, failure.message);
      }
    }
    await Promise.all([...this.#units.keys()].map(async (name) => {
      await this.#stopContainer(name);
      await this.#c.observed.refresh(name);
    }));
    this.#lifecycle = "terminated";
    this.publish();
  }

  /**
   * Whether the pod's active deadline (activeDeadlineSeconds, counted from its startTime) has
   * passed; if not, wakes the pod when it does.
   */
  #deadlinePassed(): boolean {
    clearTimeout(this.#deadline);
    this.#deadline = undefined;
    const status = this.#lastStatus ?? this.#pod.status;
    const remaining = activeDeadlineRemainingMs(this.#pod, status, Date.now());
    if (remaining === undefined || this.#lifecycle !== "syncing") return false;
    if (remaining <= 0) return true;
    if (this.#closed) return false;
    this.#deadline = setTimeout(() => {
      this.#deadline = undefined;
      this.#enqueue(() => this.#reconcile());
    }, remaining);
    return false;
  }

  async #removeUnit(name: string): Promise<void> {
    await this.#c.units.remove(name);
    this.#units.delete(name);
    this.#restarts.forget(name);
    this.#prober.stop(name);
    this.#containers.forget(name);
    this.#c.release(name, this.#uid);
  }

  #fail(e: unknown): void {
    const doing = this.#lifecycle === "syncing" ? "run" : "stop and clean up";
    const message = `systemk could not ${doing} ${podKey(this.#pod)}: ${
      (e as Error)?.message ?? e
    }`;
    this.#log.error(message);
    reconcileErrors.inc();
    if (this.#removed()) return;
    if (isTransientBusError(e) || isNoSuchUnit(e)) {
      // systemd re-executed or the bus restarted under this step: not the pod's fault, so no
      // event and no growing back-off; try again once the client has reconnected.
      this.#scheduleRetry(() => Promise.resolve(), TRANSIENT_RETRY_MS);
      return;
    }
    this.#failure = { reason: "SystemkError", message };
    this.#c.events.record(this.#pod, "Warning", "Failed", message);
    this.publish();
    // A pod being deleted waits on its clean-up: retried at the first back-off step, without
    // growing (the kubelet retries a failed pod sync every 10 s, too).
    if (this.#lifecycle !== "syncing") {
      this.#scheduleRetry(() => Promise.resolve(), this.#backoffBaseMs);
    } else this.#retryLater();
  }

  /** The first retry delay (ms). */
  get #backoffBaseMs(): number {
    return this.#c.backoffBaseMs ?? 10_000;
  }

  /** Recomputes and emits the pod's status, coalescing bursts of signals into one. */
  publish(): void {
    if (this.#publishPending) return;
    this.#publishPending = true;
    queueMicrotask(() => {
      this.#publishPending = false;
      const pod = this.#pod;
      if (this.#removed() || pod.metadata?.deletionTimestamp) return;
      const units = new Map<string, ContainerUnit>();
      for (const [name, ref] of this.#units) {
        const observed = this.#c.observed.observed(name);
        // A container whose postStart hook still runs shows as not yet started (kubelet).
        if (observed && !this.#containers.hookRunning(name)) {
          units.set(ref.container, { ...observed, unitName: name });
        }
      }
      const status = computePodStatus(pod, {
        units,
        overrides: this.#effectiveOverrides(),
        failure: this.#final ?? this.#failure,
        evicted: this.#final !== undefined,
        addresses: { hostIP: this.#c.node.internalIP, podIP: this.#c.node.externalIP },
        now: new Date(),
        previous: this.#lastStatus,
      });
      this.#lastStatus = status;
      if (!this.#final && this.#deadlinePassed()) this.#enqueue(() => this.#reconcile());
      this.#c.onStatus(pod, status);
    });
  }

  /** Terminated for deletion: the worker is done. */
  #removed(): boolean {
    return this.#lifecycle === "terminated" && !this.#final;
  }

  /**
   * The pod's overrides plus its probes' results and `CrashLoopBackOff` for each container whose
   * restart is pending.
   */
  #effectiveOverrides(): Map<string, ContainerOverride> {
    const overrides = new Map(this.#overrides);
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
