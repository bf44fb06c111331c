/**
 * A pod worker, as the kubelet's `pod_workers.go`: one per pod UID, running the pod's steps one
 * at a time (a pod's steps never interleave; different pods proceed concurrently) through an
 * explicit lifecycle:
 *
 * - `syncing`: the pod should run; each sync (pod_sync.ts) makes it run as its spec says, as
 *   far as it can now, and says when to sync again (sync_retry.ts); its containers are
 *   restarted and probed meanwhile (pod_containers.ts);
 * - `terminating`: its containers are being stopped, for good: nothing starts, restarts or
 *   probes them any more;
 * - `terminated`: stopped. A deleted pod is then removed (units, files) and forgotten; a pod
 *   ended by systemk with a final status (its active deadline passed, the node shuts down) is
 *   kept, Failed, and so is a pod rejected at admission (never started) and one whose phase is
 *   already Succeeded or Failed (a terminal phase never runs again: after a reboot or a
 *   restart of systemk, such a pod's containers are not started again).
 *
 * @module
 */
import type { V1Pod, V1PodStatus } from "@kubernetes/client-node";
import { isNoSuchUnit, isTransientBusError } from "../systemd/mod.ts";
import { reconcileDuration, reconcileErrors } from "../metrics/mod.ts";
import { isTerminalPhase, type PodFailure } from "../status/mod.ts";
import type { UnitProperties } from "../unit/properties.ts";
import { type Log, podLogger } from "../log/mod.ts";
import { ActiveDeadlineTimer, DEADLINE_EXCEEDED } from "./deadline.ts";
import { rejectedStatus } from "./admission.ts";
import { PodContainers } from "./pod_containers.ts";
import { CLAIM_RETRY_MS, SyncRetry, TRANSIENT_RETRY_MS } from "./sync_retry.ts";
import { PodSync } from "./pod_sync.ts";
import type { CpuMemory } from "../plan/allocation.ts";
import { type FoundPod, type KeptTermination, podKey, type PodRuntimeContext } from "./context.ts";

/** Where a pod worker is in the pod's life; see the module doc. */
export type PodLifecycle = "syncing" | "terminating" | "terminated";

/** Runs one pod; see the module doc. */
export class PodWorker {
  readonly #c: PodRuntimeContext;
  readonly #uid: string;
  #pod: V1Pod;
  readonly #log: Log;
  #lifecycle: PodLifecycle = "syncing";
  /** Terminated (or terminating) for good, but kept: see the module doc. */
  #kept = false;
  /** Why systemk ended the pod while keeping it (absent for a pod already terminal). */
  #final?: KeptTermination;
  /** The pod was rejected at admission: it has no container statuses. */
  readonly #rejected: boolean;
  /** The grace period its termination asked for, while terminating for deletion. */
  #termination?: { graceSeconds?: number };
  /** systemk stops: no timer is set any more (pods keep running). */
  #closed = false;
  #queue: Promise<void>;
  #failure?: PodFailure;
  #lastStatus?: V1PodStatus;
  readonly #retry: SyncRetry;
  /** Wakes the pod when its active deadline passes (activeDeadlineSeconds). */
  readonly #deadline = new ActiveDeadlineTimer(() => this.#enqueue(() => this.#reconcile()));
  #publishPending = false;
  readonly #containers: PodContainers;
  readonly #podSync: PodSync;

  /**
   * @param pod the pod as last seen.
   * @param context what the runtime shares with its workers; `adopted` the pod's units and
   *   slice found on the machine, `after` a step of the same UID still running, `rejection`
   *   why admission refused the pod (reason, and the message its Event shows).
   */
  constructor(
    pod: V1Pod,
    context: PodRuntimeContext & {
      adopted: FoundPod;
      after?: Promise<void>;
      rejection?: PodFailure;
    },
  ) {
    this.#c = context;
    this.#uid = pod.metadata!.uid!;
    this.#pod = pod;
    this.#log = podLogger(podKey(pod));
    this.#rejected = context.rejection !== undefined;
    if (context.rejection) {
      const { reason, message } = context.rejection;
      this.#log.info(`rejected: ${message}`);
      context.events.record(pod, { type: "Warning", reason, message });
      this.#final = { failure: rejectedStatus(context.rejection) };
    }
    // Neither a rejected pod nor one already ended ever runs (a terminal phase is final).
    if (this.#rejected || isTerminalPhase(pod.status?.phase)) {
      this.#kept = true;
      this.#lifecycle = "terminated";
    }
    this.#queue = context.after ?? Promise.resolve();
    this.#retry = new SyncRetry({
      baseMs: context.backoffBaseMs,
      maxMs: context.backoffMaxMs,
      log: this.#log,
      fire: (before) =>
        this.#enqueue(async () => {
          await before();
          this.#containers.retrying();
          await this.#reconcile();
        }),
    });
    this.#containers = new PodContainers({
      context,
      uid: this.#uid,
      pod: () => this.#pod,
      adopted: context.adopted,
      log: this.#log,
      enqueue: (step) => this.#enqueue(step),
      publish: () => this.publish(),
      running: () =>
        this.#lifecycle === "syncing" && !this.#closed && !this.#pod.metadata?.deletionTimestamp,
      onStarted: () => this.#retry.reset(),
    });
    this.#podSync = new PodSync({
      context,
      uid: this.#uid,
      pod: () => this.#pod,
      containers: this.#containers,
      log: this.#log,
    });
  }

  /**
   * The pod's CPU and memory requests as allocated, while it holds them (not once
   * terminated): what other pods' resizes must leave room for.
   */
  get allocatedRequests(): CpuMemory | undefined {
    return this.#lifecycle === "terminated"
      ? undefined
      : this.#podSync.allocatedRequests(this.#pod);
  }

  /** A resize of this pod waits for room: try it again (another pod shrank or went). */
  retryDeferredResize(): void {
    if (this.#podSync.resizeDeferred && this.#lifecycle === "syncing") this.sync(this.#pod);
  }

  /** The status last computed. */
  get lastStatus(): V1PodStatus | undefined {
    return this.#lastStatus;
  }

  /** The pod as last seen. */
  get pod(): V1Pod {
    return this.#pod;
  }

  /** Per container name: the unit written for it (or found on the machine). */
  containerUnits(): Map<string, string> {
    return this.#containers.containerUnits();
  }

  /**
   * Whether the pod counts as running on the node (the kubelet's active pods): admitted and
   * not terminated yet; a pod being deleted counts until its containers are stopped.
   */
  get active(): boolean {
    return this.#lifecycle !== "terminated";
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
    this.#log.debug("others' conditions changed: status computed again");
    this.publish();
  }

  /** Stops and removes the pod's units and files; `graceSeconds` may shorten the pod's own. */
  terminate(graceSeconds?: number): Promise<void> {
    return this.#enqueue(() => this.#terminate(graceSeconds));
  }

  /**
   * Ends the pod for good but keeps it, as the kubelet's `TerminatePodAbnormallyAndWait`:
   * its containers stopped (preStop hooks included) and its phase Failed as `termination`
   * says. A pod being deleted, or already ended, is left to that; the returned promise
   * resolves once the pod's containers are stopped either way.
   */
  terminateAbnormally(termination: KeptTermination): Promise<void> {
    return this.#enqueue(async () => {
      if (this.#termination || this.#lifecycle === "terminated") return;
      await this.#terminateKept(termination);
    });
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
    const init = this.#containers.observe(unit, props);
    if (init && !this.#retry.pending && this.#lifecycle === "syncing") {
      const message = `Back-off restarting failed init container ${init}`;
      this.#c.events.record(this.#pod, {
        type: "Warning",
        reason: "BackOff",
        message,
        container: init,
      });
      this.#scheduleRetry({ before: () => this.#containers.resetInits() });
    }
  }

  /** Waits for the running step; sets no timer any more. */
  async close(): Promise<void> {
    this.#closed = true;
    this.#retry.cancel();
    this.#deadline.cancel();
    this.#containers.quiesce();
    await this.#queue;
  }

  async #reconcile(): Promise<void> {
    const pod = this.#pod;
    if (pod.metadata?.deletionTimestamp) {
      return await this.#terminate(pod.metadata.deletionGracePeriodSeconds);
    }
    // Once terminating, a pod never runs again (a failed termination is retried as such).
    if (this.#termination) return await this.#terminate(this.#termination.graceSeconds);
    if (this.#kept || isTerminalPhase((this.#lastStatus ?? pod.status)?.phase)) {
      return await this.#terminateKept(this.#final);
    }
    if (this.#deadlinePassed()) return await this.#terminateKept({ failure: DEADLINE_EXCEEDED });
    this.#retry.cancel();
    const { failure, retry } = await this.#podSync.sync(pod);
    this.#failure = failure;
    this.publish();
    if (retry === "claim") this.#scheduleRetry({ fixedDelayMs: CLAIM_RETRY_MS });
    else if (retry === "backoff") this.#scheduleRetry();
    else if (retry === "init" && !this.#retry.pending) {
      // A failed init container's retry, cancelled by this sync, is due again (the kubelet
      // retries it with the back-off on its next sync, too), unless its failure just now
      // scheduled it.
      this.#scheduleRetry({ before: () => this.#containers.resetInits() });
    }
  }

  /** Syncs the pod again later (sync_retry.ts), unless systemk stops or the pod is gone. */
  #scheduleRetry(options?: Parameters<SyncRetry["schedule"]>[0]): void {
    if (!this.#closed && !this.#removed()) this.#retry.schedule(options);
  }

  /** From now on nothing starts, restarts or probes the pod's containers. */
  #beginTermination(): void {
    this.#retry.cancel();
    this.#deadline.cancel();
    this.#lifecycle = "terminating";
    this.#containers.quiesce();
  }

  /** Terminates the pod for deletion: stops its containers, removes its units and files. */
  async #terminate(graceSeconds: number | undefined): Promise<void> {
    if (this.#removed()) return;
    this.#termination = { graceSeconds };
    this.#log.debug(`terminating: grace ${graceSeconds ?? "of the pod"} s`);
    this.#beginTermination();
    await this.#podSync.remove(this.#pod, graceSeconds);
    this.#lifecycle = "terminated";
    this.#kept = false;
    this.#final = undefined;
    await this.#c.onRemoved(this.#uid, this.#pod);
  }

  /**
   * Terminates the pod but keeps it, as the kubelet's eviction by a pod sync handler (the
   * active deadline) or its node shutdown manager: event, every unit stopped within
   * `termination`'s grace period (else the pod's), nothing restarted, phase Failed with
   * `termination`'s reason, message and conditions. Without `termination` (a pod already
   * terminal, or rejected) the units are kept stopped and the status keeps its phase. Runs
   * again on every sync of the kept pod (and after a restart of systemk) to keep its units
   * stopped.
   */
  async #terminateKept(termination?: KeptTermination): Promise<void> {
    if (termination && !this.#final) {
      this.#final = termination;
      const { reason, message } = termination.failure;
      this.#log.debug(`terminating, to be kept ${reason}: ${message}`);
      // After a restart of systemk the pod already says so: the event was given then.
      if ((this.#lastStatus ?? this.#pod.status)?.reason !== reason) {
        this.#c.events.record(this.#pod, { type: "Normal", reason, message });
      }
    }
    if (!this.#kept || this.#lifecycle !== "terminated") this.#beginTermination();
    this.#kept = true;
    this.#failure = undefined;
    // A pod that ended before (no termination now) keeps its ended runs' records.
    await this.#containers.stopAll(
      termination ? { graceSeconds: termination.graceSeconds } : { keepEnded: true },
    );
    await Promise.all(this.#containers.names().map((name) => this.#c.observed.refresh(name)));
    this.#lifecycle = "terminated";
    this.publish();
  }

  /**
   * Whether the pod's active deadline (activeDeadlineSeconds, counted from its startTime) has
   * passed; if not, wakes the pod when it does.
   */
  #deadlinePassed(): boolean {
    if (this.#lifecycle !== "syncing") {
      this.#deadline.cancel();
      return false;
    }
    const status = this.#lastStatus ?? this.#pod.status;
    return this.#deadline.passed(this.#pod, { status, arm: !this.#closed });
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
      this.#scheduleRetry({ fixedDelayMs: TRANSIENT_RETRY_MS });
      return;
    }
    this.#failure = { reason: "SystemkError", message };
    this.#c.events.record(this.#pod, { type: "Warning", reason: "Failed", message });
    this.publish();
    // A pod being deleted waits on its clean-up: retried at the first back-off step, without
    // growing (the kubelet retries a failed pod sync every 10 s, too).
    this.#scheduleRetry(
      this.#lifecycle === "syncing" ? {} : { fixedDelayMs: this.#retry.baseMs },
    );
  }

  /** Recomputes and emits the pod's status, coalescing bursts of signals into one. */
  publish(): void {
    if (this.#publishPending) return;
    this.#publishPending = true;
    queueMicrotask(() => {
      this.#publishPending = false;
      const pod = this.#pod;
      if (this.#removed() || pod.metadata?.deletionTimestamp) return;
      // As the kubelet's status manager, no terminal phase while containers may still run:
      // the reason comes once they are stopped (a DisruptionTarget may say so before).
      const final = this.#lifecycle === "terminated" ? this.#final : undefined;
      const status = this.#podSync.generateStatus(pod, {
        failure: final?.failure ?? this.#failure,
        evicted: final !== undefined && !this.#rejected,
        rejected: this.#rejected,
        conditions: this.#final?.conditions,
        previous: this.#lastStatus,
      });
      this.#lastStatus = status;
      if (!this.#kept && this.#deadlinePassed()) this.#enqueue(() => this.#reconcile());
      this.#c.onStatus(pod, status);
    });
  }

  /** Terminated for deletion: the worker is done. */
  #removed(): boolean {
    return this.#lifecycle === "terminated" && !this.#kept;
  }
}
