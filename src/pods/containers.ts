/**
 * Container lifecycle, as the kubelet's `kuberuntime_container` starts and kills containers:
 * a container's unit is started (a `Started` or `Failed` Event) and its postStart hook runs
 * beside it; a container is stopped with its preStop hook first, within the grace period, then
 * (a sidecar) its turn, then SIGTERM with what is left of it (at least 2 s), then SIGKILL. Until
 * a postStart hook is done the container is not reported running (nor probed). A pod's
 * containers are stopped all at once, each waiting for its turn in the termination order.
 *
 * @module
 */
import type { V1Container, V1Pod } from "@kubernetes/client-node";
import type { ContainerExec } from "../exec/container.ts";
import { DEFAULT_GRACE_SECONDS, MINIMUM_GRACE_SECONDS } from "../plan/mod.ts";
import type { UnitProperties } from "../unit/properties.ts";
import { log } from "../log/mod.ts";
import { runHook } from "./hooks.ts";
import type { ObservedUnits } from "./observed.ts";
import type { PodEventInfo, UnitManager } from "./ports.ts";

/** A running postStart hook: how to end it, and the container's run it is for (once known). */
interface PostStart {
  controller: AbortController;
  invocation?: string;
}

/** What a pod's container lifecycle is wired to. */
export interface ContainerLifecycleOptions {
  units: UnitManager;
  observed: ObservedUnits;
  /** Where `httpGet` hooks connect by default (the node: host network). */
  host: string;
  /** Runs commands in the container of a unit (exec hooks), where possible. */
  exec(unit: string): ContainerExec | undefined;
  /** An Event about the pod's container. */
  onEvent(event: PodEventInfo): void;
  /**
   * The postStart hook of `unit`'s run `invocation` finished: on success the container now
   * counts as running; on failure the run must be killed (it restarts per restartPolicy).
   */
  onPostStart(unit: string, invocation: string, ok: boolean): void;
}

/** Which container a unit runs, to start it. */
export interface StartOptions {
  /** The container's name (Events). */
  container: string;
  /** The spec of an app container or sidecar (its postStart hook); absent for the others. */
  spec?: V1Container;
  /**
   * A new run of a container that ran before: a start that fails for a dependency is reported
   * too (else that is the failed init container's to report).
   */
  restarted?: boolean;
}

/** How to stop one container. */
export interface StopOptions {
  pod: V1Pod;
  /** The spec of an app container or sidecar (its preStop hook); absent for the others. */
  container?: V1Container;
  /** Shortens the pod's `terminationGracePeriodSeconds` (deletion with a grace period). */
  graceSeconds?: number;
  /**
   * The container's turn (a sidecar's: the containers it stops after have stopped): SIGTERM
   * waits for it, within the grace period left after the preStop hook.
   */
  turn?: Promise<unknown>;
}

/** How to stop several containers of a pod. */
export interface StopContainersOptions extends Pick<StopOptions, "pod" | "graceSeconds"> {
  /** Per unit, the units whose stop it waits for (sequence.ts: `terminationOrder`). */
  order: ReadonlyMap<string, readonly string[]>;
  /** The spec of the app container or sidecar that `unit` runs (its preStop hook). */
  container(unit: string): V1Container | undefined;
}

/** Starts and stops the containers of one pod; see the module doc. */
export class ContainerLifecycle {
  readonly #o: ContainerLifecycleOptions;
  /** Per app unit name: its running postStart hook. */
  readonly #postStarts = new Map<string, PostStart>();

  /** @param options the units, the observed state and where hooks and events go. */
  constructor(options: ContainerLifecycleOptions) {
    this.#o = options;
  }

  /** Whether `unit`'s postStart hook still runs (the container is not running yet). */
  hookRunning(unit: string): boolean {
    return this.#postStarts.has(unit);
  }

  /**
   * Starts a container's unit and says how that went in an Event; once it started, the
   * container's postStart hook runs beside it (never in the pod's queue, so a hanging hook
   * blocks neither deletion nor other steps).
   *
   * @return The start job's result.
   */
  async start(unit: string, options: StartOptions): Promise<string> {
    const result = await this.#start(unit, options.spec);
    const { container } = options;
    if (result === "done") {
      this.#o.onEvent({
        type: "Normal",
        reason: "Started",
        message: `Started unit ${unit}`,
        container,
      });
    } else if (options.restarted || result !== "dependency") {
      this.#o.onEvent({
        type: "Warning",
        reason: "Failed",
        message: `Starting unit ${unit} failed: ${result}`,
        container,
      });
    }
    return result;
  }

  /** Starts a container's unit, then its postStart hook (`container`'s, if any). */
  async #start(unit: string, container: V1Container | undefined): Promise<string> {
    const hook = container?.lifecycle?.postStart;
    if (!container || !hook) return await this.#o.units.start(unit);
    const postStart: PostStart = { controller: new AbortController() };
    const controller = postStart.controller;
    // Set before the start, so no status shows the container running before the hook is done.
    this.#postStarts.set(unit, postStart);
    const result = await this.#o.units.start(unit).catch((e) => {
      this.#postStarts.delete(unit);
      throw e;
    });
    if (result !== "done") {
      this.#postStarts.delete(unit);
      return result;
    }
    const invocation = (await this.#o.units.properties(unit)).InvocationID;
    postStart.invocation = invocation;
    void runHook(hook, {
      container,
      host: this.#o.host,
      exec: this.#o.exec(unit),
      signal: controller.signal,
    }).then((outcome) => {
      // Stopped meanwhile (or systemk is closing): the hook's end means nothing.
      if (controller.signal.aborted || this.#postStarts.get(unit) !== postStart) return;
      this.#postStarts.delete(unit);
      if (!outcome.ok) {
        log.warn(`postStart hook of ${unit} failed: ${outcome.message}`);
        // The event leaves the message out, as the kubelet's: it may hold Secret data.
        this.#o.onEvent({
          type: "Warning",
          reason: "FailedPostStartHook",
          message: "PostStartHook failed",
          container: container.name,
        });
      }
      this.#o.onPostStart(unit, invocation, outcome.ok);
    });
    return result;
  }

  /** A unit's run ended: a postStart hook still running for that run is moot. */
  runEnded(unit: string, props: UnitProperties): void {
    const postStart = this.#postStarts.get(unit);
    if (
      postStart?.invocation === props.InvocationID &&
      ["inactive", "failed", "deactivating"].includes(props.ActiveState)
    ) {
      postStart.controller.abort();
      this.#postStarts.delete(unit);
    }
  }

  /**
   * Stops a container as the kubelet kills one: a running container's preStop hook first,
   * within the grace period (`graceSeconds`, else the pod's `terminationGracePeriodSeconds`),
   * then its turn (if it has one to wait for), then SIGTERM with what is left of the grace
   * period (at least 2 s), then SIGKILL.
   */
  async stop(unit: string, options: StopOptions): Promise<void> {
    this.forget(unit);
    const { container, graceSeconds, turn } = options;
    const hook = container?.lifecycle?.preStop;
    const grace = graceSeconds ?? options.pod.spec?.terminationGracePeriodSeconds ??
      DEFAULT_GRACE_SECONDS;
    const runsHook = container !== undefined && hook !== undefined && grace > 0 &&
      this.#o.observed.get(unit)?.SubState === "running";
    if (!runsHook && !turn) return await stopUnit(this.#o.units, unit, { graceSeconds });
    const started = performance.now();
    const used = () => (performance.now() - started) / 1000;
    if (runsHook) {
      const deadline = AbortSignal.timeout(grace * 1000);
      const outcome = await runHook(hook, {
        container,
        host: this.#o.host,
        exec: this.#o.exec(unit),
        signal: deadline,
        timeoutMs: grace * 1000,
      });
      if (deadline.aborted) {
        log.warn(`preStop hook of ${unit} did not finish in ${grace} s`);
      } else if (!outcome.ok) {
        log.warn(`preStop hook of ${unit} failed: ${outcome.message}`);
        this.#o.onEvent({
          type: "Warning",
          reason: "FailedPreStopHook",
          message: "PreStopHook failed",
          container: container.name,
        });
      }
    }
    if (turn && grace - used() > 0) {
      let timer: ReturnType<typeof setTimeout> | undefined;
      const left = new Promise((resolve) => timer = setTimeout(resolve, (grace - used()) * 1000));
      await Promise.race([turn, left]).finally(() => clearTimeout(timer));
    }
    await stopUnit(this.#o.units, unit, {
      graceSeconds: Math.max(grace - used(), MINIMUM_GRACE_SECONDS),
    });
  }

  /**
   * Stops `units` as the kubelet kills a pod's containers: all at once, each as {@link stop}
   * does, a unit with a turn sent SIGTERM once the units of `units` it waits for have stopped.
   */
  async stopAll(units: readonly string[], options: StopContainersOptions): Promise<void> {
    const { pod, graceSeconds, order } = options;
    const stopped = new Map<string, Promise<void>>();
    const stopping = (unit: string): Promise<void> => {
      let stop = stopped.get(unit);
      if (stop) return stop;
      const waits = (order.get(unit) ?? []).filter((other) => units.includes(other));
      stop = this.stop(unit, {
        pod,
        container: options.container(unit),
        graceSeconds,
        turn: waits.length ? Promise.all(waits.map(stopping)) : undefined,
      });
      stopped.set(unit, stop);
      return stop;
    };
    await Promise.all(units.map(stopping));
  }

  /** Ends `unit`'s postStart hook, if one runs (the unit is stopped or removed). */
  forget(unit: string): void {
    this.#postStarts.get(unit)?.controller.abort();
    this.#postStarts.delete(unit);
  }

  /** Ends every running postStart hook (the pod terminates, or systemk stops). */
  abortAll(): void {
    this.#postStarts.forEach((hook) => hook.controller.abort());
    this.#postStarts.clear();
  }
}

/**
 * Stops a unit; a grace period shorter than the unit's own ends in SIGKILL at its deadline.
 *
 * @param options `graceSeconds` absent: the unit's own stop timeout (the pod's grace period,
 *   as planned).
 */
export async function stopUnit(
  units: Pick<UnitManager, "stop" | "kill">,
  unit: string,
  options: { graceSeconds?: number } = {},
): Promise<void> {
  const { graceSeconds } = options;
  const timer = graceSeconds === undefined
    ? undefined
    : setTimeout(() => units.kill(unit, 9).catch(() => {}), graceSeconds * 1000);
  try {
    await units.stop(unit);
  } finally {
    clearTimeout(timer);
  }
}
