/**
 * End to end, systemk going away: killed (SIGKILL) in the middle of a Deployment's rolling
 * update and started again, it loses and duplicates nothing and restarts no running unit;
 * stopped for longer than the node monitor grace period, the node goes NotReady, and when
 * systemk returns the node is Ready and the pods that kept running are reported Running again.
 */
import assert from "node:assert/strict";
import type { V1Node, V1Pod } from "@kubernetes/client-node";
import { describeNode, type NodeEnv, startNodeEnv, waitFor, waitForPod } from "./_node_env.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };

/**
 * systemk renews its Lease every 10 s; the node lifecycle controller looks every 2 s, so it sees
 * a renewal at most 12 s after the previous one, and 16 s of silence means systemk is gone.
 */
const CONTROLLER_MANAGER_FLAGS = ["--node-monitor-period=2s", "--node-monitor-grace-period=16s"];

const ready = (pod: V1Pod) =>
  pod.status?.phase === "Running" &&
  pod.status.conditions?.find((c) => c.type === "Ready")?.status === "True";

/**
 * The Deployment `roll`. Version 2 has new pods wait 2 s before they count as available, which
 * holds the rolling update open long enough to kill systemk in its middle.
 */
function deployment(replicas: number, version: string) {
  return {
    apiVersion: "apps/v1",
    kind: "Deployment",
    metadata: { name: "roll", namespace: "default" },
    spec: {
      replicas,
      minReadySeconds: version === "1" ? 0 : 2,
      selector: { matchLabels: { app: "roll" } },
      strategy: { rollingUpdate: { maxUnavailable: 1, maxSurge: 2 } },
      template: {
        metadata: { labels: { app: "roll" } },
        spec: {
          terminationGracePeriodSeconds: 5,
          containers: [{
            name: "app",
            image: "/bin/sleep",
            command: ["/bin/sleep", "infinity"],
            env: [{ name: "VERSION", value: version }],
          }],
        },
      },
    },
  };
}

/** Every pod of the node in the API, with the unit of each of its containers. */
async function podsAndUnits(env: NodeEnv) {
  const pods = (await env.getJSON<{ items: V1Pod[] }>(["pods", "--all-namespaces"]))?.items ?? [];
  const expected = pods.flatMap((p) =>
    (p.spec?.containers ?? []).map((c) =>
      `systemk.${p.metadata?.namespace}.${p.metadata?.name}.${c.name}.service`
    )
  );
  return { pods, expected: expected.sort(), units: (await env.units()).sort() };
}

/** InvocationID of each unit, by unit name. */
async function invocations(env: NodeEnv, units: string[]): Promise<Map<string, string>> {
  const ids = await Promise.all(units.map((u) => env.unitProperty(u, "InvocationID")));
  return new Map(units.map((u, i) => [u, ids[i]]));
}

/** A pod bound to n1 that sleeps. */
function sleeper(name: string) {
  return {
    apiVersion: "v1",
    kind: "Pod",
    metadata: { name, namespace: "default" },
    spec: {
      nodeName: "n1",
      terminationGracePeriodSeconds: 2,
      containers: [{ name: "c", image: "/bin/sleep", command: ["/bin/sleep", "infinity"] }],
    },
  };
}

const readyCondition = (node?: V1Node) =>
  node?.status?.conditions?.find((c) => c.type === "Ready")?.status;

Deno.test(
  "node mode end to end: systemk killed and restarted, node NotReady and back",
  opts,
  async (t) => {
    const started = performance.now();
    const env = await startNodeEnv({
      cluster: { controllerManagerFlags: CONTROLLER_MANAGER_FLAGS },
    });
    console.log(`  environment up in ${(performance.now() - started) | 0} ms`);
    const describe = () => describeNode(env);
    try {
      await waitFor("node n1 schedulable", async () => {
        const node = await env.getJSON<V1Node>(["node", "n1"]);
        return readyCondition(node) === "True" &&
          !node?.spec?.taints?.some((t) => t.key.startsWith("node.kubernetes.io/"));
      });

      await t.step(
        "SIGKILL mid-rollout: nothing lost, nothing duplicated, nothing restarted",
        async () => {
          await env.apply(sleeper("steady"), deployment(4, "1"));
          await env.kubectl(["rollout", "status", "deployment/roll", "--timeout=90s"]);
          await waitForPod(env, "steady", "Running", ready);
          const bootID = (await env.getJSON<V1Node>(["node", "n1"]))?.status?.nodeInfo?.bootID;

          await env.apply(deployment(4, "2"));
          // Kill in the middle of the rollout.
          await waitFor("the rolling update under way", async () => {
            const { pods } = await podsAndUnits(env);
            const roll = pods.filter((p) => p.metadata?.labels?.app === "roll");
            // A new pod already running (its unit must survive the kill untouched) while old
            // ones are still there.
            return roll.some((p) => p.spec?.containers[0].env?.[0].value === "2" && ready(p)) &&
              roll.length > 4;
          });
          const beforeKill = await podsAndUnits(env);
          const runningAtKill = await invocations(
            env,
            beforeKill.pods.filter(ready).map((p) =>
              `systemk.default.${p.metadata?.name}.${p.spec?.containers[0].name}.service`
            ).filter((u) => beforeKill.units.includes(u)),
          );
          await env.stopAgent("SIGKILL");
          console.log(
            `  killed with ${beforeKill.pods.length} pods in the API, ${beforeKill.units.length} units`,
          );
          const restarted = performance.now();
          await env.startAgent();
          await env.kubectl(["rollout", "status", "deployment/roll", "--timeout=90s"]);
          const after = await waitFor(
            "API and systemd to agree on exactly the pods that exist",
            async () => {
              const now = await podsAndUnits(env);
              const settled = now.pods.length === 5 && now.pods.every(ready) &&
                now.pods.every((p) => !p.metadata?.deletionTimestamp) &&
                JSON.stringify(now.units) === JSON.stringify(now.expected);
              return settled ? now : undefined;
            },
            90_000,
            describe,
          );
          console.log(`  restart → rollout settled: ${(performance.now() - restarted) | 0} ms`);
          for (const pod of after.pods.filter((p) => p.metadata?.labels?.app === "roll")) {
            assert.equal(pod.spec?.containers[0].env?.[0].value, "2");
          }
          // No unit of a pod that is gone, and one unit per container of every pod.
          assert.deepEqual(after.units, after.expected);
          // Units that ran through the restart were adopted, not restarted.
          let kept = 0;
          for (const [unit, id] of runningAtKill) {
            if (!after.units.includes(unit)) continue;
            assert.equal(await env.unitProperty(unit, "InvocationID"), id, `${unit} restarted`);
            kept++;
          }
          console.log(`  ${kept} unit(s) running at the kill kept their InvocationID`);
          assert.ok(kept >= 1, "steady at least ran through the restart");
          const node = await env.getJSON<V1Node>(["node", "n1"]);
          assert.equal(node?.status?.nodeInfo?.bootID, bootID, "same boot, same boot id");
        },
      );

      await t.step(
        "systemk down: node NotReady; back: Ready, pods Running again, changes made meanwhile applied",
        async () => {
          await env.apply(sleeper("doomed"), sleeper("forced"));
          await waitForPod(env, "doomed", "Running", ready);
          await waitForPod(env, "forced", "Running", ready);
          const before = await invocations(env, ["systemk.default.steady.c.service"]);
          await env.stopAgent("SIGTERM");
          // While systemk is away: one pod deleted, one force-deleted, one created.
          await env.kubectl(["delete", "pod", "doomed", "--wait=false"]);
          await env.kubectl(["delete", "pod", "forced", "--grace-period=0", "--force"]);
          await env.apply(sleeper("latecomer"));
          const stopped = performance.now();
          await waitFor(
            "node n1 NotReady",
            async () => readyCondition(await env.getJSON<V1Node>(["node", "n1"])) === "Unknown",
            60_000,
          );
          console.log(`  NotReady ${(performance.now() - stopped) | 0} ms after systemk stopped`);
          // The node lifecycle controller marks the pods of a lost node not ready.
          await waitForPod(
            env,
            "steady",
            "marked not ready",
            (p) => p.status?.conditions?.find((c) => c.type === "Ready")?.status === "False",
            { timeoutMs: 30_000 },
          );
          assert.equal(
            await env.unitProperty("systemk.default.steady.c.service", "ActiveState"),
            "active",
            "pods keep running while systemk is down",
          );

          const returned = performance.now();
          await env.startAgent();
          await waitFor(
            "node n1 Ready",
            async () => readyCondition(await env.getJSON<V1Node>(["node", "n1"])) === "True",
            60_000,
            describe,
          );
          console.log(`  Ready ${(performance.now() - returned) | 0} ms after systemk returned`);
          await waitFor(
            "the pods deleted meanwhile gone, with their units",
            async () => {
              const { pods, units } = await podsAndUnits(env);
              const names = pods.map((p) => p.metadata?.name);
              return !names.includes("doomed") && !names.includes("forced") &&
                !units.some((u) => /\.(doomed|forced)\./.test(u));
            },
            30_000,
            describe,
          );
          await waitForPod(env, "latecomer", "Running", ready);
          const pods = (await env.getJSON<{ items: V1Pod[] }>(["pods"]))?.items ?? [];
          await Promise.all(
            pods.map((p) => waitForPod(env, p.metadata!.name!, "Ready again", ready)),
          );
          console.log(
            `  all ${pods.length} pods Ready ${(performance.now() - returned) | 0} ms after`,
          );
          assert.deepEqual(
            await invocations(env, ["systemk.default.steady.c.service"]),
            before,
            "steady kept running",
          );
          const { units, expected } = await podsAndUnits(env);
          assert.deepEqual(units, expected);
        },
      );
    } finally {
      await env.stop();
    }
  },
);
