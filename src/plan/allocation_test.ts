import assert from "node:assert/strict";
import type { V1Pod } from "@kubernetes/client-node";
import {
  allocatedPod,
  changedResources,
  decideResize,
  podAllocation,
  podRequests,
  resizeRequested,
} from "./allocation.ts";

const GI = 2 ** 30;

function pod(cpu: string, memory: string): V1Pod {
  return {
    metadata: { name: "p", uid: "u" },
    spec: {
      initContainers: [
        { name: "init", resources: { requests: { cpu: "1500m" } } },
        { name: "proxy", restartPolicy: "Always", resources: { requests: { cpu: "100m" } } },
      ],
      containers: [
        { name: "app", resources: { requests: { cpu, memory }, limits: { memory } } },
        { name: "side", resources: { requests: { cpu: "100m", memory: "64Mi" } } },
      ],
    },
  };
}

const context = {
  allocatable: { cpuMilli: 2000, memoryBytes: 4 * GI },
  othersRequests: { cpuMilli: 500, memoryBytes: GI },
  staticPod: false,
};

Deno.test("podRequests: apps and sidecars add up, an init container counts alone", () => {
  // init alone: 1500m, plus the sidecars started before it (none) → 1500m; apps + sidecar: 700m.
  assert.deepEqual(podRequests(pod("500m", "1Gi")), {
    cpuMilli: 1500,
    memoryBytes: GI + 64 * 2 ** 20,
  });
  assert.deepEqual(podRequests(pod("1800m", "1Gi")).cpuMilli, 2000);
  const overhead = {
    ...pod("1", "1Gi"),
    spec: { ...pod("1", "1Gi").spec!, overhead: { cpu: "250m" } },
  };
  assert.equal(podRequests(overhead).cpuMilli, 1750);
});

Deno.test("allocation: sidecars and app containers; the allocated pod runs with it", () => {
  const before = pod("500m", "1Gi");
  const allocation = podAllocation(before);
  assert.deepEqual([...allocation.keys()], ["proxy", "app", "side"]);
  const resized = pod("1", "2Gi");
  assert.equal(resizeRequested(before, allocation), false);
  assert.equal(resizeRequested(resized, allocation), true);
  // Quantities as YAML numbers and key order do not make a resize.
  const same = pod("500m", "1Gi");
  same.spec!.containers[0].resources = {
    limits: { memory: "1Gi" },
    requests: { memory: "1Gi", cpu: "500m" },
  };
  assert.equal(resizeRequested(same, allocation), false);
  const running = allocatedPod(resized, allocation);
  assert.deepEqual(running.spec!.containers[0].resources, before.spec!.containers[0].resources);
  assert.equal(running.spec!.initContainers![0].resources?.requests?.cpu, "1500m");
  // The pod itself is not changed.
  assert.equal(resized.spec!.containers[0].resources?.requests?.cpu, "1");
});

Deno.test("decideResize: Infeasible beyond allocatable, Deferred beyond what others leave", () => {
  assert.equal(decideResize(pod("1", "1Gi"), context), undefined);
  assert.deepEqual(decideResize(pod("1", "5Gi"), context), {
    reason: "Infeasible",
    message: `Node didn't have enough capacity: memory, requested: ${5 * GI + 64 * 2 ** 20}, ` +
      `capacity: ${4 * GI}`,
  });
  assert.deepEqual(
    decideResize(pod("3", "5Gi"), context)?.message.startsWith(
      "Node didn't have enough capacity: memory",
    ),
    true,
    "memory is looked at first",
  );
  assert.deepEqual(decideResize(pod("3", "1Gi"), context), {
    reason: "Infeasible",
    message: "Node didn't have enough capacity: cpu, requested: 3200, capacity: 2000",
  });
  assert.deepEqual(decideResize(pod("1600m", "1Gi"), context), {
    reason: "Deferred",
    message: "Node didn't have enough resource: cpu, requested: 1800, used: 500, capacity: 2000",
  });
  assert.deepEqual(
    decideResize(pod("1", "3Gi"), context)?.message.startsWith(
      "Node didn't have enough resource: memory",
    ),
    true,
  );
  assert.deepEqual(decideResize(pod("1", "1Gi"), { ...context, staticPod: true }), {
    reason: "Infeasible",
    message: "In-place resize of static-pods is not supported",
  });
});

Deno.test("changedResources: CPU and memory compared as quantities", () => {
  assert.deepEqual(changedResources({ limits: { cpu: "1" } }, { limits: { cpu: "1000m" } }), []);
  assert.deepEqual(
    changedResources({ requests: { cpu: "1", memory: "1Gi" } }, {
      requests: { cpu: "2", memory: "1024Mi" },
    }),
    ["cpu"],
  );
  assert.deepEqual(changedResources({}, { limits: { memory: "1Gi" } }), ["memory"]);
  assert.deepEqual(changedResources(undefined, { requests: { "ephemeral-storage": "1Gi" } }), []);
});
