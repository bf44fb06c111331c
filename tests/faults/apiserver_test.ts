/**
 * Fault: the apiserver and etcd stopped for a while and started again (same ports, same data).
 * Running pods keep running (checked inside systemd while the API is away), a pod created just
 * before the stop runs, a container that exits during the outage reports it afterwards, the
 * node's Lease is renewed again and the pod watch re-lists (a pod created afterwards runs).
 *
 * The issue asks for 60 s; CI stops the API for 20 s. `FAULT_APISERVER_DOWN_S=<n>` sets it.
 */
import assert from "node:assert/strict";
import type { V1Lease } from "@kubernetes/client-node";
import { containerState, startNodeEnv, waitFor, waitForPod } from "../e2e/_node_env.ts";
import {
  assertNothingLost,
  envInt,
  FAULT_TEST_OPTS,
  ready,
  RunLedger,
  sleeper,
  unitRuns,
} from "./_faults.ts";

const DOWN_S = envInt("FAULT_APISERVER_DOWN_S", 20);
const EXITER_UNIT = "systemk.default.exiter.c.service";

/** A pod whose container exits with code 3 when sent SIGUSR1, and is not restarted. */
const exiter = {
  apiVersion: "v1",
  kind: "Pod",
  metadata: { name: "exiter", namespace: "default" },
  spec: {
    nodeName: "n1",
    restartPolicy: "Never",
    terminationGracePeriodSeconds: 2,
    containers: [{
      name: "c",
      image: "/bin/sh",
      command: ["/bin/sh", "-c", 'trap "exit 3" USR1; while :; do sleep 0.2; done'],
    }],
  },
};

Deno.test("faults: the apiserver and etcd down for a while", FAULT_TEST_OPTS, async () => {
  const env = await startNodeEnv();
  const lease = async () =>
    (await env.getJSON<V1Lease>(["lease", "n1", "--namespace", "kube-node-lease"]))?.spec
      ?.renewTime;
  try {
    await env.apply(sleeper("steady"), exiter);
    await waitForPod(env, "steady", "Running", ready);
    await waitForPod(env, "exiter", "Running", ready);
    const ledger = new RunLedger();
    await ledger.note(env);
    const renewedBefore = await waitFor("the node's Lease", lease);

    // Created just before the outage: systemk may or may not have seen it when the API goes.
    await env.apply(sleeper("late"));
    const stopped = performance.now();
    await env.cluster.stopAPIServer();
    console.log(`  apiserver and etcd stopped for ${DOWN_S} s`);
    await env.system.exec([
      "systemctl",
      "kill",
      "--kill-whom=main",
      "--signal=SIGUSR1",
      EXITER_UNIT,
    ]);
    await waitFor(
      "exiter's container to exit",
      async () => (await env.unitProperty(EXITER_UNIT, "ActiveState")) !== "active",
    );
    // A duration is the point: the outage lasts DOWN_S seconds.
    await new Promise((r) => setTimeout(r, DOWN_S * 1000 - (performance.now() - stopped)));
    const during = await unitRuns(env);
    assert.equal(during.get("systemk.default.steady.c.service")?.activeState, "active");
    assert.deepEqual((await ledger.restarted(env)).restarted, [], "no unit restarted");
    const agentState = await env.unitProperty("systemk-agent.service", "ActiveState");
    assert.equal(agentState, "active", "systemk survives the outage");

    const restarted = performance.now();
    await env.cluster.startAPIServer();
    console.log(`  apiserver ready ${(performance.now() - restarted) | 0} ms after its start`);
    await waitForPod(env, "late", "Running", ready, { timeoutMs: 90_000 });
    const exited = await waitForPod(
      env,
      "exiter",
      "reporting its exit during the outage",
      (p) => containerState(p)?.terminated?.exitCode === 3 && p.status?.phase === "Failed",
      { timeoutMs: 90_000 },
    );
    assert.equal(exited.status?.containerStatuses?.[0].restartCount, 0);
    console.log(`  statuses caught up ${(performance.now() - restarted) | 0} ms after`);
    const renewedAfter = await waitFor(
      "the Lease renewed after the outage",
      async () => {
        const t = await lease();
        return t && new Date(t) > new Date(renewedBefore) ? t : undefined;
      },
      60_000,
    );
    console.log(`  Lease renewed ${renewedBefore} → ${renewedAfter}`);
    // The watch re-listed: a pod created now is seen and run.
    await env.apply(sleeper("after"));
    await waitForPod(env, "after", "Running", ready, { timeoutMs: 90_000 });
    console.log(`  new pod Running ${(performance.now() - restarted) | 0} ms after the restart`);

    await assertNothingLost(env, {
      count: 4,
      ready: (p) => p.metadata?.name === "exiter" || ready(p),
    });
    const { restarted: changed, kept } = await ledger.restarted(env);
    assert.deepEqual(changed, [], "no unit restarted");
    console.log(`  down ${DOWN_S} s, pods: 4, units kept: ${kept}, restarted: 0, lost: 0`);
  } finally {
    await env.stop();
  }
});
