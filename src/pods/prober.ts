/**
 * A pod's prober manager (the kubelet's `prober_manager`): runs the probes of each app
 * container's current run (once per InvocationID), keeps their results (readiness, startup)
 * for the status side, and reports a run that failed its liveness or startup probe.
 *
 * @module
 */
import type { V1Container } from "@kubernetes/client-node";
import type { ContainerExec } from "../exec/container.ts";
import { checkProbe } from "../probes/probe.ts";
import {
  type ContainerProbes,
  probeKillGraceSeconds,
  type ProbeKind,
  startContainerProbes,
} from "../probes/worker.ts";
import type { ContainerOverride } from "../status/mod.ts";
import type { PodEventInfo } from "./ports.ts";

/** What probes found about a container: the status side's input. */
export type ProbeResults = Pick<ContainerOverride, "ready" | "started">;

/** What the prober manager is wired to. */
export interface ProberOptions {
  /** Where `httpGet`/`tcpSocket` probes connect by default (the node: host network). */
  host: string;
  /** Runs commands in the container of a unit (exec probes), where possible. */
  exec(unit: string): ContainerExec | undefined;
  /** A result changed: the pod's status is due. */
  onResult(): void;
  /** An Event about a container's probe. */
  onEvent(event: PodEventInfo): void;
  /**
   * The run `invocation` of `unit` failed its liveness or startup probe: kill it within
   * `graceSeconds` (the probe's own, else the pod's) and let the restart manager decide.
   */
  onUnhealthy(unit: string, invocation: string, graceSeconds: number | undefined): void;
}

/** A container's unit as {@link ProberManager.sync} probes it. */
export interface ProbedRun {
  /** The container's spec (its probes). */
  container: V1Container;
  /** The unit's running run (its InvocationID); undefined when it is not running. */
  invocation: string | undefined;
}

/** The probes of one pod's app containers; see the module doc. */
export class ProberManager {
  readonly #o: ProberOptions;
  /** Per app unit name: the probes of its current run. */
  readonly #probes = new Map<string, { invocation: string; handle: ContainerProbes }>();
  /** Per container name: what its probes found. */
  readonly #results = new Map<string, ProbeResults>();

  /** @param options where probes connect and where their results go. */
  constructor(options: ProberOptions) {
    this.#o = options;
  }

  /**
   * Keeps `unit`'s probes in line with its run: a running run (`invocation`) is probed, once
   * per run; without one nothing is, and earlier results are forgotten.
   */
  sync(unit: string, { container, invocation }: ProbedRun): void {
    if (!container.livenessProbe && !container.readinessProbe && !container.startupProbe) return;
    const current = this.#probes.get(unit);
    if (current?.invocation === invocation) return;
    this.stop(unit, container.name);
    if (!invocation) return;
    const results: ProbeResults = {};
    this.#results.set(container.name, results);
    const event = (type: "Normal" | "Warning", reason: string, message: string) =>
      this.#o.onEvent({ type, reason, message, container: container.name });
    const exec = this.#o.exec(unit);
    const handle = startContainerProbes(container, {
      host: this.#o.host,
      listener: {
        ready: (ready) => {
          results.ready = ready;
          this.#o.onResult();
        },
        started: () => {
          results.started = true;
          this.#o.onResult();
        },
        failed: (kind, message) =>
          event("Warning", "Unhealthy", `${kind} probe failed: ${message}`),
        unsupported: (kind, message) =>
          event("Warning", "Unhealthy", `${kind} probe errored: ${message}`),
        unhealthy: (kind: ProbeKind) => {
          event(
            "Normal",
            "Killing",
            `Container ${container.name} failed ${kind.toLowerCase()} probe, will be restarted`,
          );
          this.#o.onUnhealthy(unit, invocation, probeKillGraceSeconds(container, kind));
        },
      },
      attempt: (probe) => checkProbe(probe, { container, host: this.#o.host, exec }),
    });
    this.#probes.set(unit, { invocation, handle });
  }

  /** Whether `invocation` is the run of `unit` being probed. */
  probing(unit: string, invocation: string): boolean {
    return this.#probes.get(unit)?.invocation === invocation;
  }

  /** Per container name: its probes' results. */
  results(): ReadonlyMap<string, ProbeResults> {
    return this.#results;
  }

  /** Stops `unit`'s probes and forgets what they found about `container`. */
  stop(unit: string, container?: string): void {
    this.#probes.get(unit)?.handle.stop();
    this.#probes.delete(unit);
    if (container !== undefined) this.#results.delete(container);
  }

  /** Stops every probe. */
  stopAll(): void {
    this.#probes.forEach((p) => p.handle.stop());
    this.#probes.clear();
  }
}
