import assert from "node:assert/strict";
import type { V1Pod } from "@kubernetes/client-node";
import { NodeShutdownManager } from "./node_shutdown.ts";
import type { ShutdownInhibitor } from "./ports.ts";
import { SYSTEM_CRITICAL_PRIORITY } from "./shutdown_groups.ts";

/** logind as the manager sees it, recording what happens in order. */
function fakeLogind(delaySeconds: number, opts: { raisesTo?: number } = {}) {
  const log: string[] = [];
  let listener: ((active: boolean) => void) | undefined;
  let locks = 0;
  const logind: ShutdownInhibitor = {
    inhibitDelayMaxSeconds: () => Promise.resolve(delaySeconds),
    raiseInhibitDelayMax(seconds) {
      log.push(`raise ${seconds}`);
      return Promise.resolve(opts.raisesTo ?? seconds);
    },
    inhibitShutdown() {
      const n = ++locks;
      log.push(`lock ${n}`);
      return Promise.resolve({
        release: () => {
          log.push(`release ${n}`);
          return Promise.resolve();
        },
      });
    },
    onPrepareForShutdown: (l) => listener = l,
  };
  return { logind, log, announce: (active: boolean) => listener!(active) };
}

const pod = (name: string, spec: Partial<NonNullable<V1Pod["spec"]>> = {}): V1Pod => ({
  metadata: { namespace: "default", name, uid: name },
  spec: { containers: [], ...spec },
});

/** Resolves once `check` holds, trying after each turn of the event loop. */
async function until(check: () => boolean): Promise<void> {
  for (let i = 0; i < 1000 && !check(); i++) await new Promise((r) => setTimeout(r, 1));
  assert.ok(check(), "condition never held");
}

Deno.test("node shutdown: regular pods, then critical ones, statuses flushed, then the lock goes", async () => {
  const { logind, log, announce } = fakeLogind(60);
  const pods = [
    pod("dns", {
      priorityClassName: "system-cluster-critical",
      priority: SYSTEM_CRITICAL_PRIORITY,
    }),
    pod("web", { terminationGracePeriodSeconds: 5 }),
    pod("db"),
  ];
  const manager = new NodeShutdownManager({
    periods: { gracePeriodSeconds: 30, criticalPodsSeconds: 10 },
    pods: () => pods,
    async terminate(p, termination) {
      const { graceSeconds, failure } = termination;
      log.push(`stop ${p.metadata!.name} ${graceSeconds}s ${failure.reason}`);
      assert.equal(
        termination.failure.message,
        "Pod was terminated in response to imminent node shutdown.",
      );
      assert.deepEqual(termination.conditions?.map((c) => [c.type, c.reason]), [
        ["DisruptionTarget", "TerminationByKubelet"],
      ]);
      await Promise.resolve();
      log.push(`stopped ${p.metadata!.name}`);
    },
    flush: () => Promise.resolve(void log.push("flush")),
    onChange: (down) => Promise.resolve(void log.push(`shutting down: ${down}`)),
  });
  await manager.start(logind);
  assert.deepEqual(log, ["lock 1"], "logind already waits long enough: nothing raised");
  assert.equal(manager.admit(pod("new")), undefined);

  announce(true);
  assert.equal(manager.shuttingDown, true);
  assert.deepEqual(manager.admit(pod("late")), {
    reason: "NodeShutdown",
    message: "Pod was rejected as the node is shutting down.",
  });
  await until(() => log.includes("release 1"));
  assert.deepEqual(log.slice(1), [
    "shutting down: true",
    "stop web 5s Terminated",
    "stop db 20s Terminated",
    "stopped web",
    "stopped db",
    "stop dns 10s Terminated",
    "stopped dns",
    "flush",
    "release 1",
  ]);
  await manager.stop();
});

Deno.test("node shutdown: a group that outlasts its period does not hold the next one back", async () => {
  const { logind, log, announce } = fakeLogind(60);
  let unblock!: () => void;
  const stuck = new Promise<void>((r) => unblock = r);
  const manager = new NodeShutdownManager({
    // Regular pods get 0 s: the critical group starts at once.
    periods: { gracePeriodSeconds: 5, criticalPodsSeconds: 5 },
    pods: () => [pod("web"), pod("dns", { priority: SYSTEM_CRITICAL_PRIORITY })],
    terminate(p) {
      log.push(`stop ${p.metadata!.name}`);
      return p.metadata!.name === "web" ? stuck : Promise.resolve();
    },
  });
  await manager.start(logind);
  announce(true);
  await until(() => log.includes("release 1"));
  assert.deepEqual(log, ["lock 1", "stop web", "stop dns", "release 1"]);
  unblock();
  await manager.stop();
});

Deno.test("node shutdown: a cancelled shutdown makes the node ready again and takes a new lock", async () => {
  const { logind, log, announce } = fakeLogind(60);
  const manager = new NodeShutdownManager({
    periods: { gracePeriodSeconds: 30, criticalPodsSeconds: 10 },
    pods: () => [],
    terminate: () => Promise.resolve(),
    onChange: (down) => Promise.resolve(void log.push(`shutting down: ${down}`)),
  });
  await manager.start(logind);
  announce(true);
  announce(false);
  await until(() => log.includes("lock 2"));
  assert.equal(manager.shuttingDown, false);
  assert.equal(manager.admit(pod("new")), undefined);
  assert.deepEqual(log, [
    "lock 1",
    "shutting down: true",
    "release 1",
    "shutting down: false",
    "lock 2",
  ]);
  await manager.stop();
  assert.equal(log.at(-1), "release 2", "systemk stopping lets a shutdown go on");
});

Deno.test("node shutdown: logind's delay is raised to the grace period, or graceful shutdown is off", async () => {
  const short = fakeLogind(5);
  const options = {
    periods: { gracePeriodSeconds: 30, criticalPodsSeconds: 10 },
    pods: () => [],
    terminate: () => Promise.resolve(),
  };
  const raised = new NodeShutdownManager(options);
  await raised.start(short.logind);
  assert.deepEqual(short.log, ["raise 30", "lock 1"]);
  await raised.stop();

  const stubborn = fakeLogind(5, { raisesTo: 5 });
  const refused = new NodeShutdownManager(options);
  await assert.rejects(
    () => refused.start(stubborn.logind),
    /InhibitDelayMaxSec stays 5 s after systemk raised it to 30 s \(--shutdown-grace-period\)/,
  );
  assert.deepEqual(stubborn.log, ["raise 30"], "no lock without the time to use it");
});
