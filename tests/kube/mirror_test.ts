import assert from "node:assert/strict";
import type { V1Pod } from "@kubernetes/client-node";
import {
  buildMirrorPod,
  createMirrorPod,
  isMirrorPod,
  mirrorReferenceProblem,
  staticPodHash,
} from "../../src/kube/mirror.ts";
import { deletePodObject } from "../../src/kube/deletion.ts";
import { CLUSTER_TEST, getJSON, registerNode, startKubeFixture, statusOf } from "./_helpers.ts";

const NODE = "kube-mirror-node";

Deno.test({
  name: "mirror pods: NodeRestriction admits exactly the kubelet's shape",
  ...CLUSTER_TEST,
  async fn(t) {
    const fixture = await startKubeFixture(NODE);
    const { cluster, clients } = fixture;
    const node = await registerNode(fixture);
    const staticPod: V1Pod = {
      metadata: { name: "static-web", namespace: "default", labels: { app: "web" } },
      spec: {
        containers: [{ name: "c", image: "/bin/sleep", command: ["/bin/sleep", "infinity"] }],
        volumes: [{ name: "data", emptyDir: {} }],
      },
    };
    const options = { nodeName: NODE, nodeUID: node.nodeUID, hash: await staticPodHash(staticPod) };
    try {
      await t.step("a mirror pod is created, owned by the Node, and deletable", async () => {
        const created = await createMirrorPod(clients, buildMirrorPod(staticPod, options));
        assert.notEqual(created, "exists");
        const pod = await getJSON<V1Pod>(cluster, ["pod", `static-web-${NODE}`]);
        assert.ok(isMirrorPod(pod));
        assert.equal(pod.metadata?.ownerReferences?.[0].uid, node.nodeUID);
        // The ServiceAccount admission leaves mirror pods alone (no token volume added).
        assert.equal(pod.spec?.serviceAccountName, undefined);
        assert.equal(await createMirrorPod(clients, buildMirrorPod(staticPod, options)), "exists");
        const ref = { namespace: "default", name: pod.metadata!.name!, uid: pod.metadata!.uid! };
        assert.equal(await deletePodObject(clients, ref), "deleted");
      });

      await t.step("NodeRestriction refuses what mirrorReferenceProblem predicts", async () => {
        const withConfigMap = structuredClone(staticPod);
        withConfigMap.metadata!.name = "static-cm";
        withConfigMap.spec!.volumes!.push({ name: "cfg", configMap: { name: "x" } });
        assert.ok(mirrorReferenceProblem(withConfigMap));
        assert.equal(
          await statusOf(createMirrorPod(clients, buildMirrorPod(withConfigMap, options))),
          403,
        );
        const wrongOwner = buildMirrorPod(staticPod, { ...options, nodeUID: "not-the-uid" });
        assert.equal(await statusOf(createMirrorPod(clients, wrongOwner)), 403);
        const plain = buildMirrorPod(staticPod, options);
        delete plain.metadata!.annotations!["kubernetes.io/config.mirror"];
        assert.equal(await statusOf(createMirrorPod(clients, plain)), 403);
        const noOwner = buildMirrorPod(staticPod, options);
        delete noOwner.metadata!.ownerReferences;
        assert.equal(await statusOf(createMirrorPod(clients, noOwner)), 403);
      });
    } finally {
      await node.stop();
      await cluster.stop();
    }
  },
});
