import assert from "node:assert/strict";
import type { V1ContainerStatus, V1Pod, V1PodCondition } from "@kubernetes/client-node";
import { pod } from "./_testing.ts";
import { podConditions } from "./conditions.ts";
import type { PodPhase } from "./phase.ts";

const NOW = new Date("2026-11-25T12:00:00Z");
const EARLIER = new Date("2026-11-25T11:00:00Z");

function s(name: string, fields: Partial<V1ContainerStatus>): V1ContainerStatus {
  return { name, image: "", imageID: "", ready: false, restartCount: 0, ...fields };
}
const runningReady = (name: string) =>
  s(name, { ready: true, started: true, state: { running: {} } });
const runningUnready = (name: string) =>
  s(name, { ready: false, started: true, state: { running: {} } });
const waiting = (name: string) => s(name, { state: { waiting: { reason: "ContainerCreating" } } });
const doneOk = (name: string, ready: boolean) =>
  s(name, { ready, state: { terminated: { exitCode: 0 } } });

/** Conditions by type, without transition times (tested separately). */
function conditions(
  thePod: V1Pod,
  statuses: V1ContainerStatus[],
  phase: PodPhase,
  extra: { previous?: V1PodCondition[]; sandboxReady?: boolean } = {},
): Record<string, Omit<V1PodCondition, "type" | "lastTransitionTime">> {
  const list = podConditions(thePod, {
    statuses,
    phase,
    sandboxReady: extra.sandboxReady ?? true,
    previous: extra.previous ?? [],
    now: NOW,
  });
  return Object.fromEntries(list.map(({ type, lastTransitionTime: _, ...rest }) => [type, rest]));
}

Deno.test("all ready: every condition True", () => {
  const got = conditions(
    pod({ containers: ["a", "b"] }),
    [runningReady("a"), runningReady("b")],
    "Running",
  );
  assert.deepEqual(got, {
    PodReadyToStartContainers: { status: "True" },
    Initialized: { status: "True" },
    Ready: { status: "True" },
    ContainersReady: { status: "True" },
    PodScheduled: { status: "True" },
  });
});

Deno.test("unready and unknown containers are named like the kubelet does", () => {
  const got = conditions(
    pod({ containers: ["a", "b", "c"] }),
    [runningUnready("a"), waiting("b")],
    "Pending",
  );
  const notReady = {
    status: "False",
    reason: "ContainersNotReady",
    message: "containers with unknown status: [c], containers with unready status: [a b]",
  };
  assert.deepEqual(got.ContainersReady, notReady);
  assert.deepEqual(got.Ready, notReady);
});

Deno.test("init containers incomplete: Initialized False ContainersNotInitialized", () => {
  const thePod = pod({ initContainers: ["i", "j"], containers: ["a"] });
  const got = conditions(thePod, [s("i", { state: { running: {} } }), waiting("a")], "Pending");
  assert.deepEqual(got.Initialized, {
    status: "False",
    reason: "ContainersNotInitialized",
    message: "containers with unknown status: [j], containers with incomplete status: [i]",
  });
});

Deno.test("init containers done: Initialized True", () => {
  const thePod = pod({ initContainers: ["i"], containers: ["a"] });
  assert.deepEqual(conditions(thePod, [doneOk("i", true), waiting("a")], "Pending").Initialized, {
    status: "True",
  });
});

Deno.test("failed init container: Initialized False", () => {
  const thePod = pod({ initContainers: ["i"], containers: ["a"], restartPolicy: "Never" });
  const failed = s("i", { state: { terminated: { exitCode: 1 } } });
  assert.equal(conditions(thePod, [failed, waiting("a")], "Failed").Initialized.status, "False");
});

Deno.test("sidecar counts as initialized once started, and must be ready for ContainersReady", () => {
  const thePod = pod({
    initContainers: [{ name: "proxy", restartPolicy: "Always" }],
    containers: ["a"],
  });
  const got = conditions(thePod, [runningUnready("proxy"), runningReady("a")], "Running");
  assert.equal(got.Initialized.status, "True");
  assert.deepEqual(got.ContainersReady, {
    status: "False",
    reason: "ContainersNotReady",
    message: "containers with unready status: [proxy]",
  });
});

Deno.test("Succeeded: Initialized True PodCompleted, ContainersReady/Ready False PodCompleted", () => {
  const thePod = pod({ initContainers: ["i"], containers: ["a"], restartPolicy: "Never" });
  const got = conditions(thePod, [doneOk("i", true), doneOk("a", false)], "Succeeded");
  assert.deepEqual(got.Initialized, { status: "True", reason: "PodCompleted" });
  assert.deepEqual(got.ContainersReady, { status: "False", reason: "PodCompleted" });
  assert.deepEqual(got.Ready, { status: "False", reason: "PodCompleted" });
  assert.deepEqual(got.PodReadyToStartContainers, { status: "False" });
});

Deno.test("Failed: ContainersReady/Ready False PodFailed even with a container still ready", () => {
  const got = conditions(pod({ containers: ["a"] }), [runningReady("a")], "Failed");
  assert.deepEqual(got.ContainersReady, { status: "False", reason: "PodFailed" });
  assert.deepEqual(got.Ready, { status: "False", reason: "PodFailed" });
});

Deno.test("PodReadyToStartContainers follows the sandbox", () => {
  assert.equal(
    conditions(pod({ containers: ["a"] }), [waiting("a")], "Pending", { sandboxReady: false })
      .PodReadyToStartContainers.status,
    "False",
  );
  assert.equal(
    conditions(pod({ containers: ["a"] }), [waiting("a")], "Pending", { sandboxReady: true })
      .PodReadyToStartContainers.status,
    "True",
  );
});

const gated = pod({ containers: ["a"], readinessGates: [{ conditionType: "example.com/lb" }] });

Deno.test("readiness gate without its condition: Ready False ReadinessGatesNotReady", () => {
  const got = conditions(gated, [runningReady("a")], "Running");
  assert.deepEqual(got.ContainersReady, { status: "True" });
  assert.deepEqual(got.Ready, {
    status: "False",
    reason: "ReadinessGatesNotReady",
    message: 'corresponding condition of pod readiness gate "example.com/lb" does not exist.',
  });
});

Deno.test("readiness gate condition False: Ready False", () => {
  const previous = [{ type: "example.com/lb", status: "False" }];
  assert.deepEqual(conditions(gated, [runningReady("a")], "Running", { previous }).Ready, {
    status: "False",
    reason: "ReadinessGatesNotReady",
    message: 'the status of pod readiness gate "example.com/lb" is not "True", but False',
  });
});

Deno.test("readiness gate condition True: Ready True, and the gate's condition is kept as is", () => {
  const gate = {
    type: "example.com/lb",
    status: "True",
    lastTransitionTime: EARLIER,
    reason: "Registered",
  };
  const list = podConditions(gated, {
    statuses: [runningReady("a")],
    phase: "Running",
    sandboxReady: true,
    previous: [gate],
    now: NOW,
  });
  assert.equal(list.find((c) => c.type === "Ready")?.status, "True");
  assert.deepEqual(list.find((c) => c.type === "example.com/lb"), gate);
});

Deno.test("readiness gates do not make Ready True while containers are unready", () => {
  const previous = [{ type: "example.com/lb", status: "True" }];
  assert.equal(
    conditions(gated, [runningUnready("a")], "Running", { previous }).Ready.reason,
    "ContainersNotReady",
  );
});

Deno.test("lastTransitionTime: kept while the status is unchanged, now when it changes", () => {
  const thePod = pod({ containers: ["a"] });
  const first = podConditions(thePod, {
    statuses: [waiting("a")],
    phase: "Pending",
    sandboxReady: true,
    previous: [],
    now: EARLIER,
  });
  assert.ok(first.every((c) => c.lastTransitionTime?.getTime() === EARLIER.getTime()));
  // As read back from the API: times are strings.
  const readBack = JSON.parse(JSON.stringify(first));
  const second = podConditions(thePod, {
    statuses: [runningReady("a")],
    phase: "Running",
    sandboxReady: true,
    previous: readBack,
    now: NOW,
  });
  const times = Object.fromEntries(
    second.map((c) => [c.type, c.lastTransitionTime?.toISOString()]),
  );
  assert.deepEqual(times, {
    PodReadyToStartContainers: EARLIER.toISOString(),
    Initialized: EARLIER.toISOString(),
    Ready: NOW.toISOString(),
    ContainersReady: NOW.toISOString(),
    PodScheduled: EARLIER.toISOString(),
  });
});

Deno.test("lastTransitionTime: a changed reason with the same status keeps the time", () => {
  const thePod = pod({ containers: ["a", "b"] });
  const previous = [{
    type: "Ready",
    status: "False",
    reason: "ContainersNotReady",
    lastTransitionTime: EARLIER,
  }];
  const list = podConditions(thePod, {
    statuses: [runningReady("a"), runningReady("b")],
    phase: "Failed",
    sandboxReady: true,
    previous,
    now: NOW,
  });
  const ready = list.find((c) => c.type === "Ready")!;
  assert.equal(ready.reason, "PodFailed");
  assert.equal(ready.lastTransitionTime?.getTime(), EARLIER.getTime());
});
