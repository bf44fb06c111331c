import assert from "node:assert/strict";
import type { Readiness } from "../kube/node.ts";
import { RuntimeHealth } from "./health.ts";

/** A health checker over switches the test flips. */
function switched() {
  const state = {
    systemd: true as boolean | "hangs",
    stateDir: undefined as string | undefined,
    stale: [] as string[],
  };
  const changes: Readiness[] = [];
  const health = new RuntimeHealth({
    pingSystemd: () =>
      state.systemd === "hangs"
        ? new Promise(() => {})
        : state.systemd
        ? Promise.resolve("252")
        : Promise.reject(new Error("org.freedesktop.DBus.Error.NoServer")),
    stateDirProblem: () => Promise.resolve(state.stateDir),
    staleUnits: () => Promise.resolve(state.stale),
    onChange: (r) => changes.push(r),
    pingTimeoutMs: 20,
  });
  return { state, changes, health };
}

Deno.test("health: systemd not answering (failing or hanging) makes the node not ready", async () => {
  const { state, changes, health } = switched();
  assert.deepEqual(await health.check(), { ready: true });
  assert.equal(changes.length, 0, "no change, no report");
  state.systemd = false;
  const down = await health.check();
  assert.equal(down.ready, false);
  assert.match(down.message!, /container runtime is down: systemd does not answer over D-Bus/);
  assert.deepEqual(health.readiness(), down);
  state.systemd = "hangs";
  assert.equal((await health.check()).ready, false);
  state.systemd = true;
  assert.deepEqual(await health.check(), { ready: true });
  assert.deepEqual(changes.map((c) => c.ready), [false, true]);
});

Deno.test("health: an unwritable state directory makes the node not ready, with its message", async () => {
  const { state, health } = switched();
  state.stateDir = "the state directory /run/systemk is not writable (EROFS)";
  assert.deepEqual(await health.check(), { ready: false, message: state.stateDir });
  state.stateDir = undefined;
  assert.deepEqual(await health.check(), { ready: true });
});

Deno.test("health: a unit stale at two checks in a row means signals are not arriving", async () => {
  const { state, health } = switched();
  state.stale = ["systemk.default.web.c.service is failed in systemd, active as last heard"];
  // Once may be a signal on its way.
  assert.deepEqual(await health.check(), { ready: true });
  const lost = await health.check();
  assert.equal(lost.ready, false);
  assert.match(lost.message!, /unit change signals are not arriving: systemk\.default\.web\.c/);
  // A different unit stale once: fine again.
  state.stale = ["systemk.default.db.c.service is inactive in systemd, active as last heard"];
  assert.deepEqual(await health.check(), { ready: true });
  state.stale = [];
  assert.deepEqual(await health.check(), { ready: true });
});
