/**
 * A pod's containers started and stopped in the kubelet's order, as sequence.ts decides it.
 * Once the pod's units are written as planned, the units the sequence allows are started (each
 * asked once per try: a start may end before its unit runs), again whenever what a sidecar gates
 * may follow (it started: its postStart hook done, its startup probe passed), in a step of the
 * pod's queue. Once the app containers have ended for good (a Job's pod) the pod is complete:
 * nothing restarts any more and its other containers are stopped. Containers are stopped all at
 * once, each with its preStop hook (containers.ts), sidecars after the app containers and the
 * sidecars after them.
 *
 * @module
 */
import type { V1Pod } from "@kubernetes/client-node";
import type { ContainerKind } from "../plan/mod.ts";
import { restartPolicyOf } from "../status/mod.ts";
import type { Log } from "../log/mod.ts";
import type { ContainerLifecycle } from "./containers.ts";
import { hasEnded } from "./crash_loop.ts";
import type { ObservedUnits } from "./observed.ts";
import type { PodUnits } from "./pod_units.ts";
import type { ProbeResults } from "./prober.ts";
import {
  appsCompleted,
  type SequencedUnit,
  sequencedUnit,
  terminationOrder,
  unitsToStart,
} from "./sequence.ts";

/** What a pod's sequencer needs from its pod worker and the pod's containers. */
export interface PodSequencerOptions {
  units: PodUnits;
  observed: ObservedUnits;
  containers: ContainerLifecycle;
  /** What the probes found, by container name (a sidecar's startup probe). */
  probed(): ReadonlyMap<string, ProbeResults>;
  /** The pod as last seen. */
  pod(): V1Pod;
  log: Log;
  /** Runs a step in the pod's queue. */
  enqueue(step: () => Promise<void>): Promise<void>;
  /** Whether containers may (re)start (the pod is syncing). */
  running(): boolean;
  /** The pod's status is due. */
  publish(): void;
  /** An app container started: the pod's retry back-off starts over. */
  onStarted(): void;
  /** The app containers ended for good: nothing restarts any more. */
  onCompleted(): void;
}

/** Options of {@link PodSequencer.stopAll}. */
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

/** The start and stop order of one pod's containers, run; see the module doc. */
export class PodSequencer {
  readonly #o: PodSequencerOptions;
  /** Units asked to start since the last (re)try (a start may end before they run). */
  readonly #asked = new Set<string>();
  /** The units were written as planned once: from then on the sequence may start them. */
  #planned = false;
  /** A step to start what the sequence allows is queued. */
  #advancePending = false;
  /** The pod's app containers ended for good and its other containers are being stopped. */
  #completing = false;

  /** @param options the pod's units and containers, and the pod worker's hooks. */
  constructor(options: PodSequencerOptions) {
    this.#o = options;
  }

  /** The units were written as planned (`changed`: anew): starts what the sequence allows. */
  async planned(changed: readonly string[]): Promise<void> {
    for (const unit of changed) this.#asked.delete(unit);
    this.#planned = true;
    await this.#startDue();
  }

  /** The pod will be tried again from the start: its units may be started again. */
  retrying(): void {
    this.#asked.clear();
  }

  /** The units as the sequence sees them (sequence.ts). */
  sequenced(): SequencedUnit[] {
    const { observed, containers } = this.#o;
    const pod = this.#o.pod();
    const probed = this.#o.probed();
    return this.#o.units.specUnits().map(({ name, container, kind }) =>
      sequencedUnit({
        name,
        kind,
        props: observed.get(name),
        started: !containers.hookRunning(name) &&
          (!container.startupProbe || probed.get(container.name)?.started === true),
        restartPolicy: restartPolicyOf(pod, kind),
      })
    );
  }

  /** The app containers ended for good: nothing restarts any more. */
  done(): boolean {
    return this.#completing || appsCompleted(this.sequenced());
  }

  /** Starts what the sequence allows now, in a step of the pod's queue (coalesced). */
  advance(): void {
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
  completeIfDone(): void {
    if (this.#completing || !this.#o.running() || !appsCompleted(this.sequenced())) return;
    this.#completing = true;
    this.#o.onCompleted();
    this.#o.log.debug("app containers ended for good: stopping the pod's other containers");
    this.#o.enqueue(() => this.stopAll({ only: (kind) => kind !== "app" && kind !== "init" }));
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
    const units = this.sequenced();
    const kinds = new Map(units.map((u) => [u.name, u.kind]));
    // Units whose container left the spec have no turn to wait for.
    let names = this.#o.units.names().filter((name) => only(kinds.get(name) ?? "app"));
    if (options.keepEnded) {
      // An adopted unit's state is read first: it may have ended while systemk was away.
      const states = await Promise.all(names.map((name) => this.#o.observed.current(name)));
      names = names.filter((_, i) => states[i].InvocationID === "" || !hasEnded(states[i]));
    }
    await this.#o.containers.stopAll(names, {
      pod: this.#o.pod(),
      graceSeconds,
      order: terminationOrder(units),
      container: (unit) => this.#o.units.restartable(unit)?.container,
    });
  }

  /**
   * Starts the units the sequence allows now (sequence.ts) that were not asked to start since
   * the last (re)try. Units that already ran are left to the restart manager: starting a
   * container that exited under `restartPolicy: Never` again would be wrong.
   */
  async #startDue(): Promise<void> {
    const due = unitsToStart(this.sequenced()).filter((name) => !this.#asked.has(name));
    if (due.length === 0) return;
    due.forEach((name) => this.#asked.add(name));
    this.#o.log.debug(`starting ${due.join(", ")}`);
    await Promise.all(due.map(async (unit) => {
      const result = await this.start(unit);
      if (result === "done" && this.#o.units.specUnit(unit)?.kind === "app") this.#o.onStarted();
      await this.#o.observed.refresh(unit);
    }));
    this.#o.publish();
  }

  /**
   * Starts a container's unit (containers.ts: its postStart hook, an Event).
   *
   * @param restarted a new run of a container that ran before (restarts.ts).
   */
  start(unit: string, restarted?: boolean): Promise<string> {
    return this.#o.containers.start(unit, {
      container: this.#o.units.refs.get(unit)!.container,
      spec: this.#o.units.restartable(unit)?.container,
      restarted,
    });
  }
}
