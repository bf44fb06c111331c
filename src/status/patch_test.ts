import assert from "node:assert/strict";
import type { V1PodStatus } from "@kubernetes/client-node";
import { podStatusEqual, statusPatch } from "./patch.ts";

const base: V1PodStatus = {
  phase: "Running",
  hostIP: "198.51.100.2",
  hostIPs: [{ ip: "198.51.100.2" }],
  podIP: "198.51.100.2",
  podIPs: [{ ip: "198.51.100.2" }],
  startTime: new Date("2026-11-25T12:00:00Z"),
  qosClass: "BestEffort",
  conditions: [
    { type: "Ready", status: "True", lastTransitionTime: new Date("2026-11-25T12:00:01Z") },
    { type: "PodScheduled", status: "True", lastTransitionTime: new Date("2026-11-25T12:00:00Z") },
  ],
  containerStatuses: [
    {
      name: "a",
      image: "/bin/a",
      imageID: "/bin/a",
      containerID: "systemd://aa",
      ready: true,
      started: true,
      restartCount: 0,
      state: { running: { startedAt: new Date("2026-11-25T12:00:01Z") } },
    },
    {
      name: "b",
      image: "/bin/b",
      imageID: "",
      ready: false,
      restartCount: 0,
      state: { waiting: { reason: "ContainerCreating" } },
    },
  ],
};

/** A deep copy with times as the API's JSON strings. */
function asJSON(status: V1PodStatus): V1PodStatus {
  return JSON.parse(JSON.stringify(status));
}

const equalCases: [string, (s: V1PodStatus) => V1PodStatus][] = [
  ["identical", (s) => s],
  ["times as RFC 3339 strings", asJSON],
  ["sub-second parts of times", (s) => ({ ...s, startTime: new Date("2026-11-25T12:00:00.999Z") })],
  ["conditions in another order", (s) => ({ ...s, conditions: [...s.conditions!].reverse() })],
  [
    "container statuses in another order",
    (s) => ({ ...s, containerStatuses: [...s.containerStatuses!].reverse() }),
  ],
  [
    "empty lists and strings vs absent",
    (s) => ({ ...s, initContainerStatuses: [], reason: "", message: undefined }),
  ],
  [
    "lastProbeTime null vs absent",
    (s) => ({
      ...s,
      conditions: s.conditions!.map((c) => ({ ...c, lastProbeTime: null as unknown as Date })),
    }),
  ],
  [
    "empty lastState object vs absent",
    (s) => ({
      ...s,
      containerStatuses: s.containerStatuses!.map((c) => ({ ...c, lastState: {} })),
    }),
  ],
  [
    "fields systemk does not own",
    (s) => ({ ...s, nominatedNodeName: "other", resize: "Proposed" }),
  ],
];
for (const [name, change] of equalCases) {
  Deno.test(`podStatusEqual ignores ${name}`, () => {
    assert.equal(podStatusEqual(base, change(structuredClone(base))), true);
    assert.equal(statusPatch(base, change(structuredClone(base))), undefined);
  });
}

const differentCases: [string, (s: V1PodStatus) => V1PodStatus][] = [
  ["phase", (s) => ({ ...s, phase: "Succeeded" })],
  [
    "a condition's status",
    (s) => ({ ...s, conditions: [{ ...s.conditions![0], status: "False" }, s.conditions![1]] }),
  ],
  [
    "a transition time, by a second",
    (s) => ({
      ...s,
      conditions: [
        { ...s.conditions![0], lastTransitionTime: new Date("2026-11-25T12:00:02Z") },
        s.conditions![1],
      ],
    }),
  ],
  ["a missing condition", (s) => ({ ...s, conditions: [s.conditions![0]] })],
  [
    "readiness of a container",
    (s) => ({
      ...s,
      containerStatuses: [{ ...s.containerStatuses![0], ready: false }, s.containerStatuses![1]],
    }),
  ],
  [
    "restartCount 0 → 1",
    (s) => ({
      ...s,
      containerStatuses: [{ ...s.containerStatuses![0], restartCount: 1 }, s.containerStatuses![1]],
    }),
  ],
  [
    "started true → false",
    (s) => ({
      ...s,
      containerStatuses: [{ ...s.containerStatuses![0], started: false }, s.containerStatuses![1]],
    }),
  ],
  ["reason set", (s) => ({ ...s, reason: "PlanError" })],
  ["podIPs", (s) => ({ ...s, podIPs: [{ ip: "198.51.100.3" }] })],
];
for (const [name, change] of differentCases) {
  Deno.test(`podStatusEqual sees ${name}`, () => {
    assert.equal(podStatusEqual(base, change(structuredClone(base))), false);
    assert.notEqual(statusPatch(base, change(structuredClone(base))), undefined);
  });
}

Deno.test("statusPatch sends only changed owned fields, whole", () => {
  const next = structuredClone(base);
  next.phase = "Failed";
  next.containerStatuses![1] = {
    ...next.containerStatuses![1],
    state: { waiting: { reason: "ErrImagePull" } },
  };
  assert.deepEqual(statusPatch(base, next), {
    status: { phase: "Failed", containerStatuses: next.containerStatuses },
  });
});

Deno.test("statusPatch removes fields the next status lacks with null", () => {
  const previous = { ...structuredClone(base), reason: "PlanError", message: "configmap missing" };
  assert.deepEqual(statusPatch(previous, structuredClone(base)), {
    status: { reason: null, message: null },
  });
});

Deno.test("statusPatch carries the UID precondition", () => {
  assert.deepEqual(
    statusPatch(base, { ...structuredClone(base), phase: "Failed" }, { uid: "uid-1" }),
    {
      metadata: { uid: "uid-1" },
      status: { phase: "Failed" },
    },
  );
});

Deno.test("statusPatch deletes addresses that went away (lists merged by ip)", () => {
  const next = { ...structuredClone(base), hostIPs: [{ ip: "198.51.100.9" }] };
  assert.deepEqual(statusPatch(base, next), {
    status: {
      hostIPs: [{ ip: "198.51.100.9" }, { ip: "198.51.100.2", $patch: "delete" }],
      "$setElementOrder/hostIPs": [{ ip: "198.51.100.9" }],
    },
  });
});

Deno.test("statusPatch sends all conditions, including others', when one changed", () => {
  const previous = structuredClone(base);
  previous.conditions!.push({ type: "example.com/lb", status: "True" });
  const next = structuredClone(previous);
  next.conditions![0] = { ...next.conditions![0], status: "False", reason: "ContainersNotReady" };
  assert.deepEqual(statusPatch(previous, next), { status: { conditions: next.conditions } });
});
