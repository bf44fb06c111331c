/**
 * Any numeric `runAsUser`, `runAsGroup`, `fsGroup` and `supplementalGroups` end to end, as in a
 * container (issue #18 item 4): ids no host account uses get userdb records under /run/userdb
 * (nss-systemd resolves them for systemd 252 and every process) before the units start, shared
 * between pods using the same id, removed when no pod uses them — also when a pod went while
 * systemk was down: after its restart the records follow the units it finds.
 *
 * @module
 */
import assert from "node:assert/strict";
import type { V1Pod } from "@kubernetes/client-node";
import { type NodeEnv, startNodeEnv, waitFor, waitForPod } from "./_node_env.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };

/** A pod on n1 whose container prints its identity and the owners of its volume, then sleeps. */
function pod(name: string, securityContext: Record<string, unknown>) {
  return {
    apiVersion: "v1",
    kind: "Pod",
    metadata: { name, namespace: "default" },
    spec: {
      nodeName: "n1",
      terminationGracePeriodSeconds: 2,
      securityContext,
      containers: [{
        name: "app",
        image: "/bin/sh",
        command: [
          "/bin/sh",
          "-c",
          'echo "id: $(id)"; touch /data/f; echo "owners: $(stat -c %u:%g /data /data/f | tr "\\n" " ")"; ' +
          "exec sleep infinity",
        ],
        volumeMounts: [{ name: "data", mountPath: "/data" }],
      }],
      volumes: [{ name: "data", emptyDir: {} }],
    },
  };
}

const running = (p: V1Pod) => p.status?.containerStatuses?.[0]?.state?.running !== undefined;

async function journal(env: NodeEnv, name: string): Promise<string> {
  const unit = `systemk.default.${name}.app.service`;
  return (await env.system.exec(["journalctl", "--no-pager", "-o", "cat", "-u", unit])).stdout;
}

/** The records in the test system's /run/userdb, as `<id>.<kind>` names. */
async function records(env: NodeEnv): Promise<string[]> {
  const out = await env.system.exec(["sh", "-c", "ls /run/userdb 2>/dev/null | grep -v ^systemk-"]);
  return out.stdout.split("\n").filter(Boolean).sort();
}

Deno.test(
  "pods run as any numeric id: userdb records made, shared, removed, kept across a restart",
  opts,
  async (t) => {
    const env = await startNodeEnv();
    try {
      await t.step("ids no host account has: records, and the pods run with them", async () => {
        await env.apply(
          pod("a", {
            runAsUser: 5000,
            runAsGroup: 6000,
            fsGroup: 7000,
            supplementalGroups: [8000],
          }),
          pod("b", { runAsUser: 5000 }),
          pod("c", { runAsUser: 5001 }),
        );
        for (const name of ["a", "b", "c"]) await waitForPod(env, name, "Running", running);
        const output = (name: string) =>
          waitFor(`${name}'s output`, async () => {
            const text = await journal(env, name);
            return text.includes("owners:") ? text : undefined;
          });
        const a = await output("a");
        console.log(`  a: ${a.trim().replaceAll("\n", " | ")}`);
        assert.match(
          a,
          /id: uid=5000\(systemk-5000\) gid=6000\(systemk-6000\) groups=6000\(systemk-6000\),7000\(systemk-7000\),8000\(systemk-8000\)/,
        );
        // The volume belongs to the user and the fsGroup; the file to the user and its group.
        assert.match(a, /owners: 5000:7000 5000:6000/);
        assert.match(await output("b"), /id: uid=5000\(systemk-5000\) gid=5000\(systemk-5000\)/);
        assert.deepEqual(await records(env), [
          "5000.group",
          "5000.user",
          "5001.group",
          "5001.user",
          "6000.group",
          "7000.group",
          "8000.group",
        ]);
        const getent = await env.system.exec(["getent", "passwd", "5001"]);
        assert.match(getent.stdout, /^systemk-5001:x:5001:5001:/);
      });

      await t.step(
        "a pod gone while systemk was down: its records go after the restart, the others stay",
        async () => {
          const invocation = async (name: string) =>
            await env.unitProperty(`systemk.default.${name}.app.service`, "InvocationID");
          const before = [await invocation("a"), await invocation("b")];
          await env.stopAgent("SIGKILL");
          await env.kubectl(["delete", "pod", "c", "--grace-period=0", "--force"]);
          await env.startAgent();
          await waitFor(
            "c's records removed",
            async () => !(await records(env)).some((r) => r.startsWith("5001.")),
            60_000,
          );
          assert.deepEqual(await records(env), [
            "5000.group",
            "5000.user",
            "6000.group",
            "7000.group",
            "8000.group",
          ]);
          assert.deepEqual([await invocation("a"), await invocation("b")], before, "not restarted");
        },
      );

      await t.step("records go with the last pod using them", async () => {
        await env.kubectl(["delete", "pod", "a"]);
        // 5000 is b's too; a's groups are a's alone.
        assert.deepEqual(await records(env), ["5000.group", "5000.user"]);
        await env.kubectl(["delete", "pod", "b"]);
        assert.deepEqual(await records(env), []);
      });
    } finally {
      await env.stop();
    }
  },
);
