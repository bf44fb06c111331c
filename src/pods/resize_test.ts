import assert from "node:assert/strict";
import type { V1Pod, V1ResourceRequirements } from "@kubernetes/client-node";
import { type ActualResources, PodResize } from "./resize.ts";
import { metadataSection, serializeUnit } from "../unit/mod.ts";

const GI = 2 ** 30;
const NOW = new Date("2026-12-01T00:00:00Z");
const LATER = new Date("2026-12-01T00:01:00Z");

function pod(generation: number, resources: V1ResourceRequirements): V1Pod {
  return {
    metadata: { name: "p", namespace: "default", uid: "u", generation },
    spec: { containers: [{ name: "app", resources }] },
  };
}

function fixture(others = { cpuMilli: 0, memoryBytes: 0 }) {
  const events: string[] = [];
  const resize = new PodResize({
    allocatable: { cpuMilli: 2000, memoryBytes: 4 * GI },
    othersRequests: () => others,
    event: ({ type, reason, message }) => events.push(`${type} ${reason} ${message}`),
  }, new Map());
  return { resize, events };
}

const small = { requests: { cpu: "100m" }, limits: { cpu: "200m", memory: "64Mi" } };
const big = { requests: { cpu: "500m" }, limits: { cpu: "1", memory: "128Mi" } };
const running = (resources: V1ResourceRequirements): ActualResources =>
  new Map([["app", { running: true, resources }]]);

Deno.test("PodResize: an allocated resize is in progress until the unit has it", () => {
  const { resize, events } = fixture();
  assert.deepEqual(resize.allocate(pod(1, small), NOW), { pod: pod(1, small), resized: false });
  resize.settle(pod(1, small), running(small), { now: NOW });
  assert.deepEqual(resize.conditions(), []);

  const resized = resize.allocate(pod(2, big), NOW);
  assert.equal(resized.resized, true);
  assert.deepEqual(resized.pod.spec!.containers[0].resources, big);
  assert.deepEqual(resize.conditions(), [{
    type: "PodResizeInProgress",
    status: "True",
    observedGeneration: 2,
    lastProbeTime: NOW,
    lastTransitionTime: NOW,
  }]);
  // Applying it failed (memory in use): in progress with the error, retried.
  resize.settle(pod(2, big), running(small), {
    error: "cannot decrease memory limits: …",
    now: LATER,
  });
  assert.deepEqual(resize.conditions()[0].reason, "Error");
  assert.deepEqual(resize.conditions()[0].observedGeneration, 2);
  assert.deepEqual(resize.conditions()[0].lastTransitionTime, LATER);
  // Applied: completed, with the kubelet's event.
  resize.settle(pod(2, big), running(big), { now: LATER });
  assert.deepEqual(resize.conditions(), []);
  assert.deepEqual(events, [
    'Normal ResizeCompleted Pod resize completed: {"containers":[{"name":"app","resources":' +
    '{"requests":{"cpu":"500m"},"limits":{"cpu":"1","memory":"128Mi"}}}]}',
  ]);
  const status = resize.statusResources(pod(2, big), running(small)).get("app");
  assert.deepEqual(status, { allocated: big, actual: small });
});

Deno.test("PodResize: Infeasible and Deferred resizes stay pending on the allocation", () => {
  const { resize, events } = fixture({ cpuMilli: 1600, memoryBytes: 0 });
  resize.allocate(pod(1, small), NOW);
  const huge = { requests: { cpu: "3" }, limits: { cpu: "3", memory: "64Mi" } };
  const first = resize.allocate(pod(2, huge), NOW);
  assert.equal(first.resized, false);
  assert.deepEqual(first.pod.spec!.containers[0].resources, small);
  assert.deepEqual(resize.conditions(), [{
    type: "PodResizePending",
    status: "True",
    reason: "Infeasible",
    message: "Node didn't have enough capacity: cpu, requested: 3000, capacity: 2000",
    observedGeneration: 2,
    lastProbeTime: NOW,
    lastTransitionTime: NOW,
  }]);
  assert.equal(resize.deferred, false);
  // The same answer again: no new event, times kept.
  resize.allocate(pod(2, huge), LATER);
  assert.deepEqual(resize.conditions()[0].lastTransitionTime, NOW);
  assert.equal(events.length, 1);
  assert.match(events[0], /^Warning ResizeInfeasible Pod resize Infeasible: Node didn't have/);

  const more = resize.allocate(pod(3, big), LATER);
  assert.equal(more.resized, false);
  assert.equal(resize.deferred, true);
  assert.equal(
    resize.conditions()[0].message,
    "Node didn't have enough resource: cpu, requested: 500, used: 1600, capacity: 2000",
  );
  assert.deepEqual(resize.conditions()[0].lastTransitionTime, LATER);
  // Back to what it has: nothing pending.
  resize.allocate(pod(4, small), LATER);
  assert.deepEqual(resize.conditions(), []);
  assert.deepEqual(resize.requests(pod(4, small)), { cpuMilli: 100, memoryBytes: 0 });
});

Deno.test("PodResize: the allocation is seeded from the units; conditions from the API", () => {
  const text = serializeUnit({
    header: [],
    sections: [metadataSection({
      namespace: "default",
      podName: "p",
      podUID: "u",
      containerName: "app",
      init: false,
      image: "/bin/true",
      nodeName: "n1",
      containerHash: "0",
      index: 0,
      resources: JSON.stringify(small),
    })],
  });
  const events: string[] = [];
  const resize = new PodResize({
    allocatable: { cpuMilli: 2000, memoryBytes: 4 * GI },
    othersRequests: () => ({ cpuMilli: 0, memoryBytes: 0 }),
    event: ({ reason }) => events.push(reason),
  }, new Map([["u.service", { container: "app", init: false, text }]]));
  const huge = { requests: { cpu: "3" }, limits: { cpu: "3", memory: "64Mi" } };
  const shown = pod(2, huge);
  const pending = {
    type: "PodResizePending",
    status: "True",
    reason: "Infeasible",
    message: "Node didn't have enough capacity: cpu, requested: 3000, capacity: 2000",
    observedGeneration: 2,
    lastTransitionTime: NOW,
  };
  shown.status = { conditions: [pending] };
  const { pod: runs } = resize.allocate(shown, LATER);
  assert.deepEqual(runs.spec!.containers[0].resources, small, "what the unit was given");
  assert.deepEqual(resize.conditions()[0].lastTransitionTime, NOW);
  assert.deepEqual(events, [], "no repeated event after a restart of systemk");
});
