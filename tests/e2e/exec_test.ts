/**
 * End to end, commands run inside containers (src/exec/container.ts) against a real control
 * plane and systemd: `exec` liveness and readiness probes, which see the container's private
 * /tmp, user and environment.
 */
import assert from "node:assert/strict";
import type { CoreV1Event, V1Pod } from "@kubernetes/client-node";
import { type NodeEnv, startNodeEnv, waitForPod } from "./_node_env.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };

/** The pod's events, oldest first. */
async function events(env: NodeEnv, pod: string): Promise<CoreV1Event[]> {
  const list = await env.getJSON<{ items: CoreV1Event[] }>([
    "events",
    "--field-selector",
    `involvedObject.name=${pod}`,
  ]);
  const time = (e: CoreV1Event) => new Date(e.firstTimestamp ?? e.eventTime!).getTime();
  return (list?.items ?? []).sort((a, b) => time(a) - time(b));
}

const ready = (pod: V1Pod) => pod.status?.containerStatuses?.[0]?.ready === true;

Deno.test("commands in containers end to end: exec probes", opts, async (t) => {
  const started = performance.now();
  const env = await startNodeEnv();
  console.log(`  environment up in ${(performance.now() - started) | 0} ms`);
  try {
    await t.step("a failing exec liveness probe kills and restarts the container", async () => {
      await env.apply({
        apiVersion: "v1",
        kind: "Pod",
        metadata: { name: "live", namespace: "default" },
        spec: {
          nodeName: "n1",
          terminationGracePeriodSeconds: 2,
          containers: [{
            name: "app",
            image: "/bin/sh",
            // The kubelet documentation's example: healthy for a while, then not.
            command: ["/bin/sh", "-c", "touch /tmp/healthy; sleep 4; rm /tmp/healthy; sleep 600"],
            livenessProbe: {
              // /tmp is the container's private one: only visible inside its mount namespace.
              exec: { command: ["cat", "/tmp/healthy"] },
              periodSeconds: 1,
              failureThreshold: 2,
            },
          }],
        },
      });
      const t0 = performance.now();
      const restarted = await waitForPod(env, "live", "restarted by its liveness probe", (p) => {
        const status = p.status?.containerStatuses?.[0];
        return (status?.restartCount ?? 0) >= 1 && !!status?.state?.running;
      }, { timeoutMs: 90_000 });
      console.log(`  restarted after ${(performance.now() - t0) | 0} ms`);
      assert.ok(restarted.status?.containerStatuses?.[0]?.lastState?.terminated);
      const seen = await events(env, "live");
      const unhealthy = seen.findIndex((e) =>
        e.reason === "Unhealthy" &&
        e.message === "Liveness probe failed: cat: /tmp/healthy: No such file or directory\n"
      );
      const killing = seen.findIndex((e) =>
        e.reason === "Killing" && /failed liveness probe, will be restarted/.test(e.message ?? "")
      );
      const summary = seen.map((e) => `${e.reason}: ${e.message}`).join("\n");
      assert.ok(unhealthy >= 0 && killing >= 0, summary);
      assert.ok(unhealthy < killing, `Unhealthy, then Killing:\n${summary}`);
      await env.kubectl(["delete", "pod", "live", "--wait=false"]);
    });

    await t.step("an exec readiness probe flips the container's readiness", async () => {
      await env.apply({
        apiVersion: "v1",
        kind: "Pod",
        metadata: { name: "ready", namespace: "default" },
        spec: {
          nodeName: "n1",
          terminationGracePeriodSeconds: 2,
          securityContext: { runAsUser: 65534 },
          containers: [{
            name: "app",
            image: "/bin/sh",
            command: ["/bin/sh", "-c", "sleep 600"],
            env: [{ name: "FLAG", value: "/data/ready" }],
            workingDir: "/data",
            volumeMounts: [{ name: "data", mountPath: "/data" }],
            readinessProbe: {
              // The container's user, environment and working directory.
              exec: {
                command: [
                  "sh",
                  "-c",
                  'test "$(id -u)" = 65534 && test -e "$FLAG" && test -e ready',
                ],
              },
              periodSeconds: 1,
            },
          }],
          volumes: [{ name: "data", emptyDir: {} }],
        },
      });
      const pod = await waitForPod(
        env,
        "ready",
        "running, not ready",
        (p) => !!p.status?.containerStatuses?.[0]?.state?.running && !ready(p),
      );
      const flag = `/run/systemk/${pod.metadata!.uid}/volumes/emptydir/data/ready`;
      assert.equal((await env.system.exec(["touch", flag])).code, 0);
      await waitForPod(env, "ready", "ready", ready);
      assert.equal((await env.system.exec(["rm", flag])).code, 0);
      const unready = await waitForPod(env, "ready", "not ready again", (p) => !ready(p));
      assert.equal(unready.status?.containerStatuses?.[0]?.restartCount, 0);
      await env.kubectl(["delete", "pod", "ready", "--wait=false"]);
    });
  } finally {
    await env.stop();
  }
});
