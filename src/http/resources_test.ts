import assert from "node:assert/strict";
import type { V1Pod } from "@kubernetes/client-node";
import { readNode, ResourceSampler } from "./resources.ts";
import { fixedPods } from "./_testing.ts";
import type { UnitProperties } from "../unit/properties.ts";

Deno.test("readNode: this machine's CPU, memory and boot time through --allow-sys", () => {
  const now = Date.now();
  const node = readNode(now);
  assert.ok(node.cpuNanos > 0);
  assert.ok(node.memoryWorkingSetBytes > 0 && node.memoryAvailableBytes > 0);
  assert.ok(node.startTimeMs < now);
  assert.ok(readNode(now + 1000).cpuNanos >= node.cpuNanos, "cumulative");
});

Deno.test("sampler: running containers and their pod's slice, with the previous sample", async () => {
  const pod: V1Pod = {
    metadata: { namespace: "default", name: "web", uid: "u-1" },
    spec: {
      initContainers: [{ name: "init" }],
      containers: [{ name: "app" }, { name: "done" }],
    },
  };
  const props = (p: Partial<UnitProperties>) => p as UnitProperties;
  const units: Record<string, UnitProperties> = {
    "systemk.default.web.init.service": props({ ActiveState: "inactive", SubState: "dead" }),
    "systemk.default.web.app.service": props({
      ActiveState: "active",
      SubState: "running",
      ExecMainStartTimestamp: 1_800_000_000_000_000,
      CPUUsageNSec: 5e8,
      MemoryCurrent: 4096,
    }),
    "systemk.default.web.done.service": props({ ActiveState: "active", SubState: "exited" }),
  };
  let t = 1_800_000_001_000;
  const cpuAsked: string[][] = [];
  const sampler = new ResourceSampler({
    pods: fixedPods(() => [pod]),
    unitProperties: (unit) => units[unit] ? Promise.resolve(units[unit]) : Promise.reject(),
    cgroupUsage: (unit) =>
      unit === "systemk-podu_1.slice"
        ? Promise.resolve({ controlGroup: "/systemk.slice/systemk-podu_1.slice", memoryBytes: 9e3 })
        : Promise.reject(new Error(`no unit ${unit}`)),
    cpuUsage: (
      cgroups,
    ) => (cpuAsked.push([...cgroups]),
      Promise.resolve(new Map([["/systemk.slice/systemk-podu_1.slice", 7e8]]))),
    node: () => ({
      cpuNanos: 1,
      memoryWorkingSetBytes: 2,
      memoryAvailableBytes: 3,
      memoryUsageBytes: 4,
      startTimeMs: 5,
    }),
    now: () => t,
  });
  const first = await sampler.sample();
  assert.equal(first.previous, undefined);
  assert.deepEqual(first.sample.pods, [{
    namespace: "default",
    name: "web",
    uid: "u-1",
    startTimeMs: undefined,
    // The slice's: its memory from systemd, its CPU (which systemd did not account) from the
    // cgroup.
    cpuNanos: 7e8,
    memoryBytes: 9e3,
    containers: [{
      name: "app",
      startTimeMs: 1_800_000_000_000,
      cpuNanos: 5e8,
      memoryBytes: 4096,
    }],
  }]);
  assert.deepEqual(cpuAsked, [["/systemk.slice/systemk-podu_1.slice"]]);
  t += 1000;
  const second = await sampler.sample();
  assert.equal(second.previous, first.sample);
  assert.equal(second.sample.timeMs, t);
});

Deno.test("sampler: a container's CPU systemd does not account is read from its cgroup", async () => {
  const pod: V1Pod = {
    metadata: { namespace: "default", name: "web", uid: "u-1" },
    spec: { containers: [{ name: "app" }] },
  };
  const slice = "/systemk.slice/systemk-podu_1.slice";
  const sampler = new ResourceSampler({
    pods: fixedPods(() => [pod]),
    unitProperties: () =>
      Promise.resolve({ ActiveState: "active", SubState: "running" } as UnitProperties),
    cgroupUsage: () => Promise.resolve({ controlGroup: slice, cpuNanos: 3e9 }),
    cpuUsage: (cgroups) => {
      assert.deepEqual(cgroups, [`${slice}/systemk.default.web.app.service`]);
      return Promise.resolve(new Map([[cgroups[0], 2e9]]));
    },
  });
  const { sample } = await sampler.sample();
  assert.equal(sample.pods[0].cpuNanos, 3e9);
  assert.equal(sample.pods[0].containers[0].cpuNanos, 2e9);
  // Unreadable cgroups leave the figures out rather than failing the measurement.
  const failing = new ResourceSampler({
    pods: fixedPods(() => [pod]),
    unitProperties: () =>
      Promise.resolve({ ActiveState: "active", SubState: "running" } as UnitProperties),
    cgroupUsage: () => Promise.resolve({ controlGroup: slice }),
    cpuUsage: () => Promise.reject(new Error("no grep")),
  });
  const partial = (await failing.sample()).sample.pods[0];
  assert.equal(partial.cpuNanos, undefined);
  assert.equal(partial.containers[0].cpuNanos, undefined);
});
