/**
 * End to end, the controllers' workloads on a tainted systemk node: a Deployment rolls out and
 * rolls over, a DaemonSet lands, Jobs succeed and fail with their exit code.
 */
import assert from "node:assert/strict";
import type { V1Job, V1Pod } from "@kubernetes/client-node";
import {
  containerState,
  describeNode,
  startNodeEnv,
  SYSTEMK_TOLERATION,
  waitFor,
  waitForPod,
} from "./_node_env.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };

/** A pod template running `sleep`, tolerating systemk's taint. */
function template(labels: Record<string, string>, env: Record<string, string> = {}) {
  return {
    metadata: { labels },
    spec: {
      tolerations: [SYSTEMK_TOLERATION],
      terminationGracePeriodSeconds: 5,
      containers: [{
        name: "app",
        image: "/bin/sleep",
        command: ["/bin/sleep", "infinity"],
        env: Object.entries(env).map(([name, value]) => ({ name, value })),
      }],
    },
  };
}

function job(name: string, script: string) {
  return {
    apiVersion: "batch/v1",
    kind: "Job",
    metadata: { name, namespace: "default" },
    spec: {
      backoffLimit: 0,
      template: {
        spec: {
          tolerations: [SYSTEMK_TOLERATION],
          restartPolicy: "Never",
          containers: [{ name: "job", image: "/bin/sh", command: ["/bin/sh", "-c", script] }],
        },
      },
    },
  };
}

Deno.test("node mode end to end: Deployment, DaemonSet, Jobs", opts, async (t) => {
  const started = performance.now();
  const env = await startNodeEnv({ taint: true });
  console.log(`  environment up in ${(performance.now() - started) | 0} ms`);
  const pods = async (selector: string, namespace = "default") =>
    (await env.getJSON<{ items: V1Pod[] }>(["pods", "-n", namespace, "-l", selector]))?.items ??
      [];
  try {
    // The scheduler only places pods once the node is Ready and its not-ready taint is gone.
    await waitFor("node n1 schedulable", async () => {
      const node = await env.getJSON<{ spec?: { taints?: { key: string }[] } }>(["node", "n1"]);
      return node && !node.spec?.taints?.some((t) => t.key.startsWith("node.kubernetes.io/"));
    });

    await t.step(
      "a Deployment of 3 replicas rolls out, a rolling update replaces them",
      async () => {
        const deployment = (version: string) => ({
          apiVersion: "apps/v1",
          kind: "Deployment",
          metadata: { name: "web", namespace: "default" },
          spec: {
            replicas: 3,
            selector: { matchLabels: { app: "web" } },
            strategy: { rollingUpdate: { maxUnavailable: 1, maxSurge: 1 } },
            template: template({ app: "web" }, { VERSION: version }),
          },
        });
        const created = performance.now();
        await env.apply(deployment("1"));
        await env.kubectl(["rollout", "status", "deployment/web", "--timeout=90s"]);
        console.log(`  rollout of 3 replicas: ${(performance.now() - created) | 0} ms`);
        const first = await pods("app=web");
        assert.equal(first.length, 3);
        assert.ok(first.every((p) => p.status?.phase === "Running"));
        const firstUnits = await env.units();
        assert.equal(firstUnits.length, 3, firstUnits.join(" "));

        const updated = performance.now();
        await env.apply(deployment("2"));
        await env.kubectl(["rollout", "status", "deployment/web", "--timeout=90s"]);
        console.log(`  rolling update of 3 replicas: ${(performance.now() - updated) | 0} ms`);
        // Old pods terminate after the rollout reports done; wait for the API and systemd to agree.
        const second = await waitFor(
          "exactly the 3 new pods",
          async () => {
            const now = await pods("app=web");
            return now.length === 3 && now.every((p) => !p.metadata?.deletionTimestamp)
              ? now
              : undefined;
          },
          60_000,
          () => describeNode(env),
        );
        const oldNames = new Set(first.map((p) => p.metadata?.name));
        for (const pod of second) {
          assert.ok(!oldNames.has(pod.metadata?.name), `${pod.metadata?.name} is new`);
          assert.equal(pod.status?.phase, "Running");
          assert.deepEqual(pod.spec?.containers[0].env, [{ name: "VERSION", value: "2" }]);
        }
        const units = await waitFor(
          "only the new pods' units",
          async () => {
            const names = await env.units();
            return names.length === 3 ? names : undefined;
          },
          30_000,
          () => describeNode(env),
        );
        assert.deepEqual(
          units.sort(),
          second.map((p) => `systemk.default.${p.metadata?.name}.app.service`).sort(),
        );
        // The environment reaches the process from the unit's root-only EnvironmentFile=
        // (no Environment= in the unit): read what the running process got.
        for (const unit of units) {
          const pid = await env.unitProperty(unit, "MainPID");
          const environ = await env.system.exec(["cat", `/proc/${pid}/environ`]);
          assert.match(environ.stdout, /(^|\0)VERSION=2\0/);
        }
        await env.kubectl(["delete", "deployment", "web", "--wait=false"]);
      },
    );

    await t.step("a DaemonSet (in its own namespace) lands one pod on the node", async () => {
      await env.apply(
        { apiVersion: "v1", kind: "Namespace", metadata: { name: "infra" } },
        {
          apiVersion: "apps/v1",
          kind: "DaemonSet",
          metadata: { name: "agent", namespace: "infra" },
          spec: {
            selector: { matchLabels: { app: "agent" } },
            template: template({ app: "agent" }),
          },
        },
      );
      // Not `rollout status`: it can report done before the controller has counted the node
      // (the new namespace's ServiceAccount may still be missing when it first tries).
      const landed = await waitFor(
        "the DaemonSet's pod Running",
        async () => {
          const found = await pods("app=agent", "infra");
          return found.some((p) => p.status?.phase === "Running") ? found : undefined;
        },
        60_000,
        () => describeNode(env),
      );
      assert.equal(landed.length, 1);
      assert.equal(landed[0].spec?.nodeName, "n1");
      assert.equal(landed[0].status?.phase, "Running");
      const unit = `systemk.infra.${landed[0].metadata?.name}.app.service`;
      // The pod shows Running once its process runs; systemd may finish the start job
      // (activating → active) a moment later.
      await waitFor(
        `${unit} active`,
        async () => await env.unitProperty(unit, "ActiveState") === "active",
        30_000,
      );
      await env.kubectl(["delete", "daemonset", "agent", "-n", "infra"]);
      await waitFor(
        "the DaemonSet's pod and unit gone",
        async () =>
          (await pods("app=agent", "infra")).length === 0 &&
          !(await env.units()).includes(unit),
      );
    });

    await t.step("a Job's pod Succeeds; a failing one Fails with exit code 3", async () => {
      await env.apply(job("ok", "echo done"), job("fail", "echo failing; exit 3"));
      const done = await waitFor(
        "Job ok Complete",
        async () => {
          const j = await env.getJSON<V1Job>(["job", "ok"]);
          return j?.status?.conditions?.some((c) => c.type === "Complete" && c.status === "True")
            ? j
            : undefined;
        },
        60_000,
        () => describeNode(env),
      );
      assert.equal(done.status?.succeeded, 1);
      const [okPod] = await pods("job-name=ok");
      assert.equal(okPod.status?.phase, "Succeeded");
      assert.equal(containerState(okPod)?.terminated?.exitCode, 0);

      const failed = await waitFor(
        "Job fail Failed",
        async () => {
          const j = await env.getJSON<V1Job>(["job", "fail"]);
          return j?.status?.conditions?.some((c) => c.type === "Failed" && c.status === "True")
            ? j
            : undefined;
        },
        60_000,
        () => describeNode(env),
      );
      assert.equal(failed.status?.failed, 1);
      const [failPod] = await pods("job-name=fail");
      const pod = await waitForPod(
        env,
        failPod.metadata!.name!,
        "Failed",
        (p) => p.status?.phase === "Failed",
      );
      assert.equal(containerState(pod)?.terminated?.exitCode, 3);
      assert.equal(containerState(pod)?.terminated?.reason, "Error");
    });

    await t.step({
      name: "a crashing container is restarted with the kubelet's back-off: 10 s, then 20 s",
      fn: async () => {
        await env.apply({
          apiVersion: "v1",
          kind: "Pod",
          metadata: { name: "crash", namespace: "default" },
          spec: {
            nodeName: "n1",
            containers: [{ name: "c", image: "/bin/sh", command: ["/bin/sh", "-c", "exit 1"] }],
          },
        });
        /** The pod waits in CrashLoopBackOff after `restarts` restarts, for `delay`. */
        const backingOff = (restarts: number, delay: string) =>
          waitForPod(
            env,
            "crash",
            `restarted ${restarts} times and backing off ${delay}`,
            (p) => {
              const status = p.status?.containerStatuses?.[0];
              const waiting = status?.state?.waiting;
              return status?.restartCount === restarts && waiting?.reason === "CrashLoopBackOff" &&
                !!waiting.message?.startsWith(`back-off ${delay} restarting failed container=c `);
            },
          );
        const terminated = (p: V1Pod) => p.status?.containerStatuses?.[0]?.lastState?.terminated;
        const first = await backingOff(0, "10s");
        // The delay doubles: the second crash backs off 20 s.
        const second = await backingOff(1, "20s");
        // The restart waited the first delay (systemd's timestamps, in whole seconds here).
        const waited = (new Date(terminated(second)!.startedAt!).getTime() -
          new Date(terminated(first)!.finishedAt!).getTime()) / 1000;
        console.log(`  first back-off: restarted ${waited} s after the crash`);
        assert.ok(waited >= 9, `restarted ${waited} s after the first crash`);
        const events = await env.kubectl([
          "get",
          "events",
          "--field-selector",
          "involvedObject.name=crash,reason=BackOff",
        ]);
        assert.match(events, /BackOff/);
        await env.kubectl(["delete", "pod", "crash", "--wait=false"]);
      },
    });
  } finally {
    await env.stop();
  }
});
