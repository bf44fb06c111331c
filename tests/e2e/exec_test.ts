/**
 * End to end, commands run inside containers (src/exec/container.ts) against a real control
 * plane and systemd: `exec` liveness and readiness probes, which see the container's private
 * /tmp, user and environment; postStart and preStop hooks (`exec`, `httpGet`) with the
 * kubelet's order: postStart before the container shows running, preStop before SIGTERM.
 */
import assert from "node:assert/strict";
import type { V1Pod } from "@kubernetes/client-node";
import { containerState, podEvents, startNodeEnv, waitFor, waitForPod } from "./_node_env.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };

const ready = (pod: V1Pod) => pod.status?.containerStatuses?.[0]?.ready === true;

Deno.test("commands in containers end to end: exec probes, lifecycle hooks", opts, async (t) => {
  const started = performance.now();
  const env = await startNodeEnv({ flags: ["--allowed-host-paths", "/srv/hooks"] });
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
      const seen = await podEvents(env, "live");
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

    await t.step(
      "postStart runs before the container shows running, preStop before SIGTERM",
      async () => {
        // The preStop httpGet lands here (the pod's IP is the node's, 127.0.0.1); the answer is
        // held back a moment, so SIGTERM coming after it shows that the hook was waited for.
        const received: number[] = [];
        const server = Deno.serve(
          { hostname: "127.0.0.1", port: 0, onListen() {} },
          async (req) => {
            if (new URL(req.url).pathname === "/prestop") received.push(Date.now() * 1e6);
            await new Promise((r) => setTimeout(r, 500));
            return new Response("bye");
          },
        );
        try {
          assert.equal((await env.system.exec(["mkdir", "-p", "/srv/hooks"])).code, 0);
          const log = (line: string) => `echo "${line} $(date +%s%N)" >> /srv/hooks/log`;
          /** A main process that logs its start and when SIGTERM reaches it. */
          const main = (name: string) => [
            "/bin/sh",
            "-c",
            `trap '${log(`${name} TERM`)}; exit 0' TERM; ${log(`${name} start`)}; ` +
            "while :; do sleep 0.1; done",
          ];
          const volumeMounts = [{ name: "hooks", mountPath: "/srv/hooks" }];
          await env.apply({
            apiVersion: "v1",
            kind: "Pod",
            metadata: { name: "hooks", namespace: "default" },
            spec: {
              nodeName: "n1",
              terminationGracePeriodSeconds: 10,
              containers: [{
                name: "main",
                image: "/bin/sh",
                command: main("main"),
                volumeMounts,
                lifecycle: {
                  postStart: {
                    exec: { command: ["/bin/sh", "-c", `sleep 1; ${log("poststart")}`] },
                  },
                  preStop: { exec: { command: ["/bin/sh", "-c", `${log("prestop")}; sleep 1`] } },
                },
              }, {
                name: "web",
                image: "/bin/sh",
                command: main("web"),
                volumeMounts,
                lifecycle: { preStop: { httpGet: { path: "/prestop", port: server.addr.port } } },
              }],
              volumes: [{ name: "hooks", hostPath: { path: "/srv/hooks" } }],
            },
          });
          const readLog = async () =>
            (await env.system.exec(["cat", "/srv/hooks/log"])).stdout.trim().split("\n");
          await waitForPod(
            env,
            "hooks",
            "running",
            (p) =>
              p.status?.containerStatuses?.find((c) => c.name === "main")?.state?.running !==
                undefined,
          );
          const atRunning = await readLog();
          assert.ok(
            atRunning.some((l) => l.startsWith("poststart ")),
            `postStart finished before the container showed running: ${atRunning}`,
          );

          const deleted = performance.now();
          await env.kubectl(["delete", "pod", "hooks", "--wait=false"]);
          await waitFor(
            "pod hooks gone",
            async () => (await env.getJSON(["pod", "hooks"])) === undefined,
            60_000,
          );
          console.log(`  deleted in ${(performance.now() - deleted) | 0} ms`);
          const lines = await readLog();
          const time = (what: string) => {
            const line = lines.find((l) => l.startsWith(`${what} `));
            assert.ok(line, `"${what}" in ${JSON.stringify(lines)}`);
            return Number(line.split(" ").at(-1));
          };
          const order = ["main start", "poststart", "prestop", "main TERM"].map(time);
          assert.deepEqual(
            [...order].sort((a, b) => a - b),
            order,
            JSON.stringify(lines),
          );
          console.log(
            `  postStart ${(order[1] - order[0]) / 1e6} ms after start; SIGTERM ` +
              `${(order[3] - order[2]) / 1e6} ms after preStop began`,
          );
          assert.equal(received.length, 1, "the httpGet preStop hook ran once");
          assert.ok(
            received[0] < time("web TERM"),
            "web's preStop request came before its SIGTERM",
          );
          console.log(`  web: SIGTERM ${(time("web TERM") - received[0]) / 1e6} ms after its hook`);
        } finally {
          await server.shutdown();
        }
      },
    );

    await t.step(
      "a preStop hook longer than the grace period is cut off; SIGKILL follows",
      async () => {
        await env.apply({
          apiVersion: "v1",
          kind: "Pod",
          metadata: { name: "slowstop", namespace: "default" },
          spec: {
            nodeName: "n1",
            terminationGracePeriodSeconds: 3,
            containers: [{
              name: "app",
              image: "/bin/sh",
              // Ignores SIGTERM: only SIGKILL ends it.
              command: [
                "/bin/sh",
                "-c",
                "trap 'echo TERM >> /srv/hooks/slow' TERM; while :; do sleep 0.1; done",
              ],
              volumeMounts: [{ name: "hooks", mountPath: "/srv/hooks" }],
              lifecycle: {
                preStop: {
                  exec: {
                    command: [
                      "/bin/sh",
                      "-c",
                      "echo prestop >> /srv/hooks/slow; sleep 345; echo prestop-end >> /srv/hooks/slow",
                    ],
                  },
                },
              },
            }],
            volumes: [{ name: "hooks", hostPath: { path: "/srv/hooks" } }],
          },
        });
        await waitForPod(env, "slowstop", "running", (p) => !!containerState(p)?.running);
        const t0 = performance.now();
        await env.kubectl(["delete", "pod", "slowstop", "--wait=false"]);
        await waitFor(
          "pod slowstop gone",
          async () => (await env.getJSON(["pod", "slowstop"])) === undefined,
          60_000,
        );
        console.log(`  gone ${(performance.now() - t0) | 0} ms after the delete (grace 3 s)`);
        const lines = (await env.system.exec(["cat", "/srv/hooks/slow"])).stdout.trim().split("\n");
        assert.deepEqual(lines, ["prestop", "TERM"], "the hook was cut off, then SIGTERM came");
        const left = await env.system.exec(["pgrep", "-f", "sleep 345"]);
        assert.equal(left.stdout, "", "nothing the hook started is left");
      },
    );

    await t.step(
      "a failing postStart kills the container; a failing preStop is reported",
      async () => {
        await env.apply({
          apiVersion: "v1",
          kind: "Pod",
          metadata: { name: "badhook", namespace: "default" },
          spec: {
            nodeName: "n1",
            terminationGracePeriodSeconds: 2,
            containers: [{
              name: "app",
              image: "/bin/sh",
              command: ["/bin/sh", "-c", "sleep 600"],
              lifecycle: {
                postStart: { exec: { command: ["/bin/sh", "-c", "exit 3"] } },
                preStop: { exec: { command: ["/bin/sh", "-c", "exit 4"] } },
              },
            }],
          },
        });
        const reasons = async () => (await podEvents(env, "badhook")).map((e) => e.reason);
        await waitFor(
          "a FailedPostStartHook event",
          async () => (await reasons()).includes("FailedPostStartHook"),
        );
        const restarted = await waitForPod(
          env,
          "badhook",
          "killed and restarted",
          (p) => (p.status?.containerStatuses?.[0]?.restartCount ?? 0) >= 1,
          { timeoutMs: 90_000 },
        );
        assert.ok(restarted.status?.containerStatuses?.[0]?.lastState?.terminated);
        const seen = await podEvents(env, "badhook");
        assert.equal(
          seen.find((e) => e.reason === "FailedPostStartHook")?.message,
          "PostStartHook failed",
        );
        // Killing the container after the failed postStart ran its preStop too (kubelet).
        assert.ok(
          seen.some((e) => e.reason === "FailedPreStopHook"),
          JSON.stringify(seen),
        );
        await env.kubectl(["delete", "pod", "badhook", "--wait=false"]);
      },
    );
  } finally {
    await env.stop();
  }
});
