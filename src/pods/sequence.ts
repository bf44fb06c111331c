/**
 * The order of a pod's containers, as the kubelet's `computeInitContainerActions` and
 * `kuberuntime_termination_order.go` keep it, in pure decisions over what the pod worker sees of
 * each unit.
 *
 * Starting: regular init containers are pulled in by systemd (each `Requires=` the one before,
 * oneshot), so the worker only starts the units that gate what follows: the next sidecar once
 * what precedes it is done, the app units once every init container is done or started. A
 * sidecar counts as done once it has started (running, its postStart hook done, its startup
 * probe passed); regular init containers once they exited 0. Once an app container has run the
 * pod is initialized: regular init containers never run again, sidecars and app containers are
 * kept running. Ephemeral containers start at once, initialized or not. Once every app
 * container has ended for good (its restartPolicy will not restart it), nothing starts any more:
 * the pod is done, and its sidecars are stopped.
 *
 * Stopping: every container is stopped at once (preStop hooks included), except that a sidecar
 * is sent SIGTERM only after the app containers and every later sidecar have stopped, or its
 * grace period ran out meanwhile.
 *
 * @module
 */
import type { ContainerKind } from "../plan/mod.ts";
import { observeUnit, type RestartPolicy, willRestart } from "../status/mod.ts";
import type { UnitProperties } from "../unit/properties.ts";

/** A container's unit as the sequence sees it. */
export interface SequencedUnit {
  name: string;
  kind: ContainerKind;
  /**
   * - `fresh`: never run (or its run forgotten);
   * - `idle`: not running, a run before (a regular init container reset for its retry);
   * - `running`: has processes, not yet started (sidecars: startup probe or postStart hook
   *   pending; regular init containers: still running);
   * - `started`: running and started;
   * - `succeeded` / `failed`: its run ended with exit 0 / otherwise;
   */
  state: "fresh" | "idle" | "running" | "started" | "succeeded" | "failed";
  /** An app container that ended and will not be restarted under its restartPolicy. */
  endedForGood?: boolean;
}

/** What the pod worker sees of a unit. */
export interface SeenUnit {
  name: string;
  kind: ContainerKind;
  /** The unit's properties; absent: never read. */
  props?: UnitProperties;
  /** A running sidecar or app container counts as started (postStart hook, startup probe). */
  started: boolean;
  /** The restartPolicy of its container. */
  restartPolicy: RestartPolicy;
}

/**
 * A unit as the sequence sees it: fresh until it has run (or systemd forgot its run), idle
 * (a regular init container reset for its retry), running or started, else how its run ended
 * and, for an app container, whether its restartPolicy ends it for good.
 *
 * @param unit What the pod worker sees of it.
 * @return The unit's {@link SequencedUnit}.
 *
 * @example Usage
 * ```ts
 * import { sequencedUnit } from "./sequence.ts";
 * import assert from "node:assert/strict";
 * const app = { name: "app", kind: "app" as const, started: false };
 * assert.equal(sequencedUnit({ ...app, restartPolicy: "Always" }).state, "fresh");
 * ```
 */
export function sequencedUnit(unit: SeenUnit): SequencedUnit {
  const { name, kind, props } = unit;
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
    return sequenced(kind !== "init" && unit.started ? "started" : "running");
  }
  const { exitCode } = observation.terminated;
  return sequenced(
    exitCode === 0 ? "succeeded" : "failed",
    !willRestart(unit.restartPolicy, exitCode),
  );
}

/**
 * Whether the pod's app containers have all ended for good: the pod is done (a Job's pod with
 * sidecars completes then), and its sidecars are stopped, not restarted.
 *
 * @param units The pod's units in spec order.
 * @return True when every app container ended and none will be restarted.
 *
 * @example Usage
 * ```ts
 * import { appsCompleted } from "./sequence.ts";
 * import assert from "node:assert/strict";
 * assert.equal(appsCompleted([
 *   { name: "proxy", kind: "sidecar", state: "started" },
 *   { name: "app", kind: "app", state: "succeeded", endedForGood: true },
 * ]), true);
 * ```
 */
export function appsCompleted(units: readonly SequencedUnit[]): boolean {
  const apps = units.filter((u) => u.kind === "app");
  return apps.length > 0 && apps.every((u) => u.endedForGood === true);
}

/**
 * The units to start now, in spec order; units already started or running are left to their
 * restart policy, regular init containers to systemd's `Requires=` chain.
 *
 * @param units The pod's units in spec order (init, app, ephemeral).
 * @return The names of the fresh units the worker should start.
 *
 * @example Usage
 * ```ts
 * import { unitsToStart } from "./sequence.ts";
 * import assert from "node:assert/strict";
 * const pod = (proxy: "fresh" | "running" | "started") => [
 *   { name: "setup", kind: "init" as const, state: "succeeded" as const },
 *   { name: "proxy", kind: "sidecar" as const, state: proxy },
 *   { name: "app", kind: "app" as const, state: "fresh" as const },
 * ];
 * assert.deepEqual(unitsToStart(pod("fresh")), ["proxy"]);
 * assert.deepEqual(unitsToStart(pod("running")), []);
 * assert.deepEqual(unitsToStart(pod("started")), ["app"]);
 * ```
 */
export function unitsToStart(units: readonly SequencedUnit[]): string[] {
  const fresh = (u: SequencedUnit) => u.state === "fresh";
  const names = (list: SequencedUnit[]) => list.filter(fresh).map((u) => u.name);
  const ephemeral = units.filter((u) => u.kind === "ephemeral");
  if (appsCompleted(units)) return names(ephemeral);
  const inits = units.filter((u) => u.kind === "init" || u.kind === "sidecar");
  const apps = units.filter((u) => u.kind === "app");
  // An app container has run: the pod was initialized; keep sidecars and apps running.
  if (apps.some((u) => !fresh(u))) {
    return names([...inits.filter((u) => u.kind === "sidecar"), ...apps, ...ephemeral]);
  }
  // The last init container that has begun decides, as the kubelet walks them backwards.
  const last = inits.findLastIndex((u) =>
    u.kind === "sidecar" ? !fresh(u) : u.state !== "fresh" && u.state !== "idle"
  );
  const gate = inits[last];
  const done = !gate || gate.state === (gate.kind === "sidecar" ? "started" : "succeeded");
  if (!done) return names(ephemeral);
  const next = inits.slice(last + 1).find((u) => u.kind === "sidecar");
  return names([...(next ? [next] : apps), ...ephemeral]);
}

/**
 * The kubelet's termination order: for each unit, the units whose stop it waits for before its
 * SIGTERM. Sidecars wait for every app container and for the sidecar after them (which waits
 * for the next, and so on: reverse spec order); nothing else waits.
 *
 * @param units The pod's units in spec order.
 * @return Per unit name, the names it waits for (absent: none).
 *
 * @example Usage
 * ```ts
 * import { terminationOrder } from "./sequence.ts";
 * import assert from "node:assert/strict";
 * const order = terminationOrder([
 *   { name: "a", kind: "sidecar", state: "started" },
 *   { name: "b", kind: "sidecar", state: "started" },
 *   { name: "app", kind: "app", state: "started" },
 * ]);
 * assert.deepEqual(order.get("a"), ["app", "b"]);
 * assert.deepEqual(order.get("b"), ["app"]);
 * assert.equal(order.get("app"), undefined);
 * ```
 */
export function terminationOrder(units: readonly SequencedUnit[]): Map<string, string[]> {
  const apps = units.filter((u) => u.kind === "app").map((u) => u.name);
  const order = new Map<string, string[]>();
  let later: string | undefined;
  for (const unit of [...units].reverse()) {
    if (unit.kind !== "sidecar") continue;
    order.set(unit.name, [...apps, ...(later ? [later] : [])]);
    later = unit.name;
  }
  return order;
}
