/**
 * The runtime against a recording fake of its UnitManager port: decisions that depend on what
 * systemd already has (adoption after a restart of systemk). The real systemd is exercised in
 * tests/systemd/ and tests/e2e/standalone_test.ts.
 */
import assert from "node:assert/strict";
import type { V1Pod, V1PodStatus } from "@kubernetes/client-node";
import { planPod } from "../../src/plan/mod.ts";
import type { NodeFacts } from "../../src/plan/types.ts";
import type { UnitProperties } from "../../src/unit/properties.ts";
import type { UnitManager } from "../../src/pods/ports.ts";
import { PodRuntime, type RuntimeOptions } from "../../src/pods/runtime.ts";
import { systemkMetrics } from "../../src/metrics/mod.ts";
import { configureLogging } from "../../src/log/mod.ts";

const NODE: NodeFacts = {
  name: "n1",
  hostname: "n1",
  internalIP: "10.0.0.2",
  externalIP: "10.0.0.2",
  lookupUser: (key) => key === 0 || key === "root" ? { name: "root", uid: 0, gid: 0 } : undefined,
  lookupGroup: (name) => name === "root" ? 0 : undefined,
  groupName: (gid) => gid === 0 ? "root" : undefined,
};

/** A unit that ran and ended: failed with exit code 3, still loaded. */
const ENDED: UnitProperties = {
  LoadState: "loaded",
  ActiveState: "failed",
  SubState: "failed",
  Result: "exit-code",
  ExecMainStatus: 3,
  ExecMainCode: 1,
  ExecMainStartTimestamp: 1_000_000,
  ExecMainExitTimestamp: 2_000_000,
  ActiveEnterTimestamp: 1_000_000,
  InactiveEnterTimestamp: 2_000_000,
  MainPID: 0,
  InvocationID: "0123456789abcdef0123456789abcdef",
};

/** What a runtime did with a pod whose unit it adopted in the `ENDED` state. */
interface Adopted {
  runtime: PodRuntime;
  pod: V1Pod;
  calls: string[];
  statuses: V1PodStatus[];
  events: string[];
}

/**
 * Adopts a one-container pod (policy `restartPolicy`) whose unit is found `ENDED`, syncs it
 * and runs `fn`; removes the state directory afterwards.
 */
async function withAdoptedEndedPod(
  restartPolicy: string,
  options: Partial<RuntimeOptions>,
  fn: (a: Adopted) => Promise<void>,
  podFields: Pick<V1Pod, "status"> & { activeDeadlineSeconds?: number } = {},
): Promise<void> {
  const stateDir = await Deno.makeTempDir({ prefix: "systemk-runtime-test-" });
  try {
    const pod: V1Pod = {
      metadata: { name: "job", namespace: "default", uid: "uid-1" },
      spec: {
        restartPolicy,
        activeDeadlineSeconds: podFields.activeDeadlineSeconds,
        containers: [{ name: "once", image: "/bin/sh", command: ["/bin/sh", "-c", "exit 3"] }],
      },
      status: podFields.status,
    };
    const plan = planPod({
      pod,
      configMaps: new Map(),
      secrets: new Map(),
      node: NODE,
      packages: new Map(),
      stateDir,
    });
    const calls: string[] = [];
    const units: UnitManager = {
      install: (name) => (calls.push(`install ${name}`), Promise.resolve()),
      remove: (name) => (calls.push(`remove ${name}`), Promise.resolve()),
      start: (name) => (calls.push(`start ${name}`), Promise.resolve("done")),
      stop: (name) => (calls.push(`stop ${name}`), Promise.resolve("done")),
      kill: () => Promise.resolve(),
      resize: (name) => (calls.push(`resize ${name}`), Promise.resolve()),
      resetFailed: (name) => (calls.push(`reset-failed ${name}`), Promise.resolve()),
      properties: () => Promise.resolve(ENDED),
      activeStates: () => Promise.resolve(new Map()),
      list: () =>
        Promise.resolve([plan.slice, ...plan.units].map((u) => ({ name: u.name, text: u.text }))),
      onChange: () => {},
    };
    const statuses: V1PodStatus[] = [];
    const events: string[] = [];
    const runtime = new PodRuntime({
      units,
      node: NODE,
      stateDir,
      images: { resolve: () => Promise.resolve({}) },
      events: { record: (_, { type, reason }) => events.push(`${type} ${reason}`) },
      onStatus: (_, status) => statuses.push(status),
      references: () => Promise.resolve({ configMaps: new Map(), secrets: new Map() }),
      ...options,
    });
    assert.equal(await runtime.adopt(), 1);
    runtime.sync(pod);
    await fn({ runtime, pod, calls, statuses, events });
  } finally {
    await Deno.remove(stateDir, { recursive: true });
  }
}

/** Polls `check` every 5 ms until it holds (at most 5 s). */
async function until(what: string, check: () => boolean): Promise<void> {
  for (let i = 0; i < 1000 && !check(); i++) await new Promise((r) => setTimeout(r, 5));
  assert.ok(check(), what);
}

Deno.test({
  name: "an adopted container that ended under restartPolicy Never is not started again",
  // Volume directories are chowned to the pod's user (root).
  ignore: Deno.uid() !== 0,
  async fn() {
    await withAdoptedEndedPod("Never", {}, async ({ runtime, calls, statuses }) => {
      await runtime.close();
      await new Promise((r) => setTimeout(r, 0)); // the coalesced status
      assert.deepEqual(calls, [], "nothing installed, started or stopped");
      assert.equal(statuses.at(-1)?.phase, "Failed", "its end is what the status shows");
      const metrics = systemkMetrics.render();
      assert.ok(metrics.includes('systemk_pods{phase="Failed"} 1'), "pods by phase counted");
      assert.match(metrics, /systemk_pod_reconcile_duration_seconds_count 1\b/);
    });
  },
});

Deno.test({
  name: "an adopted container that ended under Always waits in CrashLoopBackOff, then restarts",
  ignore: Deno.uid() !== 0,
  async fn() {
    const options = { crashLoopBackoffBaseMs: 20 };
    await withAdoptedEndedPod("Always", options, async ({ runtime, calls, statuses, events }) => {
      await until("restarted", () => calls.some((c) => c.startsWith("start ")));
      const unit = calls.find((c) => c.startsWith("start "))!.slice("start ".length);
      assert.deepEqual(calls, [`reset-failed ${unit}`, `start ${unit}`]);
      const waiting = statuses.map((s) => s.containerStatuses?.[0].state?.waiting).find(Boolean);
      assert.equal(waiting?.reason, "CrashLoopBackOff");
      assert.match(waiting?.message ?? "", /^back-off 20ms restarting failed container=once /);
      assert.deepEqual(events, ["Warning BackOff", "Normal Started"]);
      await runtime.close();
    });
  },
});

Deno.test({
  name: "deleting a pod cancels its pending container restart",
  ignore: Deno.uid() !== 0,
  async fn() {
    const options = { crashLoopBackoffBaseMs: 50 };
    await withAdoptedEndedPod("Always", options, async ({ runtime, pod, calls, events }) => {
      await until("back-off decided", () => events.includes("Warning BackOff"));
      await runtime.terminate(pod.metadata!.uid!, 0);
      // The pod's slice goes last, once its units are gone.
      assert.deepEqual(calls.filter((c) => c.startsWith("remove ")), [
        "remove systemk.default.job.once.service",
        "remove systemk-poduid_1.slice",
      ]);
      await new Promise((r) => setTimeout(r, 200)); // well past the back-off
      assert.ok(!calls.some((c) => c.startsWith("start ")), calls.join(", "));
      await runtime.close();
    });
  },
});

Deno.test({
  name: "activeDeadlineSeconds: passing it stops the pod for good, Failed DeadlineExceeded",
  ignore: Deno.uid() !== 0,
  async fn() {
    const options = { crashLoopBackoffBaseMs: 60_000 };
    await withAdoptedEndedPod(
      "Always",
      options,
      async ({ runtime, pod, calls, statuses, events }) => {
        // The first status gives the pod its startTime; the deadline is 1 s after it.
        await until("deadline passed", () => statuses.at(-1)?.reason === "DeadlineExceeded");
        const last = statuses.at(-1)!;
        assert.equal(last.phase, "Failed");
        assert.equal(last.message, "Pod was active on the node longer than the specified deadline");
        assert.ok(calls.some((c) => c.startsWith("stop ")), calls.join(", "));
        assert.ok(!calls.some((c) => c.startsWith("start ")), calls.join(", "));
        assert.deepEqual(events, ["Warning BackOff", "Normal DeadlineExceeded"]);
        // A later sync (e.g. the status written back) keeps it so: no restart, no second event.
        runtime.sync({ ...pod, status: last });
        await runtime.close();
        assert.ok(!calls.some((c) => c.startsWith("start ")), calls.join(", "));
        assert.deepEqual(events, ["Warning BackOff", "Normal DeadlineExceeded"]);
      },
      { activeDeadlineSeconds: 1 },
    );
  },
});

Deno.test({
  name: "activeDeadlineSeconds: counted from the status' startTime across restarts of systemk",
  ignore: Deno.uid() !== 0,
  async fn() {
    const startTime = new Date(Date.now() - 3_600_000);
    // Past the deadline while systemk was away: ended at once, never restarted.
    await withAdoptedEndedPod("Always", {}, async ({ runtime, calls, statuses, events }) => {
      await runtime.close();
      await new Promise((r) => setTimeout(r, 0));
      assert.deepEqual([statuses.at(-1)?.phase, statuses.at(-1)?.reason], [
        "Failed",
        "DeadlineExceeded",
      ]);
      assert.ok(!calls.some((c) => c.startsWith("start ")), calls.join(", "));
      assert.deepEqual(events, ["Normal DeadlineExceeded"]);
    }, { activeDeadlineSeconds: 60, status: { phase: "Running", startTime } });
    // Ended before the restart: stays ended, without a second event.
    const ended = {
      phase: "Failed",
      reason: "DeadlineExceeded",
      message: "Pod was active on the node longer than the specified deadline",
      startTime,
    };
    await withAdoptedEndedPod("Always", {}, async ({ runtime, calls, statuses, events }) => {
      await runtime.close();
      await new Promise((r) => setTimeout(r, 0));
      assert.equal(statuses.at(-1)?.phase, "Failed");
      assert.ok(!calls.some((c) => c.startsWith("start ")), calls.join(", "));
      assert.deepEqual(events, []);
    }, { activeDeadlineSeconds: 60, status: ended });
  },
});

Deno.test({
  name: "an adopted container whose pod's files cannot be written keeps showing its real state",
  ignore: Deno.uid() !== 0,
  async fn() {
    // A file where the state directory belongs: no pod directory can be made below it.
    const notADir = await Deno.makeTempFile({ prefix: "systemk-runtime-test-" });
    try {
      const options = { stateDir: notADir, backoffBaseMs: 60_000 };
      await withAdoptedEndedPod("Never", options, async ({ runtime, calls, statuses, events }) => {
        await until("FailedMount", () => events.includes("Warning FailedMount"));
        await runtime.close();
        await new Promise((r) => setTimeout(r, 0)); // the coalesced status
        assert.deepEqual(calls, [], "nothing installed, started or stopped");
        const last = statuses.at(-1);
        assert.equal(last?.reason, "FailedMount");
        assert.match(last?.message ?? "", /Not a directory/);
        assert.equal(last?.phase, "Failed", "the adopted unit's end is what the status shows");
        assert.equal(last?.containerStatuses?.[0].state?.terminated?.exitCode, 3);
      });
    } finally {
      await Deno.remove(notADir);
    }
  },
});

Deno.test({
  name: "--log-level debug shows a pod's reconcile decisions, with the pod named",
  ignore: Deno.uid() !== 0,
  async fn() {
    const lines: string[] = [];
    configureLogging({ level: "debug", format: "json", write: (line) => lines.push(line) });
    try {
      const options = { crashLoopBackoffBaseMs: 20 };
      await withAdoptedEndedPod("Always", options, async ({ runtime, calls }) => {
        await until("restarted", () => calls.some((c) => c.startsWith("start ")));
        await runtime.close();
      });
    } finally {
      configureLogging({ level: "info", format: "text" });
    }
    const decisions = lines.map((line) => JSON.parse(line))
      .filter((r) => r.level === "debug" && r.pod === "default/job").map((r) => r.msg);
    assert.ok(decisions.some((m) => /^1 unit\(s\) planned, 0 written/.test(m)), `${decisions}`);
    assert.ok(decisions.some((m) => /ended; restarting in 20 ms$/.test(m)), `${decisions}`);
  },
});

Deno.test("a pod's slice left on the machine without its pod is removed; another node's is not", async () => {
  const slice = (uid: string, node: string) => {
    const plan = planPod({
      pod: {
        metadata: { name: `p-${uid}`, namespace: "default", uid },
        spec: { containers: [{ name: "c", image: "/bin/sh", command: ["/bin/sh"] }] },
      },
      configMaps: new Map(),
      secrets: new Map(),
      node: { ...NODE, name: node },
      packages: new Map(),
    });
    return { name: plan.slice.name, text: plan.slice.text };
  };
  // Left behind by a systemk that died between removing a pod's units and its slice.
  const orphan = slice("uid-2", "n1");
  const others = slice("uid-3", "n2");
  const calls: string[] = [];
  const runtime = new PodRuntime({
    units: {
      install: () => Promise.resolve(),
      remove: (name) => (calls.push(`remove ${name}`), Promise.resolve()),
      start: () => Promise.resolve("done"),
      stop: () => Promise.resolve("done"),
      kill: () => Promise.resolve(),
      resize: () => Promise.resolve(),
      resetFailed: () => Promise.resolve(),
      properties: () => Promise.resolve(ENDED),
      activeStates: () => Promise.resolve(new Map()),
      list: () => Promise.resolve([orphan, others]),
      onChange: () => {},
    },
    node: NODE,
    stateDir: "/nonexistent/systemk-runtime-test",
    images: { resolve: () => Promise.resolve({}) },
    events: { record: () => {} },
    onStatus: () => {},
    references: () => Promise.resolve({ configMaps: new Map(), secrets: new Map() }),
  });
  assert.equal(await runtime.adopt(), 1);
  await runtime.collectOrphans(new Set());
  await runtime.close();
  assert.deepEqual(calls, [`remove ${orphan.name}`]);
});
