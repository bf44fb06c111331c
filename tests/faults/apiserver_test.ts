/**
 * Faults of the control plane, on one node: etcd restarted alone under a running apiserver, then
 * the apiserver and etcd stopped together for a while (same ports, same data on restart). In
 * each outage running pods keep running (checked inside systemd while it lasts), a pod created
 * just before the stop runs, a container that exits during the outage reports it afterwards,
 * the node's Lease is renewed again and the pod watch recovers (a pod created afterwards runs).
 *
 * The issue asks for 60 s; CI's regular run stops the API for 20 s and etcd for 10 s
 * (`FAULT_APISERVER_DOWN_S=<n>`, `FAULT_ETCD_DOWN_S=<n>` set them; `deno task faults:full`).
 */
import assert from "node:assert/strict";
import type { V1Lease } from "@kubernetes/client-node";
import type { StoppableComponent } from "../harness/cluster.ts";
import {
  containerState,
  type NodeEnv,
  startNodeEnv,
  waitFor,
  waitForPod,
} from "../e2e/_node_env.ts";
import {
  assertNothingLost,
  envInt,
  FAULT_TEST_OPTS,
  ready,
  RunLedger,
  sleeper,
  unitRuns,
} from "./_faults.ts";

const APISERVER_DOWN_S = envInt("FAULT_APISERVER_DOWN_S", 20);
const ETCD_DOWN_S = envInt("FAULT_ETCD_DOWN_S", 10);

/** A pod whose container exits with code 3 when sent SIGUSR1, and is not restarted. */
function exiter(name: string) {
  return {
    apiVersion: "v1",
    kind: "Pod",
    metadata: { name, namespace: "default" },
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
}

/** An exiter's container ended with code 3 and the pod Failed. */
const exitedWith3 = (p: Parameters<typeof ready>[0]) =>
  containerState(p)?.terminated?.exitCode === 3 && p.status?.phase === "Failed";

/** The node's Lease renewTime. */
const leaseRenewed = async (env: NodeEnv) =>
  (await env.getJSON<V1Lease>(["lease", "n1", "--namespace", "kube-node-lease"]))?.spec
    ?.renewTime;

/**
 * One outage: `stop` (in that order) stopped for `downS` seconds, then started again in reverse
 * order. Checks everything the module's header lists; `tag` names the pods it creates.
 */
async function outage(
  env: NodeEnv,
  tag: string,
  stop: StoppableComponent[],
  downS: number,
) {
  const exiterName = `exiter-${tag}`;
  await env.apply(exiter(exiterName));
  await waitForPod(env, exiterName, "Running", ready);
  const ledger = new RunLedger();
  await ledger.note(env);
  const renewedBefore = await waitFor("the node's Lease", () => leaseRenewed(env));

  // Created just before the outage: systemk may or may not have seen it when the API goes.
  const late = `late-${tag}`;
  await env.apply(sleeper(late));
  const stopped = performance.now();
  await env.cluster.stopComponents(stop);
  console.log(`  ${stop.join(" and ")} stopped for ${downS} s`);
  const exiterUnit = `systemk.default.${exiterName}.c.service`;
  await env.system.exec(["systemctl", "kill", "--kill-whom=main", "--signal=SIGUSR1", exiterUnit]);
  await waitFor(
    `${exiterName}'s container to exit`,
    async () => (await env.unitProperty(exiterUnit, "ActiveState")) !== "active",
  );
  // A duration is the point: the outage lasts downS seconds.
  await new Promise((r) => setTimeout(r, downS * 1000 - (performance.now() - stopped)));
  const during = await unitRuns(env);
  assert.equal(during.get("systemk.default.steady.c.service")?.activeState, "active");
  assert.deepEqual((await ledger.restarted(env)).restarted, [], "no unit restarted");
  const agentState = await env.unitProperty("systemk-agent.service", "ActiveState");
  assert.equal(agentState, "active", "systemk survives the outage");

  const restarted = performance.now();
  await env.cluster.startComponents([...stop].reverse());
  console.log(`  apiserver ready ${(performance.now() - restarted) | 0} ms after the start`);
  await waitForPod(env, late, "Running", ready, { timeoutMs: 90_000 });
  const exited = await waitForPod(
    env,
    exiterName,
    "reporting its exit during the outage",
    exitedWith3,
    { timeoutMs: 90_000 },
  );
  assert.equal(exited.status?.containerStatuses?.[0].restartCount, 0);
  console.log(`  statuses caught up ${(performance.now() - restarted) | 0} ms after`);
  const renewedAfter = await waitFor(
    "the Lease renewed after the outage",
    async () => {
      const t = await leaseRenewed(env);
      return t && new Date(t) > new Date(renewedBefore) ? t : undefined;
    },
    60_000,
  );
  console.log(`  Lease renewed ${renewedBefore} → ${renewedAfter}`);
  // The watch recovered: a pod created now is seen and run.
  const after = `after-${tag}`;
  await env.apply(sleeper(after));
  await waitForPod(env, after, "Running", ready, { timeoutMs: 90_000 });
  console.log(`  new pod Running ${(performance.now() - restarted) | 0} ms after the restart`);

  const { pods } = await assertNothingLost(env, {
    ready: (p) => p.metadata?.name?.startsWith("exiter-") || ready(p),
  });
  const { restarted: changed, kept, gone } = await ledger.restarted(env);
  assert.deepEqual(changed, [], "no unit restarted");
  assert.deepEqual(gone, [], "the units that ran through the outage are all there");
  assert.ok(kept >= 2, "steady and the exiter ran through the outage");
  console.log(
    `  ${stop.join(" and ")} down ${downS} s, pods: ${pods.length}, units kept: ${kept}, ` +
      `restarted: 0, lost: 0`,
  );
}

Deno.test(
  "faults: etcd restarted alone, then the apiserver and etcd down",
  FAULT_TEST_OPTS,
  async (t) => {
    const env = await startNodeEnv();
    try {
      await env.apply(sleeper("steady"));
      await waitForPod(env, "steady", "Running", ready);
      await t.step(
        `etcd stopped for ${ETCD_DOWN_S} s under a running apiserver`,
        () => outage(env, "etcd", ["etcd"], ETCD_DOWN_S),
      );
      await t.step(
        `the apiserver and etcd stopped for ${APISERVER_DOWN_S} s`,
        () => outage(env, "api", ["kube-apiserver", "etcd"], APISERVER_DOWN_S),
      );
    } finally {
      await env.stop();
    }
  },
);
