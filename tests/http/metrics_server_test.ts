/**
 * A real metrics-server v0.8 scraping systemk's `/metrics/resource`, verifying its serving
 * certificate with the cluster CA, as in a cluster; what it then serves is what `kubectl top`
 * shows. (`kubectl top` itself needs the apiserver's aggregation layer, which the test cluster
 * does not configure, so the test asks metrics-server's metrics.k8s.io API directly.)
 */
import assert from "node:assert/strict";
import { startNodeEnv, waitFor } from "../e2e/_node_env.ts";
import { freePorts } from "../harness/cluster.ts";
import { approveServingCertificate, kubeletAPIFlags, run } from "../e2e/_kubelet_api.ts";
import { metricsServerBinary } from "./_metrics_server.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };

Deno.test("metrics-server v0.8 reads node and pod usage from systemk", opts, async () => {
  const binary = await metricsServerBinary();
  const [port, msPort] = freePorts("127.0.0.1", 2);
  const env = await startNodeEnv({
    nodeName: "n1",
    flags: kubeletAPIFlags(port),
  });
  let metricsServer: Deno.ChildProcess | undefined;
  const dir = `${env.cluster.dir}/metrics-server`;
  try {
    await Deno.mkdir(dir);
    await approveServingCertificate(env.cluster, env.nodeName, env.agentLog);
    await env.apply({
      apiVersion: "v1",
      kind: "Pod",
      metadata: { name: "busy", namespace: "default" },
      spec: {
        nodeName: "n1",
        containers: [{
          name: "c",
          image: "/bin/bash",
          command: ["/bin/bash", "-c", "while true; do echo tick; sleep 0.1; done"],
        }],
      },
    });
    const admin = env.cluster.adminKubeconfig;
    metricsServer = new Deno.Command(binary, {
      args: [
        ...[`--kubeconfig=${admin}`, `--authentication-kubeconfig=${admin}`],
        `--authorization-kubeconfig=${admin}`,
        ...["--bind-address=127.0.0.1", `--secure-port=${msPort}`, `--cert-dir=${dir}`],
        ...["--kubelet-preferred-address-types=InternalIP", "--kubelet-use-node-status-port"],
        `--kubelet-certificate-authority=${env.cluster.caFile}`,
        ...["--metric-resolution=10s", "--kubelet-request-timeout=5s"],
      ],
      stdout: "null",
      stderr: "piped",
    }).spawn();
    const logFile = await Deno.open(`${dir}/log`, { write: true, create: true });
    void metricsServer.stderr.pipeTo(logFile.writable).catch(() => {});
    const msLog = async () =>
      `--- metrics-server ---\n${(await Deno.readTextFile(`${dir}/log`)).slice(-3000)}`;
    const pki = `${env.cluster.dir}/pki`;
    const query = async (path: string) => {
      const r = await run("curl", [
        ...["-sk", "--cert", `${pki}/admin.crt`, "--key", `${pki}/admin.key`],
        `https://127.0.0.1:${msPort}/apis/metrics.k8s.io/v1beta1${path}`,
      ]);
      return r.code === 0 ? JSON.parse(r.out) : undefined;
    };

    // Two scrapes (10 s apart) before a node has a CPU rate.
    const node = await waitFor(
      "metrics of node n1",
      async () => {
        const m = await query("/nodes/n1");
        return m?.kind === "NodeMetrics" ? m : undefined;
      },
      60_000,
      msLog,
    );
    console.log(`metrics-server: node n1 usage ${JSON.stringify(node.usage)}`);
    assert.match(node.usage.cpu, /^\d+n$/);
    assert.match(node.usage.memory, /^\d+Ki$/);
    assert.ok(parseInt(node.usage.memory) > 0);

    // Pods need CPU per container, which exists when systemd accounts it (not on a hybrid
    // cgroup hierarchy, where metrics-server rightly drops the pod).
    const accounted = /^\d+$/.test(
      await env.unitProperty("systemk.default.busy.c.service", "CPUUsageNSec"),
    );
    const pod = await query("/namespaces/default/pods/busy");
    if (accounted) {
      assert.equal(pod?.kind, "PodMetrics", JSON.stringify(pod));
      assert.equal(pod.containers[0].name, "c");
    } else {
      console.log("systemd accounts no CPU for units here: metrics-server skips the pod");
      assert.notEqual(pod?.kind, "PodMetrics");
    }
    assert.doesNotMatch(await msLog(), /Failed to scrape node.*n1/);
  } finally {
    try {
      metricsServer?.kill("SIGTERM");
    } catch {
      // It exited already; its log says why.
    }
    await metricsServer?.status;
    await env.stop();
  }
});
