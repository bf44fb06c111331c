/**
 * Probe workers like the kubelet's: one timer per probe, a result that flips only after
 * `successThreshold` consecutive successes or `failureThreshold` consecutive failures, and the
 * startup probe gating the other two.
 *
 * @module
 */
import type { V1Container, V1Probe } from "@kubernetes/client-node";
import { MINIMUM_GRACE_SECONDS } from "../plan/mod.ts";
import { checkProbe, UnsupportedProbe } from "./probe.ts";
import type { ProbeOutcome } from "./types.ts";

/** The three probes, named as the kubelet's events name them. */
export type ProbeKind = "Liveness" | "Readiness" | "Startup";

/** A probe's reported result, and the run of equal outcomes that may change it. */
export interface ProbeResult {
  /** Reported result; undefined while unknown (a startup probe before its verdict). */
  ok?: boolean;
  /** The latest outcome and how many times in a row it came. */
  last?: boolean;
  run: number;
}

/**
 * A probe's result before its first attempt: liveness succeeds (a container is alive until
 * shown otherwise), readiness fails until shown otherwise, startup is unknown.
 *
 * @param kind The probe.
 * @return The initial result.
 *
 * @example Usage
 * ```ts
 * import { initialResult } from "./worker.ts";
 * import assert from "node:assert/strict";
 * assert.equal(initialResult("Readiness").ok, false);
 * ```
 */
export function initialResult(kind: ProbeKind): ProbeResult {
  return { ok: kind === "Startup" ? undefined : kind === "Liveness", run: 0 };
}

/** One probe attempt, as {@link applyOutcome} counts it. */
export interface ProbeAttempt {
  /** The attempt succeeded. */
  ok: boolean;
  /** The probe's spec: its `successThreshold` and `failureThreshold`. */
  probe: V1Probe;
}

/**
 * Applies one attempt's outcome, as the kubelet's worker does: the reported result changes once
 * `successThreshold` (default 1) successes or `failureThreshold` (default 3) failures came in a
 * row.
 *
 * @param result The current result.
 * @param attempt Whether the attempt succeeded, and the probe's spec (thresholds).
 * @return The new result.
 *
 * @example Usage
 * ```ts
 * import { applyOutcome } from "./worker.ts";
 * import assert from "node:assert/strict";
 * const probe = { failureThreshold: 2 };
 * const once = applyOutcome({ ok: true, run: 0 }, { ok: false, probe });
 * assert.equal(once.ok, true);
 * assert.equal(applyOutcome(once, { ok: false, probe }).ok, false);
 * ```
 */
export function applyOutcome(result: ProbeResult, attempt: ProbeAttempt): ProbeResult {
  const { ok, probe } = attempt;
  const run = result.last === ok ? result.run + 1 : 1;
  const threshold = ok ? probe.successThreshold ?? 1 : probe.failureThreshold ?? 3;
  return { ok: run >= threshold ? ok : result.ok, last: ok, run };
}

/**
 * The grace period of the kill after a liveness or startup probe failed, as the kubelet's
 * `setTerminationGracePeriod`: the probe's own `terminationGracePeriodSeconds` when set (at
 * least the kubelet's minimum of 2 s), else undefined: the pod's, which the unit's
 * `TimeoutStopSec=` holds.
 *
 * @param container The container's spec.
 * @param kind The probe that failed.
 * @return Seconds, or undefined for the pod's grace period.
 *
 * @example Usage
 * ```ts
 * import { probeKillGraceSeconds } from "./worker.ts";
 * import assert from "node:assert/strict";
 * const container = { name: "c", livenessProbe: { terminationGracePeriodSeconds: 5 } };
 * assert.equal(probeKillGraceSeconds(container, "Liveness"), 5);
 * assert.equal(probeKillGraceSeconds(container, "Startup"), undefined);
 * ```
 */
export function probeKillGraceSeconds(
  container: V1Container,
  kind: ProbeKind,
): number | undefined {
  const probe = kind === "Liveness"
    ? container.livenessProbe
    : kind === "Startup"
    ? container.startupProbe
    : undefined;
  const grace = probe?.terminationGracePeriodSeconds;
  return grace === undefined || grace === null ? undefined : Math.max(grace, MINIMUM_GRACE_SECONDS);
}

/** What a container's probes report to the runtime. */
export interface ProbeListener {
  /** The readiness result changed. */
  ready(ready: boolean): void;
  /** The startup probe succeeded. */
  started(): void;
  /** Liveness or startup failed `failureThreshold` times: the container must be killed. */
  unhealthy(kind: ProbeKind, message: string): void;
  /** One attempt failed (for the `Unhealthy` event). */
  failed(kind: ProbeKind, message: string): void;
  /** The probe cannot run at all. */
  unsupported(kind: ProbeKind, message: string): void;
}

/** Options of {@link startContainerProbes}. */
export interface ContainerProbesOptions {
  /** Where `httpGet`/`tcpSocket` probes connect by default (the node: host network). */
  host: string;
  /** Receives results. */
  listener: ProbeListener;
  /** One attempt of a probe (defaults to `checkProbe`; tests may replace it). */
  attempt?: (probe: V1Probe) => Promise<ProbeOutcome>;
}

/** Running probes of one container run; `stop` ends every timer. */
export interface ContainerProbes {
  stop(): void;
}

/**
 * Starts the probes of one container run: the startup probe first, then liveness and readiness
 * once it succeeded (at once without a startup probe).
 *
 * @param container The container's spec.
 * @param options Where probes connect, who hears the results, and how one attempt is made.
 * @return A handle that stops every probe.
 *
 * @example Usage
 * ```ts ignore
 * import { startContainerProbes } from "./worker.ts";
 * const probes = startContainerProbes(container, { host: "127.0.0.1", listener });
 * probes.stop();
 * ```
 */
export function startContainerProbes(
  container: V1Container,
  options: ContainerProbesOptions,
): ContainerProbes {
  const { host, listener } = options;
  const attempt = options.attempt ?? ((p: V1Probe) => checkProbe(p, { container, host }));
  const timers = new Set<ReturnType<typeof setTimeout>>();
  let stopped = false;

  /** Runs one probe; `onResult` hears each change and returns false to end the probe. */
  const run = (
    kind: ProbeKind,
    probe: V1Probe,
    onResult: (ok: boolean, message: string) => boolean,
  ) => {
    let result = initialResult(kind);
    const schedule = (ms: number) => {
      const timer = setTimeout(async () => {
        timers.delete(timer);
        if (stopped) return;
        let outcome: ProbeOutcome;
        try {
          outcome = await attempt(probe);
        } catch (e) {
          if (!(e instanceof UnsupportedProbe)) throw e;
          return listener.unsupported(kind, e.message);
        }
        if (stopped) return;
        if (!outcome.ok) listener.failed(kind, outcome.message ?? "");
        const next = applyOutcome(result, { ok: outcome.ok, probe });
        const flipped = next.ok !== result.ok;
        result = next;
        if (flipped && !onResult(outcome.ok, outcome.message ?? "")) return;
        if (!stopped) schedule((probe.periodSeconds ?? 10) * 1000);
      }, ms);
      timers.add(timer);
    };
    schedule((probe.initialDelaySeconds ?? 0) * 1000);
  };

  const runOthers = () => {
    if (container.readinessProbe) {
      run("Readiness", container.readinessProbe, (ok) => (listener.ready(ok), true));
    }
    if (container.livenessProbe) {
      run("Liveness", container.livenessProbe, (ok, message) => {
        if (!ok) listener.unhealthy("Liveness", message);
        return ok;
      });
    }
  };
  if (container.startupProbe) {
    // The startup probe ends with its verdict: success starts the others, failure kills.
    run("Startup", container.startupProbe, (ok, message) => {
      if (!ok) {
        listener.unhealthy("Startup", message);
      } else {
        listener.started();
        runOthers();
      }
      return false;
    });
  } else {
    runOthers();
  }
  return {
    stop() {
      stopped = true;
      timers.forEach(clearTimeout);
      timers.clear();
    },
  };
}
