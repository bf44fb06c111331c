import assert from "node:assert/strict";
import { dumpYaml, loadYaml, type V1Pod, type V1PodStatus } from "@kubernetes/client-node";
import type { UnitProperties } from "../unit/properties.ts";
import { exited, invocation, killed, neverStarted, pod, running } from "./_testing.ts";
import { sameOwnedStatus } from "./patch.ts";
import { computePodStatus } from "./pod_status.ts";
import type { ContainerOverride, PodStatusOptions } from "./types.ts";

const NOW = new Date("2026-11-25T12:00:00.750Z");
const LATER = new Date("2026-11-25T12:05:00Z");
const ADDRESSES = { hostIP: "198.51.100.2", podIP: "198.51.100.2" };

function compute(
  thePod: V1Pod,
  units: Record<string, UnitProperties>,
  extra: Partial<PodStatusOptions> & { overrides?: ReadonlyMap<string, ContainerOverride> } = {},
): V1PodStatus {
  return computePodStatus(thePod, {
    units: new Map(
      Object.entries(units).map((
        [name, props],
      ) => [name, { unitName: `systemk.default.web.${name}.service`, props }]),
    ),
    addresses: ADDRESSES,
    now: NOW,
    ...extra,
  });
}

function condition(status: V1PodStatus, type: string) {
  return status.conditions?.find((c) => c.type === type);
}

/** Phase, then each condition as `Type=Status(Reason)`, for compact assertions. */
function summary(status: V1PodStatus): string {
  const conditions = ["Initialized", "ContainersReady", "Ready"].map((type) => {
    const c = condition(status, type)!;
    return `${type}=${c.status}${c.reason ? `(${c.reason})` : ""}`;
  });
  return [status.phase, ...conditions].join(" ");
}

Deno.test("fresh pod without units: Pending, addresses, startTime now, QoS, no init statuses", () => {
  const status = compute(pod({ containers: ["a"] }), {});
  assert.equal(
    summary(status),
    "Pending Initialized=True ContainersReady=False(ContainersNotReady) Ready=False(ContainersNotReady)",
  );
  assert.equal(status.hostIP, "198.51.100.2");
  assert.deepEqual(status.hostIPs, [{ ip: "198.51.100.2" }]);
  assert.equal(status.podIP, "198.51.100.2");
  assert.deepEqual(status.podIPs, [{ ip: "198.51.100.2" }]);
  assert.equal(status.startTime?.toISOString(), "2026-11-25T12:00:00.000Z");
  assert.equal(status.qosClass, "BestEffort");
  assert.equal(status.initContainerStatuses, undefined);
  assert.equal(condition(status, "PodScheduled")?.status, "True");
  assert.equal(condition(status, "PodReadyToStartContainers")?.status, "False");
  assert.equal(
    condition(status, "Ready")?.lastTransitionTime?.toISOString(),
    "2026-11-25T12:00:00.000Z",
  );
});

const initPod = (policy?: string) =>
  pod({ initContainers: ["setup"], containers: ["app"], restartPolicy: policy });
const done = exited(0, { InvocationID: invocation("1") });

Deno.test("init container running: Pending, not initialized, app PodInitializing", () => {
  const status = compute(initPod(), { setup: running() });
  assert.equal(
    summary(status),
    "Pending Initialized=False(ContainersNotInitialized) ContainersReady=False(ContainersNotReady) Ready=False(ContainersNotReady)",
  );
  assert.equal(status.containerStatuses?.[0].state?.waiting?.reason, "PodInitializing");
  assert.equal(condition(status, "PodReadyToStartContainers")?.status, "True");
});

Deno.test("init container failed under Never: Failed", () => {
  const status = compute(initPod("Never"), { setup: exited(1) });
  assert.equal(
    summary(status),
    "Failed Initialized=False(ContainersNotInitialized) ContainersReady=False(PodFailed) Ready=False(PodFailed)",
  );
  assert.equal(status.initContainerStatuses?.[0].state?.terminated?.reason, "Error");
});

for (const policy of ["Always", "OnFailure"]) {
  Deno.test(`init container failed under ${policy}: retried, Pending with CrashLoopBackOff`, () => {
    // The runtime retries the init chain after a back-off, saying so meanwhile; two runs of
    // it failed before.
    const status = compute(initPod(policy), { setup: exited(1) }, {
      overrides: new Map([["setup", { waiting: { reason: "CrashLoopBackOff" } }]]),
      previous: {
        initContainerStatuses: [{
          name: "setup",
          image: "/bin/setup",
          imageID: "/bin/setup",
          ready: false,
          restartCount: 2,
        }],
      },
    });
    assert.equal(status.phase, "Pending");
    const setup = status.initContainerStatuses![0];
    assert.equal(setup.state?.waiting?.reason, "CrashLoopBackOff");
    assert.equal(setup.lastState?.terminated?.exitCode, 1);
    assert.equal(setup.restartCount, 2);
  });
}

Deno.test("init container succeeded, app running: Running and Ready", () => {
  const status = compute(initPod(), { setup: done, app: running(20) });
  assert.equal(summary(status), "Running Initialized=True ContainersReady=True Ready=True");
  assert.deepEqual([
    status.initContainerStatuses![0].ready,
    status.initContainerStatuses![0].started,
  ], [true, false]);
});

Deno.test("init container succeeded, app unit not started yet: Pending, initialized", () => {
  const status = compute(initPod(), { setup: done, app: neverStarted() });
  assert.equal(
    summary(status),
    "Pending Initialized=True ContainersReady=False(ContainersNotReady) Ready=False(ContainersNotReady)",
  );
});

const policyCases: [string, UnitProperties, string][] = [
  ["Always", exited(0), "Running"],
  ["Always", exited(1), "Running"],
  ["Always", running(), "Running"],
  ["OnFailure", exited(0), "Succeeded"],
  ["OnFailure", exited(1), "Running"],
  ["Never", exited(0), "Succeeded"],
  ["Never", exited(1), "Failed"],
  ["Never", killed(9), "Failed"],
  ["Never", killed(9, { Result: "oom-kill" }), "Failed"],
];
for (const [policy, props, want] of policyCases) {
  Deno.test(`restartPolicy ${policy}, unit ${props.ActiveState}/${props.SubState} Result=${props.Result} status ${props.ExecMainStatus}: ${want}`, () => {
    assert.equal(
      compute(pod({ containers: ["app"], restartPolicy: policy }), { app: props }).phase,
      want,
    );
  });
}

Deno.test("OOM kill under Never: Failed, container OOMKilled 137", () => {
  const status = compute(pod({ containers: ["app"], restartPolicy: "Never" }), {
    app: killed(9, { Result: "oom-kill" }),
  });
  assert.deepEqual(
    [
      status.phase,
      status.containerStatuses![0].state?.terminated?.reason,
      status.containerStatuses![0].state?.terminated?.exitCode,
    ],
    ["Failed", "OOMKilled", 137],
  );
});

Deno.test("readiness probe pending: Running but not Ready; the prober's result makes it Ready", () => {
  const probed = pod({
    containers: [{ name: "app", readinessProbe: { exec: { command: ["true"] } } }],
  });
  assert.equal(
    summary(compute(probed, { app: running() })),
    "Running Initialized=True ContainersReady=False(ContainersNotReady) Ready=False(ContainersNotReady)",
  );
  const ready = compute(probed, { app: running() }, {
    overrides: new Map([["app", { ready: true }]]),
  });
  assert.equal(summary(ready), "Running Initialized=True ContainersReady=True Ready=True");
});

Deno.test("readiness gate: Ready waits for the gate's condition in the previous status", () => {
  const gated = pod({ containers: ["app"], readinessGates: [{ conditionType: "example.com/lb" }] });
  const first = compute(gated, { app: running() });
  assert.equal(condition(first, "Ready")?.reason, "ReadinessGatesNotReady");
  const withGate = {
    ...first,
    conditions: [...first.conditions!, { type: "example.com/lb", status: "True" }],
  };
  const second = compute(gated, { app: running() }, { previous: withGate, now: LATER });
  assert.equal(condition(second, "Ready")?.status, "True");
  assert.equal(condition(second, "Ready")?.lastTransitionTime?.getTime(), LATER.getTime());
  assert.equal(
    condition(second, "ContainersReady")?.lastTransitionTime?.getTime(),
    first.startTime?.getTime(),
  );
  assert.deepEqual(condition(second, "example.com/lb"), { type: "example.com/lb", status: "True" });
});

Deno.test("readiness gate flipped by another controller: taken from the pod as the API shows it", () => {
  const gated = pod({ containers: ["app"], readinessGates: [{ conditionType: "example.com/lb" }] });
  // systemk's own last status knows nothing of the gate; the API's pod has it True now.
  const ours = compute(gated, { app: running() });
  assert.equal(condition(ours, "Ready")?.reason, "ReadinessGatesNotReady");
  const api = {
    ...ours,
    conditions: [...ours.conditions!, { type: "example.com/lb", status: "True" }],
  };
  const flipped = compute({ ...gated, status: api }, { app: running() }, {
    previous: ours,
    now: LATER,
  });
  assert.equal(condition(flipped, "Ready")?.status, "True");
  assert.equal(condition(flipped, "Ready")?.reason, undefined);
  assert.deepEqual(condition(flipped, "example.com/lb"), {
    type: "example.com/lb",
    status: "True",
  });
  // And back: the controller sets it False again.
  const apiFalse = {
    ...flipped,
    conditions: flipped.conditions!.map((c) =>
      c.type === "example.com/lb" ? { ...c, status: "False" } : c
    ),
  };
  const back = compute({ ...gated, status: apiFalse }, { app: running() }, {
    previous: flipped,
    now: LATER,
  });
  assert.equal(condition(back, "Ready")?.reason, "ReadinessGatesNotReady");
});

Deno.test("previous status defaults to pod.status", () => {
  const first = compute(pod({ containers: ["app"] }), { app: running() });
  const second = compute({ ...pod({ containers: ["app"] }), status: first }, { app: running() }, {
    now: LATER,
  });
  assert.equal(second.startTime?.getTime(), first.startTime?.getTime());
});

Deno.test("a terminal phase never changes again", () => {
  const thePod = pod({ containers: ["app"], restartPolicy: "OnFailure" });
  const succeeded = compute(thePod, { app: exited(0) });
  assert.equal(succeeded.phase, "Succeeded");
  const later = compute(thePod, { app: running(60, { InvocationID: invocation("b") }) }, {
    previous: succeeded,
  });
  assert.equal(later.phase, "Succeeded");
  assert.deepEqual(later.containerStatuses, succeeded.containerStatuses);
});

Deno.test("terminal: a stopped Always pod becomes Failed (killed) or Succeeded (all exited 0)", () => {
  const thePod = pod({ containers: ["a", "b"] });
  const stopped = killed(15, { ActiveState: "inactive", SubState: "dead", Result: "success" });
  assert.equal(compute(thePod, { a: stopped, b: exited(0) }, { terminal: true }).phase, "Failed");
  assert.equal(
    compute(thePod, { a: exited(0), b: exited(0) }, { terminal: true }).phase,
    "Succeeded",
  );
  assert.equal(compute(thePod, {}, { terminal: true }).phase, "Failed");
});

Deno.test("pod-level failure: reason and message shown, phase from containers, Failed when terminal", () => {
  const thePod = pod({ containers: ["app"] });
  const failure = { reason: "PlanError", message: "volume config: configmap app-config not found" };
  const pending = compute(thePod, {}, { failure });
  assert.deepEqual([pending.phase, pending.reason, pending.message], [
    "Pending",
    failure.reason,
    failure.message,
  ]);
  const rejected = compute(thePod, {}, { failure, terminal: true });
  assert.deepEqual([rejected.phase, rejected.reason], ["Failed", "PlanError"]);
  // Fixed: the message goes away with the failure...
  const fixed = compute(thePod, { app: running() }, { previous: pending });
  assert.deepEqual([fixed.reason, fixed.message], [undefined, undefined]);
  // ...but a terminal pod keeps the reason it ended with.
  const after = compute(thePod, {}, { previous: rejected });
  assert.deepEqual([after.phase, after.reason, after.message], [
    "Failed",
    failure.reason,
    failure.message,
  ]);
});

Deno.test("evicted: Failed with the failure even where every container exited 0; terminal stays", () => {
  const thePod = pod({ containers: ["a"] });
  const failure = { reason: "DeadlineExceeded", message: "Pod was active on the node longer" };
  const active = compute(thePod, { a: running() }, { failure, evicted: true });
  assert.deepEqual([active.phase, active.reason], ["Failed", "DeadlineExceeded"]);
  const clean = compute(thePod, { a: exited(0) }, { failure, evicted: true });
  assert.deepEqual([clean.phase, clean.message], ["Failed", failure.message]);
  const succeeded = compute(pod({ containers: ["a"], restartPolicy: "Never" }), { a: exited(0) });
  assert.equal(succeeded.phase, "Succeeded");
  const late = compute(thePod, { a: exited(0) }, { failure, evicted: true, previous: succeeded });
  assert.equal(late.phase, "Succeeded");
});

Deno.test("rejected: Failed with the rejection, no container statuses, before and after a restart", () => {
  const thePod = pod({ containers: ["a", "b"], initContainers: ["setup"] });
  const failure = { reason: "NodePorts", message: "Pod was rejected: Predicate NodePorts failed" };
  const rejected = compute(thePod, {}, { failure, rejected: true });
  assert.deepEqual([rejected.phase, rejected.reason, rejected.message], [
    "Failed",
    "NodePorts",
    failure.message,
  ]);
  assert.equal(rejected.containerStatuses, undefined);
  assert.equal(rejected.initContainerStatuses, undefined);
  assert.equal(condition(rejected, "Ready")?.reason, "PodFailed");
  // A restarted systemk knows only the API's status: the pod reads the same.
  const again = compute(thePod, {}, { previous: rejected });
  assert.deepEqual(again, rejected);
  // A pod that ran keeps its containers' statuses once terminal.
  const ran = compute(thePod, { a: exited(1), b: exited(0), setup: exited(0) }, {
    failure,
    evicted: true,
  });
  assert.equal(compute(thePod, {}, { previous: ran }).containerStatuses?.length, 2);
});

Deno.test("conditions systemk sets when it ends a pod: added, replacing the observed one, time kept", () => {
  const thePod = pod({ containers: ["a"] });
  const disruption = {
    type: "DisruptionTarget",
    status: "True",
    reason: "TerminationByKubelet",
    message: "Pod was terminated in response to imminent node shutdown.",
  };
  const failure = { reason: "Terminated", message: disruption.message };
  const first = compute(thePod, { a: killed(15) }, {
    failure,
    evicted: true,
    conditions: [disruption],
  });
  assert.deepEqual(condition(first, "DisruptionTarget"), {
    ...disruption,
    lastTransitionTime: new Date("2026-11-25T12:00:00Z"),
  });
  assert.deepEqual([first.phase, first.reason, first.message], [
    "Failed",
    "Terminated",
    failure.message,
  ]);
  // Observed in the API, set again later: one condition, its first transition time.
  const observed = { ...thePod, status: first };
  const later = computePodStatus(observed, {
    units: new Map(),
    addresses: ADDRESSES,
    now: LATER,
    previous: first,
    failure,
    evicted: true,
    conditions: [disruption],
  });
  const disruptions = later.conditions!.filter((c) => c.type === "DisruptionTarget");
  assert.equal(disruptions.length, 1);
  assert.deepEqual(disruptions[0].lastTransitionTime, new Date("2026-11-25T12:00:00Z"));
});

Deno.test("agent overrides per container reach the status", () => {
  const thePod = pod({ containers: ["a", "b"] });
  const status = compute(thePod, {}, {
    overrides: new Map([
      ["a", { waiting: { reason: "ContainerCreating", message: "installing package nginx" } }],
      ["b", { waiting: { reason: "ImagePullBackOff", message: "Back-off pulling image" } }],
    ]),
  });
  assert.deepEqual(status.containerStatuses!.map((s) => s.state?.waiting?.reason), [
    "ContainerCreating",
    "ImagePullBackOff",
  ]);
});

Deno.test("app container statuses sorted by name, init container statuses in spec order", () => {
  const thePod = pod({ initContainers: ["zeta", "alpha"], containers: ["web", "api"] });
  const status = compute(thePod, {});
  assert.deepEqual(status.initContainerStatuses!.map((s) => s.name), ["zeta", "alpha"]);
  assert.deepEqual(status.containerStatuses!.map((s) => s.name), ["api", "web"]);
});

Deno.test("qosClass kept from the previous status, computed otherwise", () => {
  const thePod = pod({
    containers: [{ name: "app", resources: { limits: { cpu: "1", memory: "1Gi" } } }],
  });
  assert.equal(compute(thePod, {}).qosClass, "Guaranteed");
  assert.equal(compute(thePod, {}, { previous: { qosClass: "Burstable" } }).qosClass, "Burstable");
});

Deno.test("sandboxReady: explicit value wins over the unit-based default", () => {
  const thePod = pod({ containers: ["app"] });
  assert.equal(
    condition(compute(thePod, {}, { sandboxReady: true }), "PodReadyToStartContainers")?.status,
    "True",
  );
  assert.equal(
    condition(compute(thePod, { app: running() }), "PodReadyToStartContainers")?.status,
    "True",
  );
});

Deno.test("crash loop: restartCount and lastState survive the round trip through the API", () => {
  const thePod = pod({ containers: ["app"] });
  let previous: V1PodStatus | undefined;
  // Each ended run waits in the runtime's CrashLoopBackOff before the next one starts.
  const backOff = new Map([["app", { waiting: { reason: "CrashLoopBackOff" } }]]);
  const steps: [UnitProperties, Map<string, ContainerOverride>?][] = [
    [running(0)],
    [exited(1), backOff],
    [running(20, { InvocationID: invocation("b") })],
    [exited(2, { InvocationID: invocation("b") }), backOff],
    [running(40, { InvocationID: invocation("c") })],
  ];
  const seen = steps.map(([props, overrides]) => {
    const status = compute(thePod, { app: props }, { previous, overrides });
    previous = JSON.parse(JSON.stringify(status));
    const app = status.containerStatuses![0];
    return `${status.phase} ${
      Object.keys(app.state!)[0]
    } restarts=${app.restartCount} last=${app.lastState?.terminated?.exitCode}`;
  });
  assert.deepEqual(seen, [
    "Running running restarts=0 last=undefined",
    "Running waiting restarts=0 last=1",
    "Running running restarts=1 last=1",
    "Running waiting restarts=1 last=2",
    "Running running restarts=2 last=2",
  ]);
});

/** Representative pods and units, for the "read back from the API" properties below. */
const scenarios: [string, V1Pod, Record<string, UnitProperties>][] = [
  ["pending", pod({ containers: ["a"] }), {}],
  ["running with init", initPod(), { setup: done, app: running() }],
  ["crash loop", pod({ containers: ["a"] }), { a: exited(1) }],
  ["succeeded", pod({ containers: ["a"], restartPolicy: "Never" }), { a: exited(0) }],
  ["failed by signal", pod({ containers: ["a"], restartPolicy: "Never" }), { a: killed(9) }],
];

for (const [name, thePod, units] of scenarios) {
  Deno.test(`${name}: recomputing from unchanged units after reading back as JSON is a no-op`, () => {
    const first = compute(thePod, units);
    const readBack: V1PodStatus = JSON.parse(JSON.stringify(first));
    const second = compute(thePod, units, { previous: readBack, now: LATER });
    assert.ok(sameOwnedStatus(readBack, second));
  });

  Deno.test(`${name}: recomputing after reading back through client-node's deserializer is a no-op`, () => {
    const first = compute(thePod, units);
    const wire = dumpYaml({
      apiVersion: "v1",
      kind: "Pod",
      metadata: { name: "web" },
      status: first,
    });
    const readBack = loadYaml<V1Pod>(wire).status!;
    assert.ok(readBack.startTime instanceof Date);
    const second = compute(thePod, units, { previous: readBack, now: LATER });
    assert.ok(sameOwnedStatus(readBack, second));
  });
}

Deno.test("in-place resize: observedGeneration, resize conditions, container resources", () => {
  const resized = pod({
    containers: [{ name: "app", resources: { limits: { cpu: "1" }, requests: { cpu: "1" } } }],
  }, { generation: 3 });
  const inProgress = {
    type: "PodResizeInProgress",
    status: "True",
    observedGeneration: 3,
    lastTransitionTime: NOW,
  };
  const status = compute(resized, { app: running(20) }, {
    resizeConditions: [inProgress],
    resources: new Map([["app", {
      allocated: { limits: { cpu: "1" }, requests: { cpu: "1" } },
      actual: { limits: { cpu: "500m" }, requests: { cpu: "500m" } },
    }]]),
  });
  assert.equal(status.observedGeneration, 3);
  assert.deepEqual(condition(status, "PodResizeInProgress"), inProgress);
  for (const type of ["PodReadyToStartContainers", "Initialized", "Ready", "ContainersReady"]) {
    assert.equal(condition(status, type)!.observedGeneration, 3, type);
  }
  assert.equal(condition(status, "PodScheduled")!.observedGeneration, 3);
  assert.deepEqual(status.containerStatuses![0].resources, {
    limits: { cpu: "500m" },
    requests: { cpu: "500m" },
  });
  assert.deepEqual(status.containerStatuses![0].allocatedResources, { cpu: "1" });
  // A terminal pod shows no resize; a pod without a generation (a manifest's) no observedGeneration.
  const ended = compute(pod({ containers: ["app"], restartPolicy: "Never" }), {
    app: exited(0),
  }, { resizeConditions: [inProgress] });
  assert.equal(ended.phase, "Succeeded");
  assert.equal(condition(ended, "PodResizeInProgress"), undefined);
  assert.equal(ended.observedGeneration, undefined);
  assert.equal(condition(ended, "Ready")!.observedGeneration, undefined);
});

Deno.test("sidecar: starting keeps the pod Pending; once started, initialized; readiness counts", () => {
  const thePod = pod({
    initContainers: [{ name: "proxy", restartPolicy: "Always", startupProbe: {} }],
    containers: ["app"],
  });
  const starting = compute(thePod, { proxy: running() });
  assert.equal(
    summary(starting),
    "Pending Initialized=False(ContainersNotInitialized) " +
      "ContainersReady=False(ContainersNotReady) Ready=False(ContainersNotReady)",
  );
  assert.deepEqual(
    [starting.initContainerStatuses![0].started, starting.initContainerStatuses![0].ready],
    [false, false],
  );
  const started = new Map([["proxy", { started: true }]]);
  const both = compute(thePod, { proxy: running(), app: running() }, { overrides: started });
  assert.equal(summary(both), "Running Initialized=True ContainersReady=True Ready=True");
  assert.deepEqual(
    [both.initContainerStatuses![0].started, both.initContainerStatuses![0].ready],
    [true, true],
  );
  const unready = new Map([["proxy", { started: true }]]);
  const withReadiness = pod({
    initContainers: [{ name: "proxy", restartPolicy: "Always", readinessProbe: {} }],
    containers: ["app"],
  });
  assert.equal(
    summary(compute(withReadiness, { proxy: running(), app: running() }, { overrides: unready })),
    "Running Initialized=True ContainersReady=False(ContainersNotReady) " +
      "Ready=False(ContainersNotReady)",
  );
});

Deno.test("sidecar: a Job's pod completes once its app containers do, whatever the sidecar", () => {
  const thePod = pod({
    restartPolicy: "Never",
    initContainers: [{ name: "proxy", restartPolicy: "Always" }],
    containers: ["app"],
  });
  // While systemk stops the sidecar the pod still runs; then it is Succeeded, the sidecar's
  // own end (SIGTERM: 143) counting for nothing.
  assert.equal(compute(thePod, { proxy: running(), app: exited(0) }).phase, "Running");
  const done = compute(thePod, { proxy: killed(15), app: exited(0) });
  assert.equal(done.phase, "Succeeded");
  assert.ok(done.initContainerStatuses![0].state?.terminated);
  assert.equal(compute(thePod, { proxy: killed(15), app: exited(1) }).phase, "Failed");
});

Deno.test("ephemeral containers: their own statuses, sorted; phase and conditions ignore them", () => {
  const thePod = pod({ containers: ["app"] });
  thePod.spec!.ephemeralContainers = [
    { name: "zz", image: "/bin/sh", targetContainerName: "app" },
    { name: "dbg", image: "/bin/sh" },
  ];
  const status = compute(thePod, { app: running(), dbg: exited(3) }, {
    overrides: new Map([["zz", {
      waiting: { reason: "CreateContainerError", message: "its target is not running" },
    }]]),
  });
  assert.equal(summary(status), "Running Initialized=True ContainersReady=True Ready=True");
  assert.deepEqual(status.containerStatuses!.map((s) => s.name), ["app"]);
  const [dbg, zz] = status.ephemeralContainerStatuses!;
  assert.equal(dbg.name, "dbg");
  assert.equal(dbg.state?.terminated?.exitCode, 3, "never restarted: stays terminated");
  assert.equal(dbg.ready, false);
  assert.equal(dbg.started, undefined);
  assert.equal(zz.state?.waiting?.reason, "CreateContainerError");
  assert.equal(zz.state?.waiting?.message, "its target is not running");
  assert.equal(compute(pod({ containers: ["app"] }), {}).ephemeralContainerStatuses, undefined);
});
