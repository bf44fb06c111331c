import * as k8s from "@kubernetes/client-node";
import assert from "node:assert/strict";
import { controlPlaneBinDir, startTestCluster, type TestCluster } from "./cluster.ts";

/** Polls `check` every 200 ms until it returns a value, or fails after `timeoutMs`. */
async function eventually<T>(
  what: string,
  check: () => Promise<T | undefined>,
  timeoutMs = 60_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const value = await check();
    if (value !== undefined) return value;
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  throw new Error(`timed out waiting for ${what}`);
}

/** Runs kubectl as the admin and returns stdout, failing the test on a non-zero exit. */
async function kubectlOk(cluster: TestCluster, args: string[], stdin?: string): Promise<string> {
  const r = await cluster.kubectl(args, { stdin });
  assert.equal(r.code, 0, `kubectl ${args.join(" ")}: ${r.stderr}`);
  return r.stdout;
}

/** The HTTP status of a failed client-node call (ApiException carries it as `code`). */
async function statusOf(call: Promise<unknown>): Promise<number> {
  try {
    await call;
    return 200;
  } catch (err) {
    if (err instanceof k8s.ApiException) return err.code;
    throw err;
  }
}

/** Asserts that no process the cluster started is still running. */
async function assertProcessesGone(cluster: TestCluster) {
  assert.equal(cluster.processes.length, 4);
  for (const p of cluster.processes) {
    assert.equal(await running(p.pid, cluster.binDir), false, `${p.name} (${p.pid}) still runs`);
  }
}

/** True while a process with this PID runs the given binary (guards against PID reuse). */
async function running(pid: number, binDir: string): Promise<boolean> {
  try {
    return (await Deno.readTextFile(`/proc/${pid}/cmdline`)).startsWith(binDir);
  } catch {
    return false;
  }
}

async function exists(path: string): Promise<boolean> {
  return await Deno.stat(path).then(() => true, () => false);
}

/** Asserts that stop() ended every process the cluster started and removed its own directory. */
async function assertStopped(cluster: TestCluster) {
  await assertProcessesGone(cluster);
  if (Deno.env.get("SYSTEMK_KEEP_TEST_DIRS") !== "1") {
    assert.equal(await exists(cluster.dir), false, `${cluster.dir} was not removed`);
  }
}

const pod = (name: string, nodeName: string, configMap?: string) => ({
  apiVersion: "v1",
  kind: "Pod",
  metadata: { name, namespace: "default" },
  spec: {
    nodeName,
    containers: [{ name: "main", image: "registry.k8s.io/pause:3.10" }],
    volumes: configMap ? [{ name: "config", configMap: { name: configMap } }] : [],
  },
});

Deno.test({
  name: "a test cluster serves a node identity under Node authorization and runs controllers",
  fn: async (t) => {
    let t0 = performance.now();
    const binDir = await controlPlaneBinDir();
    console.log(`build check: ${(performance.now() - t0).toFixed(0)} ms (${binDir})`);
    t0 = performance.now();
    const cluster = await startTestCluster();
    console.log(`start to ready: ${(performance.now() - t0).toFixed(0)} ms (${cluster.server})`);
    const nodeName = "systemk-test-node";
    try {
      await t.step("kubectl and the apiserver are v1.34.4", async () => {
        const version = JSON.parse(await kubectlOk(cluster, ["version", "--output=json"]));
        assert.equal(version.clientVersion.gitVersion, "v1.34.4");
        assert.equal(version.serverVersion.gitVersion, "v1.34.4");
      });

      const kc = new k8s.KubeConfig();
      kc.loadFromFile(await cluster.nodeKubeconfig(nodeName));
      const core = kc.makeApiClient(k8s.CoreV1Api);

      await t.step("the node identity creates its Node and patches its status", async () => {
        const node = await core.createNode({ body: { metadata: { name: nodeName } } });
        assert.equal(node.metadata?.name, nodeName);
        const now = new Date();
        const resources = { cpu: "2", memory: "4Gi", pods: "110" };
        await core.patchNodeStatus(
          {
            name: nodeName,
            body: {
              status: {
                capacity: resources,
                allocatable: resources,
                addresses: [{ type: "InternalIP", address: "127.0.0.1" }],
                conditions: [{
                  type: "Ready",
                  status: "True",
                  reason: "KubeletReady",
                  message: "test node",
                  lastHeartbeatTime: now,
                  lastTransitionTime: now,
                }],
              },
            },
          },
          k8s.setHeaderOptions("Content-Type", k8s.PatchStrategy.StrategicMergePatch),
        );
        const ready = await kubectlOk(cluster, [
          "get",
          "node",
          nodeName,
          "--output=jsonpath={.status.conditions[?(@.type=='Ready')].status}",
        ]);
        assert.equal(ready, "True");

        const coordination = kc.makeApiClient(k8s.CoordinationV1Api);
        const lease = await coordination.createNamespacedLease({
          namespace: "kube-node-lease",
          body: {
            metadata: {
              name: nodeName,
              ownerReferences: [{
                apiVersion: "v1",
                kind: "Node",
                name: nodeName,
                uid: node.metadata!.uid!,
              }],
            },
            spec: {
              holderIdentity: nodeName,
              leaseDurationSeconds: 40,
              renewTime: new k8s.V1MicroTime(),
            },
          },
        });
        assert.equal(lease.spec?.holderIdentity, nodeName);
      });

      await t.step(
        "the node sees its own pods and reads only ConfigMaps they reference",
        async () => {
          await kubectlOk(cluster, ["create", "configmap", "referenced", "--from-literal=a=1"]);
          await kubectlOk(cluster, ["create", "configmap", "unreferenced", "--from-literal=a=1"]);
          await kubectlOk(
            cluster,
            ["apply", "-f", "-"],
            JSON.stringify({
              apiVersion: "v1",
              kind: "List",
              items: [pod("mine", nodeName, "referenced"), pod("elsewhere", "another-node")],
            }),
          );

          const pods = await core.listPodForAllNamespaces({
            fieldSelector: `spec.nodeName=${nodeName}`,
          });
          assert.deepEqual(pods.items.map((p) => p.metadata?.name), ["mine"]);

          // The Node authorizer learns pod → ConfigMap edges from a watch, so allow it a moment.
          await eventually("the referenced ConfigMap to be readable", async () => {
            const code = await statusOf(
              core.readNamespacedConfigMap({ name: "referenced", namespace: "default" }),
            );
            return code === 200 ? code : undefined;
          });
          const forbidden = await statusOf(
            core.readNamespacedConfigMap({ name: "unreferenced", namespace: "default" }),
          );
          assert.equal(forbidden, 403);
        },
      );

      await t.step("the admin's Deployment gets pods scheduled onto the Ready node", async () => {
        await kubectlOk(cluster, [
          "create",
          "deployment",
          "web",
          "--image=registry.k8s.io/pause:3.10",
          "--replicas=2",
        ]);
        const nodes = await eventually("two scheduled Deployment pods", async () => {
          const out = await kubectlOk(cluster, [
            "get",
            "pods",
            "--selector=app=web",
            "--output=jsonpath={.items[*].spec.nodeName}",
          ]);
          const names = out.split(" ").filter(Boolean);
          return names.length === 2 ? names : undefined;
        });
        assert.deepEqual(nodes, [nodeName, nodeName]);
      });

      await t.step("a bootstrap token gets a node client CSR approved and signed", async () => {
        const token = await cluster.createBootstrapToken();
        assert.match(token, /^[a-z0-9]{6}\.[a-z0-9]{16}$/);
        const key = `${cluster.dir}/bootstrap.key`;
        const csr = `${cluster.dir}/bootstrap.csr`;
        const openssl = await new Deno.Command("openssl", {
          args: [
            "req",
            "-new",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-keyout",
            key,
            "-out",
            csr,
            "-subj",
            "/O=system:nodes/CN=system:node:bootstrapped",
          ],
          stdout: "null",
          stderr: "piped",
        }).output();
        assert.equal(openssl.code, 0, new TextDecoder().decode(openssl.stderr));
        const request = {
          apiVersion: "certificates.k8s.io/v1",
          kind: "CertificateSigningRequest",
          metadata: { name: "node-csr-bootstrapped" },
          spec: {
            request: btoa(await Deno.readTextFile(csr)),
            signerName: "kubernetes.io/kube-apiserver-client-kubelet",
            usages: ["digital signature", "client auth"],
          },
        };
        // Authenticate with the token only: no kubeconfig, so no client certificate either.
        const created = await cluster.kubectl([
          `--server=${cluster.server}`,
          `--certificate-authority=${cluster.caFile}`,
          `--token=${token}`,
          "create",
          "--filename=-",
        ], { kubeconfig: "/dev/null", stdin: JSON.stringify(request) });
        assert.equal(created.code, 0, created.stderr);
        // The request was made as the bootstrap token's user, not as the admin.
        const requester = await kubectlOk(cluster, [
          "get",
          "csr",
          "node-csr-bootstrapped",
          "--output=jsonpath={.spec.username}",
        ]);
        assert.match(requester, /^system:bootstrap:[a-z0-9]{6}$/);

        const certificate = await eventually("the CSR to be signed", async () => {
          const cert = await kubectlOk(cluster, [
            "get",
            "csr",
            "node-csr-bootstrapped",
            "--output=jsonpath={.status.certificate}",
          ]);
          return cert || undefined;
        });
        assert.match(atob(certificate), /BEGIN CERTIFICATE/);
      });
    } finally {
      await cluster.stop();
    }
    await assertStopped(cluster);
  },
});

Deno.test("two test clusters run side by side; a caller's dir and bind address are honoured", async () => {
  // 127.0.0.2 is loopback too, but not the default: the serving certificate must name it.
  const ownDir = await Deno.makeTempDir({ prefix: "systemk-cluster-test-" });
  const t0 = performance.now();
  const settled = await Promise.allSettled([
    startTestCluster(),
    startTestCluster({ dir: ownDir, bindAddress: "127.0.0.2" }),
  ]);
  const clusters = settled.flatMap((s) => s.status === "fulfilled" ? [s.value] : []);
  try {
    const failed = settled.find((s) => s.status === "rejected");
    if (failed) throw failed.reason;
    console.log(`two clusters start to ready: ${(performance.now() - t0).toFixed(0)} ms`);
    const [a, b] = clusters;
    assert.match(b.server, /^https:\/\/127\.0\.0\.2:\d+$/);
    assert.equal(b.dir, ownDir);
    assert.notEqual(a.server, b.server);
    await kubectlOk(a, ["create", "namespace", "only-in-a"]);
    assert.equal((await b.kubectl(["get", "namespace", "only-in-a"])).code, 1);
    assert.equal((await a.kubectl(["get", "namespace", "only-in-a"])).code, 0);
  } finally {
    await Promise.all(clusters.map((c) => c.stop()));
  }
  const [a, b] = clusters;
  await assertStopped(a);
  await assertProcessesGone(b);
  assert.ok(await exists(`${ownDir}/logs/kube-apiserver.log`), "a caller's dir is left in place");
  await Deno.remove(ownDir, { recursive: true });
});
