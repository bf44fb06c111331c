/**
 * The pod runtime: keeps systemd's units in line with the pods systemk should run.
 *
 * One worker per pod UID, serialized (a pod's steps never interleave) while different pods
 * proceed concurrently, so one slow or failing pod never blocks another. systemd is the
 * source of truth: on start, units and pod slices found on the machine are adopted by the pod UID
 * stored in their `[X-Kubernetes]` section, and unit state arrives through systemd's change
 * signals. A pod's slice is installed before its units and removed after them.
 *
 * @module
 */
import type { V1Container, V1Pod, V1PodStatus } from "@kubernetes/client-node";
import { isNoSuchUnit, isTransientBusError } from "../systemd/mod.ts";
import { podsByPhase, reconcileDuration, reconcileErrors } from "../http/metrics.ts";
import {
  DEFAULT_GRACE_SECONDS,
  DEFAULT_STATE_DIR,
  MINIMUM_GRACE_SECONDS,
  type NodeFacts,
  type PackageInfo,
  PlanError,
  planPod,
  type PodIds,
  type PodPlan,
  type SecurityPolicy,
} from "../plan/mod.ts";
import { computePodStatus } from "../status/mod.ts";
import type { ContainerOverride, ContainerUnit, PodFailure } from "../status/mod.ts";
import type { UnitProperties } from "../systemd/types.ts";
import { isPodSliceName, parseUnit, readMetadata, readPodMetadata } from "../unit/mod.ts";
import { applyVolumes, removePodDir } from "../volumes/apply.ts";
import { checkHostPaths, HostPathError } from "../volumes/host_paths.ts";
import { podIdsOfUnit } from "../node/user_records.ts";
import {
  type ContainerProbes,
  probeKillGraceSeconds,
  startContainerProbes,
} from "../probes/worker.ts";
import { checkProbe } from "../probes/probe.ts";
import type { ContainerExec } from "../exec/container.ts";
import { runHook } from "./hooks.ts";
import { CRASH_LOOP_BASE_MS, type CrashLoop, decideRestart } from "./crash_loop.ts";
import { activeDeadlineRemainingMs, DEADLINE_EXCEEDED } from "./deadline.ts";
import {
  ContainerError,
  type EventSink,
  type ImageResolver,
  type OomKills,
  type References,
  type StatusSink,
  type UnitManager,
  type UserRecordStore,
} from "./ports.ts";

/** Retry delay after a D-Bus failure that was not the pod's fault (systemd re-executing). */
const TRANSIENT_RETRY_MS = 1000;

/** Everything the runtime is wired to. */
export interface RuntimeOptions {
  units: UnitManager;
  node: NodeFacts;
  images: ImageResolver;
  events: EventSink;
  onStatus: StatusSink;
  /** Fetches the ConfigMaps and Secrets a pod references. */
  references(pod: V1Pod): Promise<References>;
  /**
   * Where OOM kills of units are heard (the kernel log, oom.ts). Without it a memory-limit
   * kill shows as OOMKilled only where systemd itself says `Result=oom-kill` (cgroup v2).
   */
  oomKills?: OomKills;
  /** Called once a deleted pod's units and files are gone (node mode deletes the API object). */
  onTerminated?(pod: V1Pod): Promise<void> | void;
  stateDir?: string;
  /** `--allowed-host-paths`: prefixes hostPath volumes may use (none when absent). */
  allowedHostPaths?: readonly string[];
  /** Who pods may run as (`--allow-privileged`, `--allowed-host-users`, ...); default: the flags'. */
  policy?: SecurityPolicy;
  /** Makes the userdb records of pod ids; without it, pods run only with the host's ids. */
  userRecords?: UserRecordStore;
  /** First retry delay after a failed init container or a failed image install (ms). */
  backoffBaseMs?: number;
  /** Longest retry delay (ms). */
  backoffMaxMs?: number;
  /**
   * First delay before restarting an app container whose run ended (ms); doubles up to
   * 5 min. The kubelet's 10 s unless a test shortens it.
   */
  crashLoopBackoffBaseMs?: number;
}

interface UnitRef {
  container: string;
  init: boolean;
  text: string;
}

/** A pod's slice as installed: its name and file text. */
interface SliceRef {
  name: string;
  text: string;
}

interface PodState {
  pod: V1Pod;
  units: Map<string, UnitRef>;
  /** The pod's slice, once installed (or found on the machine). */
  slice?: SliceRef;
  podDir?: string;
  overrides: Map<string, ContainerOverride>;
  failure?: PodFailure;
  lastStatus?: V1PodStatus;
  retry?: ReturnType<typeof setTimeout>;
  backoffMs: number;
  /** True once the app units were asked to start in this pod's life. */
  started: boolean;
  /** Per app unit name: its crash-loop back-off. */
  crashLoops: Map<string, CrashLoop>;
  /** Per app unit name: the pending restart of its ended run. */
  restarts: Map<string, ReturnType<typeof setTimeout>>;
  /** Set once the pod's units are being stopped for good: nothing restarts any more. */
  terminating?: boolean;
  /** Per app unit name: the probes of its current run. */
  probes: Map<string, { invocation: string; handle: ContainerProbes }>;
  /** Per container name: what its probes found (readiness, startup). */
  probeResults: Map<string, Pick<ContainerOverride, "ready" | "started">>;
  /** Wakes the pod when its active deadline passes (activeDeadlineSeconds). */
  deadline?: ReturnType<typeof setTimeout>;
  /** Set once systemk ended the pod but keeps it (deadline passed): Failed, units stopped. */
  ended?: PodFailure;
  /**
   * Per app unit name: its running postStart hook. Until the hook is done the container is
   * not reported running (nor probed), as the kubelet reports it only after the hook.
   */
  postStarts: Map<string, PostStart>;
}

/** A running postStart hook: how to end it, and the container's run it is for (once known). */
interface PostStart {
  controller: AbortController;
  invocation?: string;
}

/**
 * A pod's state before anything is known about its units; without `backoffMs` for units found on
 * the machine that are only to be stopped (no retries, nothing to start).
 */
function newPodState(
  pod: V1Pod,
  found: { units: Map<string, UnitRef>; slice?: SliceRef },
  backoffMs?: number,
): PodState {
  return {
    pod,
    units: found.units,
    slice: found.slice,
    overrides: new Map(),
    backoffMs: backoffMs ?? 0,
    started: backoffMs === undefined,
    crashLoops: new Map(),
    restarts: new Map(),
    probes: new Map(),
    probeResults: new Map(),
    postStarts: new Map(),
  };
}

/** Runs pods as systemd units; see the module doc. */
export class PodRuntime {
  readonly #o: RuntimeOptions;
  readonly #pods = new Map<string, PodState>();
  /** Units found on the machine whose pod has not been claimed yet, by pod UID. */
  readonly #unclaimed = new Map<string, Map<string, UnitRef>>();
  /** Slices found on the machine whose pod has not been claimed yet, by pod UID. */
  readonly #unclaimedSlices = new Map<string, SliceRef>();
  readonly #owner = new Map<string, string>();
  readonly #props = new Map<string, UnitProperties>();
  /** Unit name → InvocationID of its run the OOM killer hit. */
  readonly #oomKilled = new Map<string, string>();
  readonly #queue = new Map<string, Promise<void>>();
  readonly #publishPending = new Set<string>();
  /** Units being stopped to be replaced: their end is not a crash. */
  readonly #stopping = new Set<string>();
  #closed = false;

  constructor(options: RuntimeOptions) {
    this.#o = options;
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
      const refs = this.#unclaimed.get(meta.podUID) ?? new Map<string, UnitRef>();
      refs.set(unit.name, { container: meta.containerName, init: meta.init, text: unit.text });
      this.#unclaimed.set(meta.podUID, refs);
      this.#owner.set(unit.name, meta.podUID);
    }
    await this.#o.userRecords?.adopt(inUse);
    return new Set([...this.#unclaimed.keys(), ...this.#unclaimedSlices.keys()]).size;
  }

  #adoptSlice(name: string, text: string): void {
    let meta;
    try {
      meta = readPodMetadata(parseUnit(text));
    } catch {
      meta = undefined;
    }
    if (meta?.nodeName === this.#o.node.name) {
      this.#unclaimedSlices.set(meta.podUID, { name, text });
    }
  }

  /** What was found on the machine of pod `uid`, now claimed by it. */
  #claim(uid: string): { units: Map<string, UnitRef>; slice?: SliceRef } {
    const found = {
      units: this.#unclaimed.get(uid) ?? new Map(),
      slice: this.#unclaimedSlices.get(uid),
    };
    this.#unclaimed.delete(uid);
    this.#unclaimedSlices.delete(uid);
    return found;
  }

  /** Makes `pod` run (or terminate, when it carries a deletionTimestamp). */
  sync(pod: V1Pod): void {
    const uid = pod.metadata!.uid!;
    const state = this.#pods.get(uid);
    if (state) {
      state.pod = pod;
    } else {
      this.#pods.set(uid, newPodState(pod, this.#claim(uid), this.#backoffBaseMs));
    }
    this.#enqueue(uid, () => reconcileDuration.time({}, () => this.#reconcile(uid)));
  }

  /** Stops and removes a pod's units and files; `graceSeconds` may shorten the pod's own. */
  terminate(uid: string, graceSeconds?: number): Promise<void> {
    return this.#enqueue(uid, () => this.#terminate(uid, graceSeconds));
  }

  /** Terminates every adopted pod that is not in `desired` (after the first full listing). */
  async collectOrphans(desired: ReadonlySet<string>): Promise<void> {
    const found = new Set([...this.#unclaimed.keys(), ...this.#unclaimedSlices.keys()]);
    const orphans = [...found].filter((uid) => !desired.has(uid));
    await Promise.all(orphans.map((uid) => {
      const pod = { metadata: { uid, name: "", namespace: "" } };
      this.#pods.set(uid, newPodState(pod, this.#claim(uid)));
      return this.terminate(uid, 0);
    }));
  }

  /** UIDs of the pods this runtime manages. */
  uids(): string[] {
    return [...this.#pods.keys()];
  }

  /** The latest status computed for a pod. */
  status(uid: string): V1PodStatus | undefined {
    return this.#pods.get(uid)?.lastStatus;
  }

  /** Waits for every queued step; stops scheduling retries. */
  async close(): Promise<void> {
    this.#closed = true;
    for (const state of this.#pods.values()) {
      clearTimeout(state.retry);
      clearTimeout(state.deadline);
      state.restarts.forEach(clearTimeout);
      state.probes.forEach((p) => p.handle.stop());
      state.postStarts.forEach((hook) => hook.controller.abort());
    }
    await Promise.all([...this.#queue.values()]);
  }

  #enqueue(uid: string, step: () => Promise<void>): Promise<void> {
    const previous = this.#queue.get(uid) ?? Promise.resolve();
    const next = previous.then(step).catch((e) => this.#fail(uid, e)).finally(() => {
      if (this.#queue.get(uid) === next) this.#queue.delete(uid);
    });
    this.#queue.set(uid, next);
    return next;
  }

  async #reconcile(uid: string): Promise<void> {
    const state = this.#pods.get(uid);
    if (!state) return;
    const pod = state.pod;
    if (pod.metadata?.deletionTimestamp) {
      return await this.#terminate(uid, pod.metadata.deletionGracePeriodSeconds);
    }
    if (state.ended || this.#deadlinePassed(uid, state)) {
      return await this.#endPod(uid, DEADLINE_EXCEEDED);
    }
    clearTimeout(state.retry);
    state.retry = undefined;
    state.failure = undefined;

    const packages = await this.#resolveImages(state);
    if (!packages) return this.#retryLater(uid);

    let plan: PodPlan;
    try {
      plan = planPod({
        pod,
        ...(await this.#o.references(pod)),
        node: this.#o.node,
        packages,
        stateDir: this.#o.stateDir ?? DEFAULT_STATE_DIR,
        allowedHostPaths: this.#o.allowedHostPaths,
        policy: this.#o.policy,
      });
    } catch (e) {
      if (!(e instanceof PlanError)) throw e;
      this.#planFailed(state, e);
      return this.#retryLater(uid);
    }
    state.podDir = plan.podDir;

    try {
      await checkHostPaths(plan.hostPathChecks, {
        allowedHostPaths: this.#o.allowedHostPaths ?? [],
        stateDir: this.#o.stateDir ?? DEFAULT_STATE_DIR,
      });
      await this.#o.userRecords?.use(uid, plan.podIds);
      await applyVolumes(plan.volumes);
    } catch (e) {
      const message = e instanceof HostPathError
        ? `${podKey(pod)}: ${e.message}`
        : `writing volumes of ${podKey(pod)} failed: ${(e as Error).message}`;
      state.failure = { reason: "FailedMount", message };
      this.#o.events.record(pod, "Warning", "FailedMount", message);
      // Containers already running (adopted ones too) go on with the files they have.
      await this.#followUnits(uid, state);
      this.#publish(uid);
      return this.#retryLater(uid);
    }

    // The units run in the slice: it must be there before the first of them starts.
    if (state.slice?.text !== plan.slice.text) {
      await this.#o.units.install(plan.slice.name, plan.slice.text);
      state.slice = { name: plan.slice.name, text: plan.slice.text };
    }
    const changed = [];
    for (const unit of plan.units) {
      const previous = state.units.get(unit.name);
      if (previous?.text === unit.text) {
        // An adopted unit's state must be known before #startApps judges it "fresh": else a
        // container that already ended under `restartPolicy: Never` runs again after a
        // restart of systemk.
        if (!this.#props.has(unit.name)) {
          this.#props.set(unit.name, await this.#o.units.properties(unit.name));
        }
        continue;
      }
      const owner = this.#owner.get(unit.name);
      if (owner && owner !== uid) await this.#handOver(owner);
      if (previous) await this.#stopForReplacement(state, unit.name);
      await this.#o.units.install(unit.name, unit.text);
      state.units.set(unit.name, { container: unit.container, init: unit.init, text: unit.text });
      this.#owner.set(unit.name, uid);
      changed.push(unit);
    }
    for (const name of [...state.units.keys()]) {
      if (!plan.units.some((u) => u.name === name)) await this.#removeUnit(state, name);
    }
    // Only now that no unit runs with them may the ids the pod no longer uses lose records.
    await this.#o.userRecords?.release(uid, plan.podIds);
    for (const unit of changed) {
      this.#o.events.record(pod, "Normal", "Created", `Created unit ${unit.name}`, unit.container);
      this.#props.set(unit.name, await this.#o.units.properties(unit.name));
    }
    await this.#startApps(uid, state, plan, changed.length > 0);
    await this.#followUnits(uid, state);
    this.#publish(uid);
  }

  /**
   * Follows the units the pod has, as they are: their state (read once for adopted ones, so the
   * status shows them), restarts per policy of containers that ended (adopted ones may have
   * ended while systemk was away), and probes.
   */
  async #followUnits(uid: string, state: PodState): Promise<void> {
    for (const name of [...state.units.keys()]) {
      if (!this.#props.has(name)) this.#props.set(name, await this.#o.units.properties(name));
      this.#restartIfEnded(uid, state, name);
      this.#syncProbes(uid, state, name);
    }
  }

  /** Resolves every container's image; undefined (with overrides set) if any failed. */
  async #resolveImages(state: PodState): Promise<Map<string, PackageInfo> | undefined> {
    const pod = state.pod;
    const containers = [...(pod.spec?.initContainers ?? []), ...(pod.spec?.containers ?? [])];
    const packages = new Map<string, PackageInfo>();
    let failed = false;
    await Promise.all(containers.map(async (c: V1Container) => {
      try {
        packages.set(c.name, await this.#o.images.resolve(pod, c));
        if (state.overrides.get(c.name)?.waiting?.reason !== "CreateContainerConfigError") {
          state.overrides.delete(c.name);
        }
      } catch (e) {
        if (!(e instanceof ContainerError)) throw e;
        failed = true;
        // The resolver has told the story in events; the status carries the reason.
        state.overrides.set(c.name, { waiting: { reason: e.reason, message: e.message } });
      }
    }));
    if (failed) {
      this.#publish(pod.metadata!.uid!);
      return undefined;
    }
    return packages;
  }

  #planFailed(state: PodState, e: PlanError): void {
    const message = e.message;
    if (e.container) {
      state.overrides.set(e.container, { waiting: { reason: e.reason, message } });
    } else {
      state.failure = { reason: e.reason, message };
    }
    this.#o.events.record(state.pod, "Warning", "Failed", message, e.container);
    this.#publish(state.pod.metadata!.uid!);
  }

  /**
   * Starts the app units (systemd pulls in the init chain through Requires=/After=). Units that
   * already ran are left to systemd's own restart policy: starting a container that exited
   * under `restartPolicy: Never` again would be wrong.
   */
  async #startApps(uid: string, state: PodState, plan: PodPlan, changed: boolean): Promise<void> {
    const apps = plan.units.filter((u) => !u.init);
    const fresh = apps.filter((u) => {
      const props = this.#props.get(u.name);
      return !props || (props.InvocationID === "" && props.ActiveState === "inactive");
    });
    if (fresh.length === 0 || (state.started && !changed && !this.#initRetryDue(state))) return;
    state.started = true;
    await Promise.all(fresh.map(async (unit) => {
      const result = await this.#startContainer(uid, state, unit.name);
      if (result === "done") {
        this.#o.events.record(
          state.pod,
          "Normal",
          "Started",
          `Started unit ${unit.name}`,
          unit.container,
        );
        state.backoffMs = this.#backoffBaseMs;
      } else if (result !== "dependency") {
        this.#o.events.record(
          state.pod,
          "Warning",
          "Failed",
          `Starting unit ${unit.name} failed: ${result}`,
          unit.container,
        );
      }
      this.#props.set(unit.name, await this.#o.units.properties(unit.name));
    }));
    this.#publish(uid);
  }

  /** An init container failed and the pod's policy wants it retried. */
  #initRetryDue(state: PodState): boolean {
    if (state.pod.spec?.restartPolicy === "Never") return false;
    return [...state.units].some(([name, ref]) =>
      ref.init && this.#props.get(name)?.ActiveState === "failed"
    );
  }

  #observe(name: string, props: UnitProperties): void {
    const uid = this.#owner.get(name);
    if (!uid) return;
    this.#props.set(name, props);
    const state = this.#pods.get(uid);
    if (!state) return;
    this.#publish(uid);
    const ref = state.units.get(name);
    const postStart = state.postStarts.get(name);
    if (
      postStart?.invocation === props.InvocationID &&
      ["inactive", "failed", "deactivating"].includes(props.ActiveState)
    ) {
      // The container's run ended before its postStart hook did: the hook is moot.
      postStart.controller.abort();
      state.postStarts.delete(name);
    }
    if (ref && !ref.init) {
      this.#restartIfEnded(uid, state, name);
      this.#syncProbes(uid, state, name);
    }
    if (
      ref?.init && props.ActiveState === "failed" && state.retry === undefined &&
      !state.terminating && this.#initRetryDue(state)
    ) {
      this.#o.events.record(
        state.pod,
        "Warning",
        "BackOff",
        `Back-off restarting failed init container ${ref.container}`,
        ref.container,
      );
      this.#scheduleRetry(uid, async () => {
        for (const [unit, r] of state.units) if (r.init) await this.#o.units.resetFailed(unit);
        this.#props.forEach((_, unit) => {
          if (state.units.has(unit)) this.#props.delete(unit);
        });
        for (const unit of state.units.keys()) {
          this.#props.set(unit, await this.#o.units.properties(unit));
        }
      });
    }
  }

  /**
   * The kernel reports the kill while the process dies, before systemd sees the exit: the
   * unit's current run is the one killed.
   */
  #oomKill(name: string): void {
    const uid = this.#owner.get(name);
    if (!uid) return;
    this.#o.units.properties(name).then((props) => {
      if (props.InvocationID === "") return;
      this.#oomKilled.set(name, props.InvocationID);
      this.#publish(uid);
    }, (e) => console.error(`systemk: reading ${name} after an OOM kill: ${e.message}`));
  }

  /**
   * An app container's run ended: schedules its restart after the crash-loop back-off when
   * its restartPolicy wants one (kubelet: `doBackOff`), showing `CrashLoopBackOff` meanwhile.
   */
  #restartIfEnded(uid: string, state: PodState, name: string): void {
    const ref = state.units.get(name);
    const props = this.#props.get(name);
    if (!ref || ref.init || !props || this.#closed || this.#stopping.has(name)) return;
    if (state.terminating || state.pod.metadata?.deletionTimestamp) return;
    const container = state.pod.spec?.containers?.find((c) => c.name === ref.container);
    if (!container) return;
    const base = this.#o.crashLoopBackoffBaseMs ?? CRASH_LOOP_BASE_MS;
    const loop = state.crashLoops.get(name) ?? { nextDelayMs: base };
    state.crashLoops.set(name, loop);
    const decision = decideRestart(loop, props, state.pod, container, base);
    if (!decision) return;
    const pod = state.pod;
    this.#o.events.record(
      pod,
      "Warning",
      "BackOff",
      `Back-off restarting failed container ${ref.container} in pod ${podKey(pod)}`,
      ref.container,
    );
    const ended = loop.ended;
    clearTimeout(state.restarts.get(name));
    state.restarts.set(
      name,
      setTimeout(() => {
        state.restarts.delete(name);
        this.#enqueue(uid, () => this.#restartContainer(uid, name, ended));
      }, decision.delayMs),
    );
    this.#publish(uid);
  }

  /** Starts a new run of an app container, unless its ended run was replaced meanwhile. */
  async #restartContainer(uid: string, name: string, ended: string | undefined): Promise<void> {
    const state = this.#pods.get(uid);
    const ref = state?.units.get(name);
    if (!state || !ref || state.terminating || state.pod.metadata?.deletionTimestamp) return;
    const props = await this.#o.units.properties(name);
    // A newer run started meanwhile: nothing to restart. (A unit stopped cleanly may have been
    // unloaded by systemd's garbage collection, which forgets its InvocationID: still ended.)
    if (props.InvocationID !== "" && props.InvocationID !== ended) return this.#publish(uid);
    // `RemainAfterExit=yes` keeps a run that exited 0 active: only a stop lets it start again.
    if (props.ActiveState === "active") await this.#o.units.stop(name);
    await this.#o.units.resetFailed(name);
    const result = await this.#startContainer(uid, state, name);
    if (result === "done") {
      this.#o.events.record(state.pod, "Normal", "Started", `Started unit ${name}`, ref.container);
    } else {
      this.#o.events.record(
        state.pod,
        "Warning",
        "Failed",
        `Starting unit ${name} failed: ${result}`,
        ref.container,
      );
    }
    this.#props.set(name, await this.#o.units.properties(name));
    this.#restartIfEnded(uid, state, name);
    this.#publish(uid);
  }

  /**
   * Keeps an app container's probes in line with its unit: a running run is probed (once per
   * InvocationID), anything else is not, and its results are forgotten.
   */
  #syncProbes(uid: string, state: PodState, name: string): void {
    const ref = state.units.get(name);
    const container = state.pod.spec?.containers?.find((c) => c.name === ref?.container);
    if (!ref || ref.init || !container) return;
    if (!container.livenessProbe && !container.readinessProbe && !container.startupProbe) return;
    const props = this.#props.get(name);
    const invocation = props?.ActiveState === "active" && props.SubState === "running" &&
        !state.postStarts.has(name) && !this.#closed && !state.terminating &&
        !state.pod.metadata?.deletionTimestamp
      ? props.InvocationID
      : undefined;
    const current = state.probes.get(name);
    if (current?.invocation === invocation) return;
    current?.handle.stop();
    state.probes.delete(name);
    state.probeResults.delete(ref.container);
    if (!invocation) return;
    const results: Pick<ContainerOverride, "ready" | "started"> = {};
    state.probeResults.set(ref.container, results);
    const event = (type: "Normal" | "Warning", reason: string, message: string) =>
      this.#o.events.record(state.pod, type, reason, message, ref.container);
    const host = this.#o.node.externalIP;
    const exec = this.#containerExec(name);
    const handle = startContainerProbes(container, host, {
      ready: (ready) => {
        results.ready = ready;
        this.#publish(uid);
      },
      started: () => {
        results.started = true;
        this.#publish(uid);
      },
      failed: (kind, message) => event("Warning", "Unhealthy", `${kind} probe failed: ${message}`),
      unsupported: (kind, message) =>
        event("Warning", "Unhealthy", `${kind} probe errored: ${message}`),
      unhealthy: (kind) => {
        event(
          "Normal",
          "Killing",
          `Container ${ref.container} failed ${kind.toLowerCase()} probe, will be restarted`,
        );
        // The run ends; the crash-loop back-off restarts it per restartPolicy, as the kubelet.
        this.#enqueue(uid, async () => {
          if (state.probes.get(name)?.invocation !== invocation) return;
          await this.#stopContainer(state, name, probeKillGraceSeconds(container, kind));
        });
      },
    }, (probe) => checkProbe(probe, container, host, exec));
    state.probes.set(name, { invocation, handle });
  }

  /** Runs commands in the container of unit `name` (exec probes), where the units allow it. */
  #containerExec(name: string): ContainerExec | undefined {
    const exec = this.#o.units.exec;
    return exec && ((options) => exec(name, options));
  }

  /**
   * Stops a unit about to be replaced by a new version: that stop ends its run, which must not
   * count as a crash to restart.
   */
  async #stopForReplacement(state: PodState, name: string): Promise<void> {
    this.#stopping.add(name);
    try {
      await this.#stopContainer(state, name, undefined);
      const props = await this.#o.units.properties(name);
      clearTimeout(state.restarts.get(name));
      state.restarts.delete(name);
      const loop = state.crashLoops.get(name);
      if (loop) loop.ended = props.InvocationID;
    } finally {
      this.#stopping.delete(name);
    }
  }

  #retryLater(uid: string): void {
    this.#scheduleRetry(uid, () => Promise.resolve());
  }

  #scheduleRetry(uid: string, before: () => Promise<void>, fixedDelayMs?: number): void {
    const state = this.#pods.get(uid);
    if (!state || this.#closed) return;
    clearTimeout(state.retry);
    const delay = fixedDelayMs ?? state.backoffMs;
    if (fixedDelayMs === undefined) {
      state.backoffMs = Math.min(delay * 2, this.#o.backoffMaxMs ?? 300_000);
    }
    state.retry = setTimeout(() => {
      state.retry = undefined;
      this.#enqueue(uid, async () => {
        await before();
        state.started = false;
        await this.#reconcile(uid);
      });
    }, delay);
  }

  /** Another pod (same namespace/name, other UID) still owns a unit name: it must go first. */
  async #handOver(otherUID: string): Promise<void> {
    const other = this.#pods.get(otherUID);
    if (other) {
      await this.terminate(otherUID);
      return;
    }
    if (!this.#unclaimed.has(otherUID)) return;
    this.#pods.set(otherUID, newPodState({ metadata: { uid: otherUID } }, this.#claim(otherUID)));
    await this.#terminate(otherUID, undefined);
  }

  async #terminate(uid: string, graceSeconds: number | undefined): Promise<void> {
    const state = this.#pods.get(uid);
    if (!state) return;
    this.#quiesce(state);
    const pod = state.pod;
    const names = [...state.units.keys()];
    if (names.length && pod.metadata?.name) {
      this.#o.events.record(pod, "Normal", "Killing", `Stopping ${names.length} unit(s)`);
    }
    await Promise.all(names.map((name) => this.#stopContainer(state, name, graceSeconds)));
    for (const name of names) await this.#removeUnit(state, name);
    await this.#o.userRecords?.release(uid);
    if (state.slice) {
      await this.#o.units.remove(state.slice.name);
      state.slice = undefined;
    }
    const podDir = state.podDir ?? `${this.#o.stateDir ?? DEFAULT_STATE_DIR}/${uid}`;
    await removePodDir(podDir);
    this.#pods.delete(uid);
    this.#countPhases();
    if (pod.metadata?.name) await this.#o.onTerminated?.(pod);
  }

  /** From now on nothing starts, restarts or probes the pod's containers. */
  #quiesce(state: PodState): void {
    clearTimeout(state.retry);
    clearTimeout(state.deadline);
    state.terminating = true;
    state.restarts.forEach(clearTimeout);
    state.restarts.clear();
    state.probes.forEach((p) => p.handle.stop());
    state.probes.clear();
    state.postStarts.forEach((hook) => hook.controller.abort());
    state.postStarts.clear();
  }

  /**
   * Whether the pod's active deadline (activeDeadlineSeconds, counted from its startTime) has
   * passed; if not, wakes the pod when it does.
   */
  #deadlinePassed(uid: string, state: PodState): boolean {
    clearTimeout(state.deadline);
    state.deadline = undefined;
    const status = state.lastStatus ?? state.pod.status;
    const remaining = activeDeadlineRemainingMs(state.pod, status, Date.now());
    if (remaining === undefined || state.terminating) return false;
    if (remaining <= 0) return true;
    if (this.#closed) return false;
    state.deadline = setTimeout(() => {
      state.deadline = undefined;
      this.#enqueue(uid, () => this.#reconcile(uid));
    }, remaining);
    return false;
  }

  /**
   * Ends the pod for good but keeps it, as the kubelet's eviction by a pod sync handler (here
   * the active deadline): event, every unit stopped within the pod's grace period, nothing
   * restarted, phase Failed with `failure` as reason and message. Runs again on every sync of
   * the ended pod (and after a restart of systemk) to keep its units stopped.
   */
  async #endPod(uid: string, failure: PodFailure): Promise<void> {
    const state = this.#pods.get(uid);
    if (!state) return;
    if (!state.ended) {
      state.ended = failure;
      this.#quiesce(state);
      // After a restart of systemk the pod already says so: the event was given then.
      if ((state.lastStatus ?? state.pod.status)?.reason !== failure.reason) {
        this.#o.events.record(state.pod, "Normal", failure.reason, failure.message);
      }
    }
    await Promise.all([...state.units.keys()].map(async (name) => {
      await this.#stopContainer(state, name, undefined);
      this.#props.set(name, await this.#o.units.properties(name));
    }));
    this.#publish(uid);
  }

  /**
   * Starts an app container's unit; once it started, its postStart hook runs beside it (never
   * in the pod's queue, so a hanging hook blocks neither deletion nor other steps). A failed
   * hook kills the container, which restarts per restartPolicy (kubelet).
   *
   * @return The start job's result.
   */
  async #startContainer(uid: string, state: PodState, name: string): Promise<string> {
    const container = this.#appContainer(state, name);
    const hook = container?.lifecycle?.postStart;
    if (!container || !hook) return await this.#o.units.start(name);
    const postStart: PostStart = { controller: new AbortController() };
    const controller = postStart.controller;
    // Set before the start, so no status shows the container running before the hook is done.
    state.postStarts.set(name, postStart);
    const result = await this.#o.units.start(name).catch((e) => {
      state.postStarts.delete(name);
      throw e;
    });
    if (result !== "done") {
      state.postStarts.delete(name);
      return result;
    }
    const invocation = (await this.#o.units.properties(name)).InvocationID;
    postStart.invocation = invocation;
    void runHook(hook, {
      container,
      host: this.#o.node.externalIP,
      exec: this.#containerExec(name),
      signal: controller.signal,
    }).then((outcome) => {
      // Stopped meanwhile (or systemk is closing): the hook's end means nothing.
      if (controller.signal.aborted || state.postStarts.get(name) !== postStart) return;
      state.postStarts.delete(name);
      if (outcome.ok) {
        this.#syncProbes(uid, state, name);
      } else {
        console.error(`systemk: postStart hook of ${name} failed: ${outcome.message}`);
        // The event leaves the message out, as the kubelet's: it may hold Secret data.
        this.#o.events.record(
          state.pod,
          "Warning",
          "FailedPostStartHook",
          "PostStartHook failed",
          container.name,
        );
        this.#enqueue(uid, async () => {
          if ((await this.#o.units.properties(name)).InvocationID !== invocation) return;
          await this.#stopContainer(state, name, undefined);
        });
      }
      this.#publish(uid);
    });
    return result;
  }

  /** The spec of the app container of unit `name`. */
  #appContainer(state: PodState, name: string): V1Container | undefined {
    const ref = state.units.get(name);
    if (!ref || ref.init) return undefined;
    return state.pod.spec?.containers?.find((c) => c.name === ref.container);
  }

  /**
   * Stops a container as the kubelet kills one: a running app container's preStop hook first,
   * within the grace period (`graceSeconds`, else the pod's `terminationGracePeriodSeconds`),
   * then SIGTERM with what is left of it (at least 2 s), then SIGKILL.
   */
  async #stopContainer(
    state: PodState,
    name: string,
    graceSeconds: number | undefined,
  ): Promise<void> {
    state.postStarts.get(name)?.controller.abort();
    state.postStarts.delete(name);
    const container = this.#appContainer(state, name);
    const hook = container?.lifecycle?.preStop;
    const grace = graceSeconds ?? state.pod.spec?.terminationGracePeriodSeconds ??
      DEFAULT_GRACE_SECONDS;
    const props = this.#props.get(name);
    if (!container || !hook || grace <= 0 || props?.SubState !== "running") {
      return await this.#stopWithin(name, graceSeconds);
    }
    const started = performance.now();
    const deadline = AbortSignal.timeout(grace * 1000);
    const outcome = await runHook(hook, {
      container,
      host: this.#o.node.externalIP,
      exec: this.#containerExec(name),
      signal: deadline,
      timeoutMs: grace * 1000,
    });
    if (deadline.aborted) {
      console.error(`systemk: preStop hook of ${name} did not finish in ${grace} s`);
    } else if (!outcome.ok) {
      console.error(`systemk: preStop hook of ${name} failed: ${outcome.message}`);
      this.#o.events.record(
        state.pod,
        "Warning",
        "FailedPreStopHook",
        "PreStopHook failed",
        container.name,
      );
    }
    const used = (performance.now() - started) / 1000;
    await this.#stopWithin(name, Math.max(grace - used, MINIMUM_GRACE_SECONDS));
  }

  /** Stops a unit; a grace period shorter than the unit's own ends in SIGKILL at its deadline. */
  async #stopWithin(name: string, graceSeconds: number | undefined): Promise<void> {
    const timer = graceSeconds === undefined
      ? undefined
      : setTimeout(() => this.#o.units.kill(name, 9).catch(() => {}), graceSeconds * 1000);
    try {
      await this.#o.units.stop(name);
    } finally {
      clearTimeout(timer);
    }
  }

  async #removeUnit(state: PodState, name: string): Promise<void> {
    await this.#o.units.remove(name);
    state.units.delete(name);
    clearTimeout(state.restarts.get(name));
    state.restarts.delete(name);
    state.crashLoops.delete(name);
    state.probes.get(name)?.handle.stop();
    state.probes.delete(name);
    state.postStarts.get(name)?.controller.abort();
    state.postStarts.delete(name);
    this.#props.delete(name);
    this.#oomKilled.delete(name);
    if (this.#owner.get(name) === state.pod.metadata?.uid) this.#owner.delete(name);
  }

  #fail(uid: string, e: unknown): void {
    const state = this.#pods.get(uid);
    const doing = state?.terminating ? "stop and clean up" : "run";
    const message = `systemk could not ${doing} ${state ? podKey(state.pod) : uid}: ${
      (e as Error)?.message ?? e
    }`;
    console.error(message);
    reconcileErrors.inc();
    if (!state || !state.pod.metadata?.name) return;
    if (isTransientBusError(e) || isNoSuchUnit(e)) {
      // systemd re-executed or the bus restarted under this step: not the pod's fault, so no
      // event and no growing back-off; try again once the client has reconnected.
      this.#scheduleRetry(uid, () => Promise.resolve(), TRANSIENT_RETRY_MS);
      return;
    }
    state.failure = { reason: "SystemkError", message };
    this.#o.events.record(state.pod, "Warning", "Failed", message);
    this.#publish(uid);
    // A pod being deleted waits on its clean-up: retried at the first back-off step, without
    // growing (the kubelet retries a failed pod sync every 10 s, too).
    if (state.terminating) this.#scheduleRetry(uid, () => Promise.resolve(), this.#backoffBaseMs);
    else this.#retryLater(uid);
  }

  /** The first retry delay (ms). */
  get #backoffBaseMs(): number {
    return this.#o.backoffBaseMs ?? 10_000;
  }

  /** Sets the pods-by-phase gauge from the statuses last computed. */
  #countPhases(): void {
    const counts = new Map<string, number>();
    for (const state of this.#pods.values()) {
      const phase = state.lastStatus?.phase;
      if (phase) counts.set(phase, (counts.get(phase) ?? 0) + 1);
    }
    podsByPhase.replaceAll([...counts].map(([phase, value]) => ({ labels: { phase }, value })));
  }

  /** Recomputes and emits the pod's status, coalescing bursts of signals into one. */
  #publish(uid: string): void {
    if (this.#publishPending.has(uid)) return;
    this.#publishPending.add(uid);
    queueMicrotask(() => {
      this.#publishPending.delete(uid);
      const state = this.#pods.get(uid);
      if (!state || !state.pod.metadata?.name || state.pod.metadata.deletionTimestamp) return;
      const units = new Map<string, ContainerUnit>();
      for (const [name, ref] of state.units) {
        const props = this.#props.get(name);
        // A container whose postStart hook still runs shows as not yet started (kubelet).
        if (props && !state.postStarts.has(name)) {
          const oomKilled = this.#oomKilled.get(name) === props.InvocationID;
          units.set(ref.container, { props, unitName: name, oomKilled });
        }
      }
      const status = computePodStatus(state.pod, {
        units,
        overrides: effectiveOverrides(state),
        failure: state.ended ?? state.failure,
        evicted: state.ended !== undefined,
        addresses: { hostIP: this.#o.node.internalIP, podIP: this.#o.node.externalIP },
        now: new Date(),
        previous: state.lastStatus,
      });
      state.lastStatus = status;
      if (!state.ended && this.#deadlinePassed(uid, state)) {
        this.#enqueue(uid, () => this.#reconcile(uid));
      }
      this.#countPhases();
      this.#o.onStatus(state.pod, status);
    });
  }
}

/** `namespace/name` of a pod, for messages. */
export function podKey(pod: V1Pod): string {
  return `${pod.metadata?.namespace ?? "default"}/${pod.metadata?.name ?? pod.metadata?.uid}`;
}

/**
 * The pod's overrides plus its probes' results and `CrashLoopBackOff` for each container whose
 * restart is pending.
 */
function effectiveOverrides(state: PodState): Map<string, ContainerOverride> {
  const overrides = new Map(state.overrides);
  for (const [container, results] of state.probeResults) {
    overrides.set(container, { ...overrides.get(container), ...results });
  }
  for (const name of state.restarts.keys()) {
    const container = state.units.get(name)?.container;
    const message = state.crashLoops.get(name)?.message;
    if (!container || overrides.get(container)?.waiting) continue;
    overrides.set(container, {
      ...overrides.get(container),
      waiting: { reason: "CrashLoopBackOff", message },
    });
  }
  return overrides;
}
