/**
 * `kubectl top` end to end: the real metrics-server v0.8 (built from Go modules) runs as a
 * systemk pod from the kit's k3s/metrics-server.yaml, with its service account and in-cluster
 * config, registered as the metrics.k8s.io APIService of an apiserver with the aggregation layer;
 * it scrapes systemk's `/metrics/resource` verifying the serving certificate with the cluster CA.
 * The node has an address of its own (a veth link): the apiserver reaches the APIService's
 * endpoint, the pod's IP, there.
 */
import assert from "node:assert/strict";
import { describeNode, startNodeEnv, waitFor } from "../e2e/_node_env.ts";
import { approveServingCertificate } from "../e2e/_kubelet_api.ts";
import { metricsServerBinary } from "./_metrics_server.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };
const KIT = new URL("../../k3s/metrics-server.yaml", import.meta.url).pathname;
/** Where the kit's manifest expects the binary on the node. */
const IMAGE = "/usr/local/bin/metrics-server";

/** `kubectl top` figures: millicores and MiB, by the name column(s). */
function parseTop(text: string): Map<string, { cpuMilli: number; memoryMi: number }> {
  const rows = new Map<string, { cpuMilli: number; memoryMi: number }>();
  for (const line of text.trim().split("\n").slice(1)) {
    const cells = line.trim().split(/\s+/);
    const cpu = cells.findIndex((c) => /^\d+m$/.test(c));
    const memory = cells.find((c) => /^\d+Mi$/.test(c));
    if (cpu < 1 || !memory) continue;
    // The name columns come before the CPU's (POD NAME for --containers).
    rows.set(cells.slice(0, cpu).join(" "), {
      cpuMilli: parseInt(cells[cpu]),
      memoryMi: parseInt(memory),
    });
  }
  return rows;
}

Deno.test("kubectl top node and pod through metrics-server running on systemk", opts, async () => {
  const binary = await metricsServerBinary();
  const env = await startNodeEnv({ network: "veth", flags: ["--rotate-server-certificates"] });
  const msLog = async () => {
    const pods = await env.cluster.kubectl(["get", "pods", "-A", "-o", "wide"]);
    const events = await env.cluster.kubectl(["get", "events", "-n", "kube-system"]);
    const journal = await env.system.exec([
      ...["journalctl", "--no-pager", "-o", "cat", "-n", "40"],
      ...["-u", "systemk.kube-system.*.metrics-server.service"],
    ]);
    return [
      `--- pods ---\n${pods.stdout}${pods.stderr}`,
      `--- kube-system events ---\n${events.stdout}`,
      `--- metrics-server ---\n${journal.stdout}`,
      await describeNode(env),
    ].join("\n");
  };
  try {
    await approveServingCertificate(env.cluster, env.nodeName, env.agentLog);
    // The image as the kit's manifest names it; the binary itself stays in the build cache.
    const link = await env.system.exec(["ln", "-sf", binary, IMAGE]);
    assert.equal(link.code, 0, link.stderr);
    await env.kubectl(["apply", "-f", KIT]);
    await env.apply({
      apiVersion: "v1",
      kind: "Pod",
      metadata: { name: "busy", namespace: "default" },
      spec: {
        containers: [
          {
            name: "burn",
            image: "/bin/bash",
            command: ["/bin/bash", "-c", "while :; do :; done"],
            // A fifth of a core: a clear figure that leaves the shared machine alone.
            resources: { limits: { cpu: "200m", memory: "64Mi" } },
          },
          { name: "idle", image: "/bin/sleep", command: ["/bin/sleep", "infinity"] },
        ],
      },
    });

    const apiService = await waitFor(
      "the metrics.k8s.io APIService available",
      async () => {
        const s = await env.getJSON<
          { status?: { conditions?: { type: string; status: string }[] } }
        >(
          ["apiservice", "v1beta1.metrics.k8s.io"],
        );
        return s?.status?.conditions?.some((c) => c.type === "Available" && c.status === "True")
          ? s
          : undefined;
      },
      120_000,
      msLog,
    );
    assert.ok(apiService);

    // metrics-server needs two scrapes (15 s apart) before it has a CPU rate.
    const nodes = await waitFor(
      "kubectl top node",
      async () => {
        const out = await env.cluster.kubectl(["top", "node", env.nodeName]);
        return out.code === 0 ? parseTop(out.stdout) : undefined;
      },
      90_000,
      msLog,
    );
    const node = nodes.get(env.nodeName)!;
    console.log(`  kubectl top node: ${JSON.stringify(node)}`);
    assert.ok(node.cpuMilli > 0 && node.memoryMi > 0, JSON.stringify(node));

    const containers = await waitFor(
      "kubectl top pod busy --containers",
      async () => {
        const out = await env.cluster.kubectl(["top", "pod", "busy", "--containers"]);
        return out.code === 0 ? parseTop(out.stdout) : undefined;
      },
      90_000,
      msLog,
    );
    console.log(`  kubectl top pod busy --containers: ${JSON.stringify([...containers])}`);
    const burn = containers.get("busy burn")!;
    // Its CPUQuota holds it to 200m; "at least a little" keeps the bound loose under load.
    assert.ok(burn.cpuMilli >= 20 && burn.cpuMilli <= 260, JSON.stringify(burn));
    assert.ok(containers.has("busy idle"), [...containers.keys()].join());

    const pods = parseTop(await env.kubectl(["top", "pod", "busy"]));
    const pod = pods.get("busy")!;
    console.log(`  kubectl top pod busy: ${JSON.stringify(pod)}`);
    assert.ok(pod.cpuMilli >= 20, JSON.stringify(pod));
    // kubectl rounds memory down to Mi; the API has it exactly.
    const raw = JSON.parse(
      await env.kubectl([
        "get",
        "--raw",
        "/apis/metrics.k8s.io/v1beta1/namespaces/default/pods/busy",
      ]),
    ) as { containers: { name: string; usage: { cpu: string; memory: string } }[] };
    for (const c of raw.containers) {
      assert.match(c.usage.memory, /^[1-9]\d*(Ki|Mi)?$/, JSON.stringify(c));
      assert.match(c.usage.cpu, /^\d+n?$/, JSON.stringify(c));
    }
    // metrics-server itself, as a pod of the node, is measured too.
    const system = parseTop(await env.kubectl(["top", "pod", "-n", "kube-system"]));
    assert.ok([...system.keys()].some((name) => name.startsWith("metrics-server-")));
    assert.doesNotMatch(await msLog(), /Failed to scrape node/);
  } finally {
    await env.stop();
  }
});
