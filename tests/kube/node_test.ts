import assert from "node:assert/strict";
import type { V1Lease, V1Node } from "@kubernetes/client-node";
import { NodeController } from "../../src/kube/node_controller.ts";
import { createClients, loadKubeConfig, STRATEGIC_MERGE_PATCH } from "../../src/kube/client.ts";
import {
  CLUSTER_TEST,
  eventually,
  getJSON,
  getJSONIfAny,
  kubectlOk,
  nodeClients,
  startKubeFixture,
  statusOf,
  testNodeConfig,
} from "./_helpers.ts";

const NAME = "kube-node-1";

/** Node NAME's configuration: every field distinct, so that each one's effect shows. */
const config = (overrides: Parameters<typeof testNodeConfig>[1] = {}) =>
  testNodeConfig(NAME, {
    hostname: "kube-node-1.test",
    externalIP: "127.0.0.3",
    maxPods: 42,
    ...overrides,
  });

const renewTime = (lease: V1Lease) => String(lease.spec?.renewTime);

Deno.test({
  name: "NodeController registers, heartbeats and repairs its Node and Lease as the node identity",
  ...CLUSTER_TEST,
  async fn(t) {
    const { cluster, clients, log } = await startKubeFixture(NAME);
    const fast = {
      clients,
      log,
      leaseRenewIntervalMs: 500,
      statusCheckIntervalMs: 500,
      statusReportIntervalMs: 3000,
    };
    let controller = new NodeController({ ...fast, config: config() });
    try {
      await t.step("the Node appears with labels, taint, addresses, capacity, Ready", async () => {
        const started = performance.now();
        await controller.start();
        console.log(`  start (register + status + lease): ${(performance.now() - started) | 0} ms`);
        // The TaintNodesByCondition admission adds node.kubernetes.io/not-ready at creation; the
        // node lifecycle controller removes it once it sees the node Ready.
        const node = await eventually("the not-ready taint lifted", async () => {
          const n = await getJSON<V1Node>(cluster, ["node", NAME]);
          const notReady = n.spec?.taints?.some((t) => t.key === "node.kubernetes.io/not-ready");
          return notReady ? undefined : n;
        });
        console.log(`  schedulable after ${(performance.now() - started) | 0} ms`);
        // The apiserver adds the deprecated beta.kubernetes.io/{os,arch} copies itself.
        const { "beta.kubernetes.io/os": _os, "beta.kubernetes.io/arch": _arch, ...labels } =
          node.metadata?.labels ?? {};
        assert.deepEqual(labels, {
          "kubernetes.io/os": "linux",
          "kubernetes.io/arch": Deno.build.arch === "x86_64" ? "amd64" : "arm64",
          "kubernetes.io/hostname": "kube-node-1.test",
          "node.kubernetes.io/instance-type": "systemk",
        });
        assert.deepEqual(node.spec?.taints, [
          { key: "virtual-kubelet.io/provider", value: "systemk", effect: "NoSchedule" },
        ]);
        assert.deepEqual(node.status?.addresses, [
          { type: "InternalIP", address: "127.0.0.2" },
          { type: "ExternalIP", address: "127.0.0.3" },
          { type: "Hostname", address: "kube-node-1.test" },
        ]);
        assert.equal(node.status?.capacity?.pods, "42");
        assert.equal(node.status?.capacity?.cpu, String(navigator.hardwareConcurrency));
        assert.match(node.status?.capacity?.memory ?? "", /^\d+Ki$/);
        assert.match(node.status?.allocatable?.["ephemeral-storage"] ?? "", /^\d+Ki$/);
        assert.equal(node.status?.daemonEndpoints?.kubeletEndpoint?.Port, 10250);
        assert.equal(node.status?.nodeInfo?.containerRuntimeVersion, "systemd://252");
        assert.equal(node.status?.nodeInfo?.kubeletVersion, "v1.34.0-systemk.0.1.0");
        assert.equal(node.status?.nodeInfo?.kernelVersion, Deno.osRelease());
        const ready = node.status?.conditions?.find((c) => c.type === "Ready");
        assert.equal(ready?.status, "True");
        assert.deepEqual(
          node.status?.conditions?.map((c) => c.type).sort(),
          ["DiskPressure", "MemoryPressure", "NetworkUnavailable", "PIDPressure", "Ready"],
        );
        assert.equal(controller.nodeUID, node.metadata?.uid);
      });

      await t.step("the Lease is held by the node, owned by the Node, and renewed", async () => {
        const lease = await getJSON<V1Lease>(cluster, ["lease", "-n", "kube-node-lease", NAME]);
        assert.equal(lease.spec?.holderIdentity, NAME);
        assert.equal(lease.spec?.leaseDurationSeconds, 40);
        assert.deepEqual(lease.metadata?.ownerReferences?.map((o) => [o.kind, o.uid]), [
          ["Node", controller.nodeUID],
        ]);
        const first = renewTime(lease);
        const later = await eventually("lease renewal", async () => {
          const l = await getJSON<V1Lease>(cluster, ["lease", "-n", "kube-node-lease", NAME]);
          return renewTime(l) > first ? renewTime(l) : undefined;
        });
        console.log(`  renewTime ${first} → ${later}`);
      });

      await t.step("a deleted Lease is recreated", async () => {
        await kubectlOk(cluster, ["delete", "lease", "-n", "kube-node-lease", NAME]);
        const lease = await eventually(
          "lease recreated",
          () => getJSONIfAny<V1Lease>(cluster, ["lease", "-n", "kube-node-lease", NAME]),
        );
        assert.equal(lease.spec?.holderIdentity, NAME);
      });

      await t.step(
        "NodeRestriction: the node may not change its taints or set node-role labels",
        async () => {
          const taintPatch = { spec: { taints: [] } };
          assert.equal(
            await statusOf(
              clients.core.patchNode({ name: NAME, body: taintPatch }, STRATEGIC_MERGE_PATCH),
            ),
            403,
          );
          const rolePatch = { metadata: { labels: { "node-role.kubernetes.io/worker": "" } } };
          assert.equal(
            await statusOf(
              clients.core.patchNode({ name: NAME, body: rolePatch }, STRATEGIC_MERGE_PATCH),
            ),
            403,
          );
          const other = await nodeClients(cluster, "kube-node-other");
          assert.equal(
            await statusOf(other.core.patchNode({
              name: NAME,
              body: { metadata: { labels: { "kubernetes.io/hostname": "x" } } },
            }, STRATEGIC_MERGE_PATCH)),
            403,
          );
        },
      );

      await t.step(
        "a changed fact (readiness) is reported before the periodic report",
        async () => {
          await controller.stop();
          let ready = true;
          controller = new NodeController({
            ...fast,
            statusReportIntervalMs: 600_000,
            config: config(),
            readiness: () => ({ ready, message: "systemd does not answer" }),
          });
          await controller.start();
          ready = false;
          const notReady = await eventually("Ready=False", async () => {
            const node = await getJSON<V1Node>(cluster, ["node", NAME]);
            const c = node.status?.conditions?.find((c) => c.type === "Ready");
            return c?.status === "False" ? c : undefined;
          }, 10_000);
          assert.equal(notReady.message, "systemd does not answer");
        },
      );

      await t.step("restart over an existing Node: own labels fixed, others' kept", async () => {
        await controller.stop();
        await kubectlOk(cluster, [
          "label",
          "node",
          NAME,
          "team=blue",
          "kubernetes.io/os=Linux",
          "--overwrite",
        ]);
        controller = new NodeController({
          ...fast,
          config: config({ internalIP: "127.0.0.4", disableTaint: true }),
        });
        await controller.start();
        const node = await getJSON<V1Node>(cluster, ["node", NAME]);
        assert.equal(node.metadata?.labels?.["kubernetes.io/os"], "linux");
        assert.equal(node.metadata?.labels?.team, "blue");
        assert.deepEqual(node.status?.addresses?.map((a) => a.address), [
          "127.0.0.4",
          "127.0.0.3",
          "kube-node-1.test",
        ]);
        // NodeRestriction: a node may not change its own taints; the admin is told how.
        assert.ok(
          log.lines.some((l) =>
            /may not change its own taints.*kubectl taint node kube-node-1 virtual-kubelet\.io\/provider:NoSchedule-/
              .test(l)
          ),
          "taint mismatch logged",
        );
        const taints = (await getJSON<V1Node>(cluster, ["node", NAME])).spec?.taints ?? [];
        assert.ok(taints.some((t) => t.key === "virtual-kubelet.io/provider"), "still tainted");
      });

      await t.step("with credentials that may, taints are brought in line too", async () => {
        await controller.stop();
        const admin = createClients(loadKubeConfig(cluster.adminKubeconfig));
        const dedicated = { key: "dedicated", value: "edge", effect: "NoSchedule" };
        const withAdmin = (taints: typeof dedicated[]) =>
          new NodeController({
            ...fast,
            clients: admin,
            config: config({ internalIP: "127.0.0.4", disableTaint: true, taints }),
          });
        const first = withAdmin([dedicated]);
        await first.start();
        await first.stop();
        let node = await getJSON<V1Node>(cluster, ["node", NAME]);
        const ours = (n: V1Node) =>
          (n.spec?.taints ?? []).filter((t) => !t.key.startsWith("node.kubernetes.io/"));
        assert.deepEqual(ours(node), [dedicated], "provider taint gone, the flag's added");
        assert.equal(
          node.metadata?.annotations?.["systemk.io/register-with-taints"],
          "dedicated:NoSchedule",
        );
        const second = withAdmin([]);
        await second.start();
        await second.stop();
        node = await getJSON<V1Node>(cluster, ["node", NAME]);
        assert.deepEqual(ours(node), [], "dropped from the flag: removed");
        assert.equal(node.metadata?.annotations?.["systemk.io/register-with-taints"], undefined);
        controller = new NodeController({
          ...fast,
          config: config({ internalIP: "127.0.0.4", disableTaint: true }),
        });
        await controller.start();
      });

      await t.step("a deleted Node is registered again", async () => {
        const oldUID = controller.nodeUID;
        await kubectlOk(cluster, ["delete", "node", NAME, "--wait=false"]);
        const node = await eventually("node re-registered", async () => {
          const n = await getJSONIfAny<V1Node>(cluster, ["node", NAME]);
          return n && n.metadata?.uid !== oldUID ? n : undefined;
        }, 15_000);
        // Re-registered from this controller's configuration: untainted (--disable-taint).
        // (The TaintNodesByCondition admission adds node.kubernetes.io/not-ready until the
        // node lifecycle controller sees it Ready; only the provider taint is ours.)
        const taints = node.spec?.taints ?? [];
        assert.equal(taints.some((t) => t.key === "virtual-kubelet.io/provider"), false);
        const lease = await eventually("lease owned by the new Node", async () => {
          const l = await getJSONIfAny<V1Lease>(cluster, ["lease", "-n", "kube-node-lease", NAME]);
          return l?.metadata?.ownerReferences?.[0]?.uid === node.metadata?.uid ? l : undefined;
        }, 15_000);
        assert.equal(lease.spec?.holderIdentity, NAME);
      });

      await t.step("after stop the Lease is no longer renewed", async () => {
        await controller.stop();
        const before = renewTime(
          await getJSON<V1Lease>(cluster, ["lease", "-n", "kube-node-lease", NAME]),
        );
        await new Promise((r) => setTimeout(r, 2000)); // four renew intervals
        const after = renewTime(
          await getJSON<V1Lease>(cluster, ["lease", "-n", "kube-node-lease", NAME]),
        );
        assert.equal(after, before);
      });
    } finally {
      await controller.stop();
      await cluster.stop();
    }
  },
});

Deno.test({
  name: "the node goes NotReady when the controller stops and Ready when it returns",
  ...CLUSTER_TEST,
  async fn() {
    // The node lifecycle controller marks a node unknown --node-monitor-grace-period (50 s by
    // default) after it last saw the Lease renewed; a short one, with the Lease renewed every
    // second, keeps this test quick without letting a healthy node flap.
    const { cluster, clients, log } = await startKubeFixture("kube-node-2", {
      controllerManagerFlags: ["--node-monitor-period=1s", "--node-monitor-grace-period=5s"],
    });
    const options = {
      clients,
      log,
      leaseRenewIntervalMs: 1000,
      config: testNodeConfig("kube-node-2"),
    };
    let controller = new NodeController(options);
    const readyStatus = async () => {
      const node = await getJSON<V1Node>(cluster, ["node", "kube-node-2"]);
      return node.status?.conditions?.find((c) => c.type === "Ready")?.status;
    };
    try {
      await controller.start();
      assert.equal(await readyStatus(), "True");
      await controller.stop();
      const stopped = performance.now();
      await eventually(
        "Ready=Unknown",
        async () => await readyStatus() === "Unknown" || undefined,
        30_000,
      );
      console.log(`  NotReady ${(performance.now() - stopped) | 0} ms after stop`);
      controller = new NodeController(options);
      const restarted = performance.now();
      await controller.start();
      await eventually("Ready=True", async () => await readyStatus() === "True" || undefined);
      console.log(`  Ready again ${(performance.now() - restarted) | 0} ms after start`);
    } finally {
      await controller.stop();
      await cluster.stop();
    }
  },
});
