import assert from "node:assert/strict";
import type { V1ContainerStatus } from "@kubernetes/client-node";
import { withResources } from "./resources.ts";

const base: V1ContainerStatus = {
  name: "app",
  image: "/bin/sh",
  imageID: "",
  ready: true,
  restartCount: 0,
  state: { running: { startedAt: new Date(0) } },
};
const allocated = {
  requests: { cpu: "500m", memory: "64Mi", "ephemeral-storage": "1Gi" },
  limits: { cpu: "1", memory: "128Mi" },
};
const actual = {
  requests: { cpu: "100m", memory: "64Mi" },
  limits: { cpu: "200m", memory: "96Mi" },
};

Deno.test("withResources: a running container reports what its unit has", () => {
  assert.deepEqual(withResources(base, { allocated, actual }), {
    ...base,
    resources: {
      requests: { cpu: "100m", memory: "64Mi", "ephemeral-storage": "1Gi" },
      limits: { cpu: "200m", memory: "96Mi" },
    },
    allocatedResources: allocated.requests,
  });
  // Without a record of the unit's (a unit of an earlier systemk): the allocation.
  assert.deepEqual(withResources(base, { allocated }).resources, allocated);
  // No resources at all still say so: the apiserver looks for the field.
  assert.deepEqual(withResources(base, { allocated: {} }).resources, {});
  assert.equal(withResources(base, { allocated: {} }).allocatedResources, undefined);
});

Deno.test("withResources: not running → allocated; never run → nothing", () => {
  const ended = { ...base, state: { terminated: { exitCode: 0 } } };
  assert.deepEqual(withResources(ended, { allocated, actual }).resources, allocated);
  const crashLooping = {
    ...base,
    state: { waiting: { reason: "CrashLoopBackOff" } },
    lastState: { terminated: { exitCode: 1 } },
  };
  assert.deepEqual(withResources(crashLooping, { allocated, actual }).resources, allocated);
  const waiting = { ...base, state: { waiting: { reason: "ContainerCreating" } } };
  assert.deepEqual(withResources(waiting, { allocated, actual }), waiting);
  assert.deepEqual(withResources(base, undefined), base);
});
