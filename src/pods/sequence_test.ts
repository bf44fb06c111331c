import assert from "node:assert/strict";
import {
  appsCompleted,
  type SequencedUnit,
  sequencedUnit,
  terminationOrder,
  unitsToStart,
} from "./sequence.ts";
import { exited, invocation, neverStarted, running } from "../status/_testing.ts";

type State = SequencedUnit["state"];

/** A pod: `setup` (init), `proxy` (sidecar), `migrate` (init), `logs` (sidecar), `app`, `dbg`. */
function pod(states: Partial<Record<string, State>>, appEnded = false): SequencedUnit[] {
  const unit = (name: string, kind: SequencedUnit["kind"]): SequencedUnit => ({
    name,
    kind,
    state: states[name] ?? "fresh",
    ...(kind === "app" ? { endedForGood: appEnded } : {}),
  });
  return [
    unit("setup", "init"),
    unit("proxy", "sidecar"),
    unit("migrate", "init"),
    unit("logs", "sidecar"),
    unit("app", "app"),
    unit("dbg", "ephemeral"),
  ];
}

Deno.test("sequence: each sidecar gates what follows it until it has started", () => {
  const table: [Partial<Record<string, State>>, string[]][] = [
    // Nothing yet: the first sidecar (systemd pulls `setup` in first); the debug container too.
    [{}, ["proxy", "dbg"]],
    // `setup` runs or failed (its retry is the init back-off's): wait.
    [{ setup: "running" }, ["dbg"]],
    [{ setup: "failed" }, ["dbg"]],
    // Reset for its retry: as if nothing ran.
    [{ setup: "idle" }, ["proxy", "dbg"]],
    [{ setup: "succeeded" }, ["proxy", "dbg"]],
    // The sidecar runs but has not started (startup probe, postStart hook): wait.
    [{ setup: "succeeded", proxy: "running" }, ["dbg"]],
    // It ended before it started: its restart is the crash-loop back-off's; wait.
    [{ setup: "succeeded", proxy: "failed" }, ["dbg"]],
    // Started: the next sidecar (pulling `migrate` in before it).
    [{ setup: "succeeded", proxy: "started" }, ["logs", "dbg"]],
    [{ setup: "succeeded", proxy: "started", migrate: "running" }, ["dbg"]],
    [{ setup: "succeeded", proxy: "started", migrate: "succeeded", logs: "running" }, ["dbg"]],
    // Every sidecar started: the app containers.
    [{ setup: "succeeded", proxy: "started", migrate: "succeeded", logs: "started" }, [
      "app",
      "dbg",
    ]],
    // Already asked for: nothing fresh to start.
    [{ proxy: "started", logs: "started", app: "running", dbg: "succeeded" }, []],
  ];
  for (const [states, want] of table) {
    assert.deepEqual(unitsToStart(pod(states)), want, JSON.stringify(states));
  }
});

Deno.test("sequence: once an app container ran, sidecars and apps are kept, init never again", () => {
  // A sidecar whose unit was replaced (a new image) starts again at once; regular init
  // containers whose runs systemd forgot stay forgotten.
  assert.deepEqual(unitsToStart(pod({ app: "started" })), ["proxy", "logs", "dbg"]);
  assert.deepEqual(unitsToStart(pod({ app: "failed", proxy: "started" })), ["logs", "dbg"]);
});

Deno.test("sequence: pods without sidecars start their app units at once", () => {
  const units: SequencedUnit[] = [
    { name: "setup", kind: "init", state: "fresh" },
    { name: "web", kind: "app", state: "fresh" },
    { name: "api", kind: "app", state: "fresh" },
  ];
  assert.deepEqual(unitsToStart(units), ["web", "api"]);
  assert.deepEqual(unitsToStart(units.slice(1)), ["web", "api"]);
});

Deno.test("sequence: app containers ended for good complete the pod; only debugging starts", () => {
  const states = { setup: "succeeded", proxy: "started", migrate: "succeeded", app: "succeeded" };
  const done = pod(states as Record<string, State>, true);
  assert.equal(appsCompleted(done), true);
  assert.deepEqual(unitsToStart(done), ["dbg"], "the stopped sidecar `logs` is not started");
  assert.equal(appsCompleted(pod(states as Record<string, State>, false)), false);
  assert.equal(appsCompleted([{ name: "s", kind: "sidecar", state: "started" }]), false);
});

Deno.test("sequence: sidecars stop after the app containers, in reverse order", () => {
  const order = terminationOrder([
    ...pod({}),
    { name: "worker", kind: "app", state: "started" },
  ]);
  assert.deepEqual(Object.fromEntries(order), {
    logs: ["app", "worker"],
    proxy: ["app", "worker", "logs"],
  });
});

Deno.test("sequence: a unit's state from its properties, its hooks and probes, its policy", () => {
  type Seen = Parameters<typeof sequencedUnit>[0];
  const seen = (kind: Seen["kind"], props: Seen["props"], extra: Partial<Seen> = {}) => {
    const unit = sequencedUnit({
      name: "u",
      kind,
      props,
      started: true,
      restartPolicy: "Always",
      ...extra,
    });
    return [unit.state, unit.endedForGood];
  };
  assert.deepEqual(seen("app", undefined), ["fresh", false]);
  assert.deepEqual(seen("sidecar", neverStarted()), ["fresh", undefined]);
  // A regular init container reset for its retry: inactive, its run known.
  const reset = exited(1, { ActiveState: "inactive", InvocationID: invocation("1") });
  assert.deepEqual(seen("init", reset), ["idle", undefined]);
  assert.deepEqual(seen("init", running()), ["running", undefined]);
  assert.deepEqual(seen("sidecar", running(), { started: false }), ["running", undefined]);
  assert.deepEqual(seen("sidecar", running()), ["started", undefined]);
  const onFailure = { restartPolicy: "OnFailure" } as const;
  assert.deepEqual(seen("app", exited(0), onFailure), ["succeeded", true]);
  assert.deepEqual(seen("app", exited(1), onFailure), ["failed", false]);
  assert.deepEqual(seen("app", exited(1), { restartPolicy: "Never" }), ["failed", true]);
});
