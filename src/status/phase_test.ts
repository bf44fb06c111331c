import assert from "node:assert/strict";
import type { V1ContainerStatus } from "@kubernetes/client-node";
import { pod } from "./_testing.ts";
import { hasAnyAppContainerStarted, type PodPhase, podPhase } from "./phase.ts";

/** Compact container status: `running`, `started` (running, startup probe passed), `waiting`,
 * `exit:N` (terminated), `crash:N` (waiting with a previous run that exited N). */
function s(name: string, what: string): V1ContainerStatus {
  const base = { name, image: "", imageID: "", ready: false, restartCount: 0 };
  const [kind, code] = what.split(":");
  switch (kind) {
    case "running":
      return { ...base, started: false, state: { running: {} } };
    case "started":
      return { ...base, started: true, state: { running: {} } };
    case "waiting":
      return { ...base, state: { waiting: { reason: "ContainerCreating" } } };
    case "exit":
      return { ...base, state: { terminated: { exitCode: Number(code) } } };
    case "crash":
      return {
        ...base,
        restartCount: 1,
        state: { waiting: { reason: "CrashLoopBackOff" } },
        lastState: { terminated: { exitCode: Number(code) } },
      };
  }
  throw new Error(what);
}

interface Case {
  name: string;
  policy?: string;
  init?: Record<string, string>;
  sidecars?: Record<string, string>;
  app: Record<string, string>;
  terminal?: boolean;
  want: PodPhase;
}

const cases: Case[] = [
  { name: "nothing created yet", app: { a: "waiting" }, want: "Pending" },
  { name: "no status at all", app: { a: "" }, want: "Pending" },
  { name: "all running", app: { a: "running", b: "running" }, want: "Running" },
  { name: "one running, one still waiting", app: { a: "running", b: "waiting" }, want: "Pending" },
  { name: "init running", init: { i: "running" }, app: { a: "waiting" }, want: "Pending" },
  { name: "init waiting", init: { i: "waiting" }, app: { a: "waiting" }, want: "Pending" },
  {
    name: "second init pending",
    init: { i: "exit:0", j: "running" },
    app: { a: "waiting" },
    want: "Pending",
  },
  {
    name: "inits done, app running",
    init: { i: "exit:0" },
    app: { a: "running" },
    want: "Running",
  },
  {
    name: "inits done, app being created",
    init: { i: "exit:0" },
    app: { a: "waiting" },
    want: "Pending",
  },
  {
    name: "init failed, Never",
    policy: "Never",
    init: { i: "exit:1" },
    app: { a: "waiting" },
    want: "Failed",
  },
  {
    name: "init failed, OnFailure (retried)",
    policy: "OnFailure",
    init: { i: "exit:1" },
    app: { a: "waiting" },
    want: "Pending",
  },
  {
    name: "init failed, Always (retried)",
    init: { i: "exit:1" },
    app: { a: "waiting" },
    want: "Pending",
  },
  {
    name: "init crash-looping, Never",
    policy: "Never",
    init: { i: "crash:1" },
    app: { a: "waiting" },
    want: "Failed",
  },
  {
    name: "init crash-looping, Always",
    init: { i: "crash:1" },
    app: { a: "waiting" },
    want: "Pending",
  },
  { name: "Always: exited 0 is restarting", app: { a: "exit:0" }, want: "Running" },
  { name: "Always: exited 1 is restarting", app: { a: "exit:1" }, want: "Running" },
  { name: "Always: crash loop", app: { a: "crash:1" }, want: "Running" },
  {
    name: "Always: one running, one crash-looping",
    app: { a: "running", b: "crash:2" },
    want: "Running",
  },
  {
    name: "OnFailure: all exited 0",
    policy: "OnFailure",
    app: { a: "exit:0", b: "exit:0" },
    want: "Succeeded",
  },
  {
    name: "OnFailure: one failed (restarting)",
    policy: "OnFailure",
    app: { a: "exit:0", b: "exit:1" },
    want: "Running",
  },
  { name: "OnFailure: crash loop", policy: "OnFailure", app: { a: "crash:1" }, want: "Running" },
  {
    name: "Never: all exited 0",
    policy: "Never",
    app: { a: "exit:0", b: "exit:0" },
    want: "Succeeded",
  },
  {
    name: "Never: one failed",
    policy: "Never",
    app: { a: "exit:0", b: "exit:137" },
    want: "Failed",
  },
  {
    name: "Never: one still running",
    policy: "Never",
    app: { a: "running", b: "exit:1" },
    want: "Running",
  },
  { name: "terminal: all exited 0", app: { a: "exit:0" }, terminal: true, want: "Succeeded" },
  {
    name: "terminal: one killed",
    app: { a: "exit:0", b: "exit:143" },
    terminal: true,
    want: "Failed",
  },
  {
    name: "terminal: Always does not keep it Running",
    app: { a: "crash:1" },
    terminal: true,
    want: "Failed",
  },
  {
    name: "sidecar running and started, app running",
    sidecars: { s: "started" },
    app: { a: "running" },
    want: "Running",
  },
  {
    name: "sidecar running, not started yet",
    sidecars: { s: "running" },
    app: { a: "waiting" },
    want: "Pending",
  },
  { name: "sidecar waiting", sidecars: { s: "waiting" }, app: { a: "waiting" }, want: "Pending" },
  {
    name: "sidecar restarting after the app started: stays Running",
    sidecars: { s: "crash:1" },
    app: { a: "running" },
    want: "Running",
  },
  {
    name: "sidecar not started again while the app runs: not back to Pending",
    sidecars: { s: "running" },
    app: { a: "running" },
    want: "Running",
  },
  {
    name: "Never: app done while the sidecar still runs",
    policy: "Never",
    sidecars: { s: "started" },
    app: { a: "exit:0" },
    want: "Running",
  },
  {
    name: "Never: app done, sidecar stopped",
    policy: "Never",
    sidecars: { s: "exit:143" },
    app: { a: "exit:0" },
    want: "Succeeded",
  },
];

for (const c of cases) {
  Deno.test(`podPhase: ${c.name} → ${c.want}`, () => {
    const init = Object.keys(c.init ?? {});
    const sidecars = Object.keys(c.sidecars ?? {});
    const thePod = pod({
      restartPolicy: c.policy,
      initContainers: [...init, ...sidecars.map((name) => ({ name, restartPolicy: "Always" }))],
      containers: Object.keys(c.app),
    });
    const statuses = Object.entries({ ...c.init, ...c.sidecars, ...c.app })
      .filter(([, what]) => what !== "")
      .map(([name, what]) => s(name, what));
    assert.equal(podPhase(thePod, statuses, { podIsTerminal: c.terminal ?? false }), c.want);
  });
}

Deno.test("hasAnyAppContainerStarted looks at app containers only, current or last state", () => {
  const thePod = pod({ initContainers: ["i"], containers: ["a"] });
  assert.equal(hasAnyAppContainerStarted(thePod, [s("i", "exit:0"), s("a", "waiting")]), false);
  assert.equal(hasAnyAppContainerStarted(thePod, [s("a", "running")]), true);
  assert.equal(hasAnyAppContainerStarted(thePod, [s("a", "exit:0")]), true);
  assert.equal(hasAnyAppContainerStarted(thePod, [s("a", "crash:1")]), true);
});
