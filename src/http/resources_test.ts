import assert from "node:assert/strict";
import type { V1Pod } from "@kubernetes/client-node";
import { readNode, ResourceSampler } from "./resources.ts";
import type { UnitProperties } from "../unit/properties.ts";

Deno.test("readNode: this machine's CPU, memory and boot time through --allow-sys", () => {
  const now = Date.now();
  const node = readNode(now);
  assert.ok(node.cpuNanos > 0);
  assert.ok(node.memoryWorkingSetBytes > 0 && node.memoryAvailableBytes > 0);
  assert.ok(node.startTimeMs < now);
  assert.ok(readNode(now + 1000).cpuNanos >= node.cpuNanos, "cumulative");
});

Deno.test("sampler: running containers only, by their units, with the previous sample", async () => {
  const pod: V1Pod = {
    metadata: { namespace: "default", name: "web", uid: "u1" },
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
  const sampler = new ResourceSampler({
    pods: { pods: () => [pod] },
    unitProperties: (unit) => units[unit] ? Promise.resolve(units[unit]) : Promise.reject(),
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
    uid: "u1",
    startTimeMs: undefined,
    containers: [{
      name: "app",
      startTimeMs: 1_800_000_000_000,
      cpuNanos: 5e8,
      memoryBytes: 4096,
    }],
  }]);
  t += 1000;
  const second = await sampler.sample();
  assert.equal(second.previous, first.sample);
  assert.equal(second.sample.timeMs, t);
});
