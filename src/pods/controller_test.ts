import assert from "node:assert/strict";
import type { V1Pod } from "@kubernetes/client-node";
import { desiredFingerprint, othersConditions } from "./controller.ts";

const pod: V1Pod = {
  metadata: { name: "web", namespace: "default", uid: "u1", labels: { app: "web" } },
  spec: {
    containers: [{ name: "c", image: "/bin/sleep" }],
    readinessGates: [{ conditionType: "g" }],
  },
  status: {
    phase: "Running",
    conditions: [
      { type: "Ready", status: "False", reason: "ReadinessGatesNotReady" },
      { type: "g", status: "False" },
    ],
  },
};

Deno.test("controller: a status write echoed back changes nothing the runtime acts on", () => {
  const echo = structuredClone(pod);
  echo.status!.phase = "Succeeded";
  echo.status!.conditions![0] = { type: "Ready", status: "True" };
  echo.metadata!.resourceVersion = "42";
  assert.equal(desiredFingerprint(echo), desiredFingerprint(pod));
  assert.equal(othersConditions(echo), othersConditions(pod));
});

Deno.test("controller: spec, labels, annotations and deletion are what the runtime acts on", () => {
  const edits: ((p: V1Pod) => void)[] = [
    (p) => p.spec!.containers[0].image = "/bin/true",
    (p) => p.metadata!.labels = { app: "other" },
    (p) => p.metadata!.annotations = { note: "x" },
    (p) => p.metadata!.deletionTimestamp = new Date(0),
    (p) => p.metadata!.deletionGracePeriodSeconds = 0,
  ];
  for (const edit of edits) {
    const changed = structuredClone(pod);
    edit(changed);
    assert.notEqual(desiredFingerprint(changed), desiredFingerprint(pod), edit.toString());
  }
});

Deno.test("controller: a readiness gate flipped by another controller is a status-only change", () => {
  const flipped = structuredClone(pod);
  flipped.status!.conditions![1] = { type: "g", status: "True" };
  assert.equal(desiredFingerprint(flipped), desiredFingerprint(pod));
  assert.notEqual(othersConditions(flipped), othersConditions(pod));
});
