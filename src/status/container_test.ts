import assert from "node:assert/strict";
import type { V1ContainerStatus, V1Pod } from "@kubernetes/client-node";
import type { ContainerKind } from "../plan/containers.ts";
import type { UnitProperties } from "../unit/properties.ts";
import { exited, invocation, iso, killed, neverStarted, pod, running } from "./_testing.ts";
import { computeContainerStatus, restartPolicyOf, willRestart } from "./container.ts";
import type { ContainerOverride } from "./types.ts";

const A = `systemd://${invocation("a")}`;
const B = `systemd://${invocation("b")}`;

/** Computes the status of container `name` of `thePod` and returns it as the API would (JSON). */
function statusOf(
  thePod: V1Pod,
  name: string,
  options: {
    props?: UnitProperties;
    override?: ContainerOverride;
    previous?: unknown;
    imageID?: string;
  } = {},
): V1ContainerStatus {
  const init = thePod.spec!.initContainers?.find((c) => c.name === name);
  const container = (init ?? thePod.spec!.containers.find((c) => c.name === name))!;
  const status = computeContainerStatus(container, {
    pod: thePod,
    kind: init === undefined ? "app" : init.restartPolicy === "Always" ? "sidecar" : "init",
    unit: options.props
      ? {
        unitName: `systemk.default.web.${name}.service`,
        props: options.props,
        imageID: options.imageID,
      }
      : undefined,
    override: options.override,
    previous: options.previous as V1ContainerStatus | undefined,
  });
  return JSON.parse(JSON.stringify(status));
}

const simple = pod({ containers: ["app"] });
const withInit = pod({ containers: ["app"], initContainers: ["setup"] });
const never = pod({ containers: ["app"], restartPolicy: "Never" });
const onFailure = pod({ containers: ["app"], restartPolicy: "OnFailure" });

Deno.test("no unit yet: waiting ContainerCreating, not ready, not started, no containerID", () => {
  assert.deepEqual(statusOf(simple, "app"), {
    name: "app",
    image: "/bin/app",
    imageID: "",
    ready: false,
    started: false,
    restartCount: 0,
    state: { waiting: { reason: "ContainerCreating" } },
  });
});

Deno.test("unit loaded but never started: same as no unit", () => {
  assert.deepEqual(statusOf(simple, "app", { props: neverStarted() }), statusOf(simple, "app"));
});

Deno.test("pod with init containers: containers not created yet wait in PodInitializing", () => {
  assert.equal(statusOf(withInit, "setup").state?.waiting?.reason, "PodInitializing");
  assert.equal(statusOf(withInit, "app").state?.waiting?.reason, "PodInitializing");
});

Deno.test("running: started and ready, containerID and imageID set", () => {
  assert.deepEqual(statusOf(simple, "app", { props: running(5) }), {
    name: "app",
    image: "/bin/app",
    imageID: "/bin/app",
    containerID: A,
    ready: true,
    started: true,
    restartCount: 0,
    state: { running: { startedAt: iso(5) } },
  });
});

Deno.test("imageID comes from the unit when given", () => {
  assert.equal(
    statusOf(simple, "app", { props: running(), imageID: "uptimed=1:0.4.6-3" }).imageID,
    "uptimed=1:0.4.6-3",
  );
});

Deno.test("readiness probe: not ready until the prober says so", () => {
  const probed = pod({
    containers: [{ name: "app", readinessProbe: { tcpSocket: { port: 80 } } }],
  });
  assert.equal(statusOf(probed, "app", { props: running() }).ready, false);
  assert.equal(statusOf(probed, "app", { props: running() }).started, true);
  assert.equal(
    statusOf(probed, "app", { props: running(), override: { ready: true } }).ready,
    true,
  );
  assert.equal(
    statusOf(probed, "app", { props: running(), override: { ready: false } }).ready,
    false,
  );
});

Deno.test("startup probe: neither started nor ready until it passes", () => {
  const probed = pod({ containers: [{ name: "app", startupProbe: { tcpSocket: { port: 80 } } }] });
  const pending = statusOf(probed, "app", { props: running() });
  assert.deepEqual([pending.started, pending.ready], [false, false]);
  const passed = statusOf(probed, "app", { props: running(), override: { started: true } });
  assert.deepEqual([passed.started, passed.ready], [true, true]);
});

Deno.test("a failed readiness result makes a probe-less container unready too", () => {
  assert.equal(
    statusOf(simple, "app", { props: running(), override: { ready: false } }).ready,
    false,
  );
});

Deno.test("terminated containers are neither started nor ready", () => {
  const status = statusOf(never, "app", { props: exited(0) });
  assert.deepEqual([status.started, status.ready, status.state?.terminated?.reason], [
    false,
    false,
    "Completed",
  ]);
});

Deno.test("init container: ready once it exited 0, not while running or after failing", () => {
  assert.equal(statusOf(withInit, "setup", { props: running() }).ready, false);
  assert.equal(statusOf(withInit, "setup", { props: exited(0) }).ready, true);
  assert.equal(statusOf(withInit, "setup", { props: exited(1) }).ready, false);
});

Deno.test("sidecar init container: ready like an app container", () => {
  const sidecar = pod({
    containers: ["app"],
    initContainers: [{ name: "proxy", restartPolicy: "Always" }],
  });
  assert.equal(statusOf(sidecar, "proxy", { props: running() }).ready, true);
  assert.equal(statusOf(sidecar, "proxy", { props: exited(0) }).ready, false);
});

Deno.test("restart seen only after the fact: the missed run becomes ContainerStatusUnknown", () => {
  const first = statusOf(simple, "app", { props: running(0) });
  const second = statusOf(simple, "app", {
    props: running(20, { InvocationID: invocation("b") }),
    previous: first,
  });
  assert.equal(second.restartCount, 1);
  assert.deepEqual(second.lastState, {
    terminated: {
      containerID: A,
      exitCode: 137,
      reason: "ContainerStatusUnknown",
      message:
        "The container's exit status could not be determined: systemd restarted it before its exit was seen",
      startedAt: iso(0),
    },
  });
});

Deno.test("a new run counts as a restart", () => {
  const crashed = statusOf(onFailure, "app", { props: exited(1) });
  crashed.restartCount = 3;
  const again = statusOf(onFailure, "app", {
    props: running(30, { InvocationID: invocation("b") }),
    previous: crashed,
  });
  assert.equal(again.restartCount, 4);
  assert.deepEqual(again.lastState, { terminated: crashed.state!.terminated });
});

Deno.test("the same run again changes nothing (idempotent)", () => {
  const first = statusOf(simple, "app", { props: running(0) });
  assert.deepEqual(
    statusOf(simple, "app", { props: running(0), previous: first }),
    first,
  );
  const backOff = { waiting: { reason: "CrashLoopBackOff" } };
  const crash = statusOf(simple, "app", { props: exited(1), override: backOff, previous: first });
  assert.deepEqual(
    statusOf(simple, "app", { props: exited(1), override: backOff, previous: crash }),
    crash,
  );
});

Deno.test("unit gone after a run: a terminated status is kept", () => {
  const done = statusOf(never, "app", { props: exited(0) });
  assert.deepEqual(statusOf(never, "app", { previous: done }), done);
  assert.deepEqual(statusOf(never, "app", { props: neverStarted(), previous: done }), done);
});

Deno.test("unit gone while running: lost, counted as a restart with lastState ContainerStatusUnknown", () => {
  const was = statusOf(simple, "app", { props: running(0) });
  was.restartCount = 1;
  const now = statusOf(simple, "app", { previous: was });
  assert.deepEqual(now.state, { waiting: { reason: "ContainerCreating" } });
  assert.equal(now.restartCount, 2);
  assert.equal(now.lastState?.terminated?.reason, "ContainerStatusUnknown");
  assert.equal(now.lastState?.terminated?.exitCode, 137);
  assert.equal(now.lastState?.terminated?.containerID, A);
});

Deno.test("unit stopped and garbage-collected by systemd (props zeroed, as measured): same as gone", () => {
  const was = statusOf(simple, "app", { props: running(0) });
  assert.deepEqual(
    statusOf(simple, "app", { props: neverStarted(), previous: was }),
    statusOf(simple, "app", { previous: was }),
  );
});

Deno.test("unit gone while running in a deleted pod: lost but not counted as a restart", () => {
  const deleting = pod({ containers: ["app"] }, { deletionTimestamp: new Date(0) });
  const was = statusOf(deleting, "app", { props: running(0) });
  const now = statusOf(deleting, "app", { previous: was });
  assert.equal(now.restartCount, 0);
  assert.equal(now.lastState?.terminated?.reason, "ContainerStatusUnknown");
});

Deno.test("unit gone while waiting: restartCount and lastState carried over", () => {
  const crash = statusOf(simple, "app", {
    props: exited(1),
    override: { waiting: { reason: "CrashLoopBackOff" } },
  });
  crash.restartCount = 3;
  const now = statusOf(simple, "app", { previous: crash });
  assert.equal(now.restartCount, 3);
  assert.deepEqual(now.lastState, crash.lastState);
  assert.deepEqual(now.state, { waiting: { reason: "ContainerCreating" } });
});

Deno.test("a run kept out of sight (postStart hook) and then ended counts as a restart", () => {
  // Back-off after run A (agent's CrashLoopBackOff), run B hidden while its postStart hook
  // runs, then B killed: one restart, B's end shown, A's end the last state before it.
  const first = statusOf(simple, "app", { props: exited(2) });
  const backOff = statusOf(simple, "app", {
    previous: first,
    override: { waiting: { reason: "CrashLoopBackOff" } },
  });
  const hidden = statusOf(simple, "app", { previous: backOff });
  assert.equal(hidden.containerID, A, "still naming the last run");
  const killedB = statusOf(simple, "app", {
    props: exited(143, { InvocationID: invocation("b") }),
    previous: hidden,
  });
  assert.deepEqual([killedB.containerID, killedB.restartCount], [B, 1]);
  assert.equal(killedB.lastState?.terminated?.containerID, A);
});

Deno.test("Never: a terminated container never goes back to running or waiting", () => {
  const done = statusOf(never, "app", { props: exited(1) });
  assert.deepEqual(
    statusOf(never, "app", {
      props: running(30, { InvocationID: invocation("b") }),
      previous: done,
    }),
    done,
  );
  assert.deepEqual(
    statusOf(never, "app", { override: { waiting: { reason: "ErrImagePull" } }, previous: done }),
    done,
  );
});

Deno.test("OnFailure: a container that exited 0 stays terminated; one that failed may run again", () => {
  const ok = statusOf(onFailure, "app", { props: exited(0) });
  assert.deepEqual(
    statusOf(onFailure, "app", {
      props: running(30, { InvocationID: invocation("b") }),
      previous: ok,
    }),
    ok,
  );
  const failed = statusOf(onFailure, "app", { props: exited(1) });
  assert.ok(
    statusOf(onFailure, "app", {
      props: running(30, { InvocationID: invocation("b") }),
      previous: failed,
    }).state?.running,
  );
});

const pulling = { waiting: { reason: "ErrImagePull", message: "package foo not found" } };

Deno.test("agent waiting reason replaces the default waiting state", () => {
  assert.deepEqual(statusOf(simple, "app", { override: pulling }).state, pulling);
  assert.deepEqual(
    statusOf(simple, "app", {
      override: { waiting: { reason: "ContainerCreating", message: "installing package" } },
    }).state,
    { waiting: { reason: "ContainerCreating", message: "installing package" } },
  );
});

Deno.test("agent waiting reason never hides a running container", () => {
  assert.ok(statusOf(simple, "app", { props: running(), override: pulling }).state?.running);
});

Deno.test("agent waiting reason over a terminated container that will restart moves it to lastState", () => {
  const status = statusOf(simple, "app", {
    props: exited(1),
    override: { waiting: { reason: "CrashLoopBackOff", message: "back-off 40s" } },
  });
  assert.deepEqual(status.state, {
    waiting: { reason: "CrashLoopBackOff", message: "back-off 40s" },
  });
  assert.equal(status.lastState?.terminated?.exitCode, 1);
});

Deno.test("agent waiting reason does not apply to a terminated container that will not restart", () => {
  assert.ok(statusOf(never, "app", { props: exited(1), override: pulling }).state?.terminated);
  assert.ok(statusOf(onFailure, "app", { props: exited(0), override: pulling }).state?.terminated);
  assert.ok(statusOf(withInit, "setup", { props: exited(0), override: pulling }).state?.terminated);
});

Deno.test("agent waiting reason is ignored once the pod is being deleted", () => {
  const deleting = pod({ containers: ["app"] }, { deletionTimestamp: new Date(0) });
  assert.equal(
    statusOf(deleting, "app", { override: pulling }).state?.waiting?.reason,
    "ContainerCreating",
  );
});

Deno.test("unit systemd cannot load: waiting CreateContainerError naming the unit", () => {
  assert.deepEqual(
    statusOf(simple, "app", { props: neverStarted({ LoadState: "bad-setting" }) }).state,
    {
      waiting: {
        reason: "CreateContainerError",
        message: "systemd cannot load unit systemk.default.web.app.service: LoadState=bad-setting",
      },
    },
  );
});

Deno.test("OOM kill under Always: back-off with lastState OOMKilled", () => {
  const status = statusOf(simple, "app", {
    props: killed(9, { Result: "oom-kill" }),
    override: { waiting: { reason: "CrashLoopBackOff" } },
  });
  assert.equal(status.lastState?.terminated?.reason, "OOMKilled");
  assert.equal(status.lastState?.terminated?.exitCode, 137);
  assert.equal(status.lastState?.terminated?.signal, 9);
});

Deno.test("OOM kill under Never: terminated OOMKilled", () => {
  const status = statusOf(never, "app", { props: killed(9, { Result: "oom-kill" }) });
  assert.equal(status.state?.terminated?.reason, "OOMKilled");
});

Deno.test("restartPolicyOf: apps follow the pod, init retry unless Never, sidecars always", () => {
  const table: [string | undefined, ContainerKind, string][] = [
    [undefined, "app", "Always"],
    ["OnFailure", "app", "OnFailure"],
    ["Never", "app", "Never"],
    [undefined, "init", "OnFailure"],
    ["OnFailure", "init", "OnFailure"],
    ["Never", "init", "Never"],
    ["Never", "sidecar", "Always"],
    [undefined, "ephemeral", "Never"],
  ];
  for (const [podPolicy, kind, want] of table) {
    const thePod = pod({ containers: ["app"], restartPolicy: podPolicy });
    assert.equal(restartPolicyOf(thePod, kind), want, `${podPolicy} ${kind}`);
  }
});

Deno.test("willRestart", () => {
  assert.deepEqual(
    [
      willRestart("Always", 0),
      willRestart("Always", 1),
      willRestart("OnFailure", 0),
      willRestart("OnFailure", 1),
      willRestart("Never", 1),
    ],
    [true, true, false, true, false],
  );
});
