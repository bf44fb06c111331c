/**
 * `--node-labels` and `--register-with-taints` end to end: systemk in a booted systemd
 * registers a Node with its own credentials (Node authorizer, NodeRestriction) against a real
 * control plane; the scheduler places pods by the label and the taint; a restart with changed
 * flags brings the labels in line and, where NodeRestriction forbids the node to change its
 * taints, tells the admin the `kubectl taint` commands (log and Warning Event); a label outside
 * NodeRestriction's allowed set stops systemk at startup with the rule named.
 */
import assert from "node:assert/strict";
import type { CoreV1Event, V1Node, V1Pod } from "@kubernetes/client-node";
import { type NodeEnv, startNodeEnv, waitFor } from "./_node_env.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };
const NODE = "edge1";

/** A pod selecting `tier=edge`, with or without the toleration of `dedicated=edge`. */
function edgePod(name: string, tolerate: boolean) {
  return {
    apiVersion: "v1",
    kind: "Pod",
    metadata: { name, namespace: "default" },
    spec: {
      nodeSelector: { tier: "edge" },
      tolerations: tolerate
        ? [{ key: "dedicated", operator: "Equal", value: "edge", effect: "NoSchedule" }]
        : [],
      containers: [{ name: "c", image: "/bin/sleep", command: ["/bin/sleep", "infinity"] }],
    },
  };
}

Deno.test(
  "node labels and taints: registered, scheduled by, kept in line on restart, refused when forbidden",
  opts,
  async (t) => {
    const env: NodeEnv = await startNodeEnv();
    let unit = "";
    const agentLog = async () =>
      (await env.system.exec(["journalctl", "--no-pager", "-o", "cat", "-u", unit])).stdout;
    const describe = async () => `--- ${unit} log ---\n${await agentLog()}`;
    const node = async () => (await env.getJSON<V1Node>(["node", NODE]))!;
    const taints = (n: V1Node) =>
      (n.spec?.taints ?? [])
        .filter((t) => !t.key.startsWith("node.kubernetes.io/"))
        .map((t) => `${t.key}=${t.value ?? ""}:${t.effect}`);
    /** Starts (again) the second systemk of the test system as node NODE with `flags`. */
    const start = async (flags: string[]) => {
      if (unit) {
        await env.system.exec(["systemctl", "stop", unit]);
        await env.system.exec(["systemctl", "reset-failed", unit]);
      }
      unit = await env.startAgentAs(NODE, flags);
    };
    try {
      await t.step("registered with the flags' labels and taints", async () => {
        await start([
          "--node-labels",
          "tier=edge,node.kubernetes.io/pool=a",
          "--register-with-taints",
          "dedicated=edge:NoSchedule",
        ]);
        const n = await waitFor(
          "node edge1 Ready",
          async () => {
            const n = await env.getJSON<V1Node>(["node", NODE]);
            const ready = n?.status?.conditions?.find((c) => c.type === "Ready")?.status === "True";
            const notReady = n?.spec?.taints?.some((t) => t.key === "node.kubernetes.io/not-ready");
            return ready && !notReady ? n : undefined;
          },
          60_000,
          describe,
        );
        const labels = n.metadata?.labels ?? {};
        assert.equal(labels.tier, "edge");
        assert.equal(labels["node.kubernetes.io/pool"], "a");
        assert.equal(labels["node.kubernetes.io/instance-type"], "systemk");
        assert.deepEqual(taints(n), ["dedicated=edge:NoSchedule"]);
        assert.equal(
          n.metadata?.annotations?.["systemk.io/node-labels"],
          "node.kubernetes.io/pool,tier",
        );
      });

      await t.step("the scheduler places by the label and honours the taint", async () => {
        await env.apply(edgePod("tolerates", true), edgePod("intolerant", false));
        const placed = await waitFor(
          "pod tolerates Running on edge1",
          async () => {
            const p = await env.getJSON<V1Pod>(["pod", "tolerates"]);
            return p?.status?.phase === "Running" ? p : undefined;
          },
          60_000,
          describe,
        );
        assert.equal(placed.spec?.nodeName, NODE);
        const pending = await waitFor("pod intolerant unschedulable", async () => {
          const p = await env.getJSON<V1Pod>(["pod", "intolerant"]);
          const c = p?.status?.conditions?.find((c) => c.type === "PodScheduled");
          return c?.reason === "Unschedulable" ? c : undefined;
        });
        assert.match(pending.message ?? "", /1 node\(s\) had untolerated taint/);
        await env.kubectl(["delete", "pod", "intolerant", "--wait=false"]);
      });

      await t.step("a restart with changed flags brings the labels in line", async () => {
        // An admin's own label, and an admin's edit of a label the flag owns.
        await env.kubectl(["label", "node", NODE, "team=blue", "tier=core", "--overwrite"]);
        await start([
          "--node-labels",
          "tier=edge,zone=z1",
          "--register-with-taints",
          "dedicated=core:NoSchedule,gpu:NoExecute",
        ]);
        const labels = await waitFor(
          "labels in line",
          async () => {
            const l = (await node()).metadata?.labels ?? {};
            return l.zone === "z1" ? l : undefined;
          },
          60_000,
          describe,
        );
        assert.equal(labels.tier, "edge", "the flag's value again");
        assert.equal(labels.team, "blue", "an admin's label stays");
        assert.equal(
          labels["node.kubernetes.io/pool"],
          undefined,
          "dropped from the flag: removed",
        );
        assert.equal((await node()).metadata?.annotations?.["systemk.io/node-labels"], "tier,zone");
      });

      await t.step(
        "taints: NodeRestriction refuses; the log and a Warning Event give the commands",
        async () => {
          const event = await waitFor(
            "a TaintsNotApplied event on the Node",
            async () => {
              const list = await env.getJSON<{ items: CoreV1Event[] }>([
                "events",
                "--field-selector",
                `involvedObject.kind=Node,involvedObject.name=${NODE},reason=TaintsNotApplied`,
              ]);
              return list?.items[0];
            },
            30_000,
            describe,
          );
          assert.equal(event.type, "Warning");
          assert.match(event.message ?? "", /a node may not change its own taints/);
          assert.match(event.message ?? "", /--register-with-taints/);
          assert.match(await agentLog(), /a node may not change its own taints/);
          assert.deepEqual(taints(await node()), ["dedicated=edge:NoSchedule"], "unchanged");
          const found = [
            ...(event.message ?? "").matchAll(/kubectl taint node [^;()]+?(?=;| \(|$)/g),
          ]
            .map((m) => m[0].trim());
          assert.deepEqual(found, [
            `kubectl taint node ${NODE} dedicated=core:NoSchedule --overwrite`,
            `kubectl taint node ${NODE} gpu:NoExecute --overwrite`,
          ]);
        },
      );

      await t.step("the admin runs them; the next restart finds the Node in line", async () => {
        await env.kubectl(["taint", "node", NODE, "dedicated=core:NoSchedule", "--overwrite"]);
        await env.kubectl(["taint", "node", NODE, "gpu:NoExecute", "--overwrite"]);
        const count = async (text: RegExp) => (await agentLog()).match(text)?.length ?? 0;
        const warnings = await count(/may not change its own taints/g);
        const starts = await count(/watching pods of node/g);
        await start([
          "--node-labels",
          "tier=edge,zone=z1",
          "--register-with-taints",
          "dedicated=core:NoSchedule,gpu:NoExecute",
        ]);
        await waitFor(
          "edge1 started again",
          async () => await count(/watching pods of node/g) > starts,
          60_000,
          describe,
        );
        assert.equal(await count(/may not change its own taints/g), warnings, "no new warning");
        const n = await node();
        assert.deepEqual(taints(n).sort(), ["dedicated=core:NoSchedule", "gpu=:NoExecute"]);
      });

      await t.step(
        "a label NodeRestriction forbids stops systemk at startup, rule named",
        async () => {
          const labelsBefore = (await node()).metadata?.labels;
          await start(["--node-labels", "tier=edge,node-role.kubernetes.io/worker="]);
          await waitFor(
            "systemk to exit",
            async () => {
              const state = await env.unitProperty(unit, "ActiveState");
              return state === "failed" || state === "inactive";
            },
            30_000,
            describe,
          );
          const log = await agentLog();
          assert.match(
            log,
            /unknown 'kubernetes\.io' or 'k8s\.io' labels specified with --node-labels: \[node-role\.kubernetes\.io\/worker\]/,
          );
          assert.match(
            log,
            /must begin with an allowed prefix \(kubelet\.kubernetes\.io, node\.kubernetes\.io\)/,
          );
          assert.equal(await env.unitProperty(unit, "ExecMainStatus"), "2");
          assert.deepEqual((await node()).metadata?.labels, labelsBefore, "the Node untouched");
        },
      );
    } finally {
      await env.stop();
    }
  },
);
