import assert from "node:assert/strict";
import type { V1Node, V1Pod } from "@kubernetes/client-node";
import { startNodeEnv, waitFor } from "./_node_env.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };

Deno.test(
  "node mode end to end: node Ready, a bash loop pod runs, deletes cleanly",
  opts,
  async (t) => {
    const env = await startNodeEnv({ nodeName: "n1" });
    const log = async () => `--- systemk log ---\n${await env.agentLog()}`;
    try {
      await t.step("the node registers Ready with labels, no taint, addresses", async () => {
        const node = await waitFor(
          "node n1 Ready",
          async () => {
            const n = await env.getJSON<V1Node>(["node", "n1"]);
            return n?.status?.conditions?.find((c) => c.type === "Ready")?.status === "True"
              ? n
              : undefined;
          },
          60_000,
          log,
        );
        assert.equal(node.metadata?.labels?.["kubernetes.io/os"], "linux");
        assert.equal(node.metadata?.labels?.["node.kubernetes.io/instance-type"], "systemk");
        assert.equal(node.spec?.taints, undefined);
        assert.ok(
          node.status?.addresses?.some((a) => a.type === "InternalIP" && a.address === "127.0.0.1"),
        );
        assert.match(node.status?.nodeInfo?.containerRuntimeVersion ?? "", /^systemd:\/\/\d+/);
      });

      await t.step(
        "a bash loop pod (script as one argv word) reaches Running with the node IP",
        async () => {
          await env.kubectl(
            ["apply", "-f", "-"],
            JSON.stringify({
              apiVersion: "v1",
              kind: "Pod",
              metadata: { name: "loop", namespace: "default" },
              spec: {
                nodeName: "n1",
                containers: [{
                  name: "loop",
                  image: "/bin/bash",
                  command: ["/bin/bash", "-c", "while true; do echo tick; sleep 1; done"],
                }],
              },
            }),
          );
          const pod = await waitFor(
            "pod loop Running",
            async () => {
              const p = await env.getJSON<V1Pod>(["pod", "loop"]);
              return p?.status?.phase === "Running" && p.status.containerStatuses?.[0]?.ready
                ? p
                : undefined;
            },
            60_000,
            log,
          );
          assert.equal(pod.status?.podIP, "127.0.0.1");
          assert.match(pod.status?.containerStatuses?.[0]?.containerID ?? "", /^systemd:\/\//);
          const journal = await waitFor("tick in the journal", async () => {
            const out = await env.system.exec([
              "journalctl",
              "--no-pager",
              "-u",
              "systemk.default.loop.loop.service",
            ]);
            return out.stdout.includes("tick") ? out.stdout : undefined;
          });
          assert.match(journal, /tick/);
          const events = await env.kubectl([
            "get",
            "events",
            "--field-selector",
            "involvedObject.name=loop",
          ]);
          assert.match(events, /Started/);
        },
      );

      await t.step("deleting the pod stops its unit and removes the API object", async () => {
        await env.kubectl(["delete", "pod", "loop", "--wait=false"]);
        await waitFor(
          "pod loop gone",
          async () => (await env.getJSON(["pod", "loop"])) === undefined,
          60_000,
          log,
        );
        assert.deepEqual(await env.units(), []);
      });
    } finally {
      await env.stop();
    }
  },
);
