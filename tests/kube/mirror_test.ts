import assert from "node:assert/strict";
import type { V1Pod } from "@kubernetes/client-node";
import {
  buildMirrorPod,
  createMirrorPod,
  isMirrorPod,
  MirrorPods,
  mirrorReferenceProblem,
} from "../../src/pods/mirror.ts";
import { deletePodObject } from "../../src/kube/deletion.ts";
import { PodWatcher } from "../../src/kube/pods.ts";
import { StatusWriter } from "../../src/kube/status.ts";
import { staticPod as asRun } from "../../src/pods/static.ts";
import {
  CLUSTER_TEST,
  eventually,
  getJSON,
  getJSONIfAny,
  kubectlOk,
  registerNode,
  startKubeFixture,
  statusOf,
} from "./_helpers.ts";

const NODE = "kube-mirror-node";
const MANIFEST = "/etc/systemk/manifests/web.yaml";

/** A static pod as the node runs it, from a manifest with `image`. */
function staticWeb(image = "/bin/sleep"): V1Pod {
  return asRun({
    metadata: { name: "static-web", labels: { app: "web" } },
    spec: {
      containers: [{ name: "c", image, command: [image, "infinity"] }],
      volumes: [{ name: "data", emptyDir: {} }],
    },
  }, { file: MANIFEST, nodeName: NODE });
}

Deno.test({
  name: "mirror pods: NodeRestriction admits exactly the kubelet's shape",
  ...CLUSTER_TEST,
  async fn(t) {
    const fixture = await startKubeFixture(NODE);
    const { cluster, clients } = fixture;
    const node = await registerNode(fixture);
    const options = { nodeName: NODE, nodeUID: node.nodeUID };
    try {
      await t.step("a mirror pod is created, owned by the Node, and deletable", async () => {
        const created = await createMirrorPod(clients, buildMirrorPod(staticWeb(), options));
        assert.notEqual(created, "exists");
        const pod = await getJSON<V1Pod>(cluster, ["pod", `static-web-${NODE}`]);
        assert.ok(isMirrorPod(pod));
        assert.equal(pod.metadata?.ownerReferences?.[0].uid, node.nodeUID);
        // The ServiceAccount admission leaves mirror pods alone (no token volume added).
        assert.equal(pod.spec?.serviceAccountName, undefined);
        assert.equal(
          await createMirrorPod(clients, buildMirrorPod(staticWeb(), options)),
          "exists",
        );
        const ref = { namespace: "default", name: pod.metadata!.name!, uid: pod.metadata!.uid! };
        assert.equal(await deletePodObject(clients, ref), "deleted");
      });

      await t.step("NodeRestriction refuses what mirrorReferenceProblem predicts", async () => {
        const withConfigMap = structuredClone(staticWeb());
        withConfigMap.metadata!.name = "static-cm";
        withConfigMap.spec!.volumes!.push({ name: "cfg", configMap: { name: "x" } });
        assert.ok(mirrorReferenceProblem(withConfigMap));
        assert.equal(
          await statusOf(createMirrorPod(clients, buildMirrorPod(withConfigMap, options))),
          403,
        );
        const wrongOwner = buildMirrorPod(staticWeb(), { ...options, nodeUID: "not-the-uid" });
        assert.equal(await statusOf(createMirrorPod(clients, wrongOwner)), 403);
        const plain = buildMirrorPod(staticWeb(), options);
        delete plain.metadata!.annotations!["kubernetes.io/config.mirror"];
        assert.equal(await statusOf(createMirrorPod(clients, plain)), 403);
        const noOwner = buildMirrorPod(staticWeb(), options);
        delete noOwner.metadata!.ownerReferences;
        assert.equal(await statusOf(createMirrorPod(clients, noOwner)), 403);
      });
    } finally {
      await node.stop();
      await fixture.cluster.stop();
    }
  },
});

Deno.test({
  name: "MirrorPods keeps one mirror per static pod: created, status, recreated, replaced, deleted",
  ...CLUSTER_TEST,
  async fn(t) {
    const fixture = await startKubeFixture(NODE);
    const { cluster, clients, log } = fixture;
    const node = await registerNode(fixture);
    const statuses = new StatusWriter({ clients, log, retryBaseMs: 100 });
    /** Every status MirrorPods hands the writer, as [mirror UID, message]. */
    const written: [string, string | undefined][] = [];
    const mirrors = new MirrorPods({
      clients,
      log,
      nodeName: NODE,
      nodeUID: () => node.nodeUID,
      statuses: {
        set(ref, status) {
          written.push([ref.uid, status.message]);
          statuses.set(ref, status);
        },
        forget: (uid) => statuses.forget(uid),
      },
      resyncMs: 1000,
    });
    const others: string[] = [];
    const watcher = new PodWatcher({
      clients,
      nodeName: NODE,
      log,
      onEvent(event) {
        if (mirrors.observe(event)) {
          if (event.type === "upsert") statuses.reassert(event.pod);
        } else others.push(event.pod.metadata!.name!);
      },
    });
    const name = `static-web-${NODE}`;
    const mirror = (test: (p: V1Pod) => boolean) =>
      eventually(`mirror ${name}`, async () => {
        const p = await getJSONIfAny<V1Pod>(cluster, ["pod", name]);
        return p && test(p) ? p : undefined;
      });
    const hashOf = (p: V1Pod) => p.metadata?.annotations?.["kubernetes.io/config.mirror"];
    try {
      mirrors.start();
      await watcher.start();
      let web = staticWeb();
      mirrors.setStaticPods([web]);

      let first: V1Pod;
      await t.step("created, and the static pod's status written to it", async () => {
        const started = performance.now();
        first = await mirror(() => true);
        console.log(`  mirror created after ${(performance.now() - started) | 0} ms`);
        assert.equal(hashOf(first), web.metadata?.annotations?.["kubernetes.io/config.hash"]);
        mirrors.setStatus(web, { phase: "Running", message: "static and well" });
        await mirror((p) => p.status?.message === "static and well");
      });

      await t.step("deleted through the API: created again, with the status", async () => {
        await kubectlOk(cluster, ["delete", "pod", name, "--wait=false"]);
        const deleted = performance.now();
        const second = await mirror((p) =>
          p.metadata?.uid !== first.metadata?.uid && !p.metadata?.deletionTimestamp
        );
        console.log(`  recreated ${(performance.now() - deleted) | 0} ms after kubectl delete`);
        assert.ok(isMirrorPod(second));
        await mirror((p) => p.status?.message === "static and well");
        first = second;
      });

      await t.step("an edited manifest replaces the mirror", async () => {
        const replacedPod = web;
        web = staticWeb("/bin/cat");
        mirrors.setStaticPods([web]);
        const hash = web.metadata?.annotations?.["kubernetes.io/config.hash"];
        const replaced = await mirror((p) => hashOf(p) === hash);
        assert.notEqual(replaced.metadata?.uid, first.metadata?.uid);
        assert.equal(replaced.spec?.containers[0].image, "/bin/cat");
        // The replaced static pod reports while it stops: neither its last status nor that
        // one is the new pod's; the new pod's own status is.
        mirrors.setStatus(replacedPod, { phase: "Running", message: "the old pod stopping" });
        mirrors.setStatus(web, { phase: "Pending", message: "the new pod starting" });
        const uid = replaced.metadata!.uid!;
        const stale = written.filter(([u, m]) => u === uid && m !== "the new pod starting");
        assert.deepEqual(stale, []);
        await mirror((p) => p.status?.message === "the new pod starting");
      });

      await t.step(
        "a static pod NodeRestriction would refuse is reported, not mirrored",
        async () => {
          const withSecret = asRun({
            metadata: { name: "static-secret" },
            spec: {
              containers: [{ name: "c", image: "/bin/sleep" }],
              volumes: [{ name: "s", secret: { secretName: "x" } }],
            },
          }, { file: "/etc/systemk/manifests/secret.yaml", nodeName: NODE });
          mirrors.setStaticPods([web, withSecret]);
          await eventually(
            "the refusal logged",
            () => log.lines.find((l) => /static-secret.*not created.*volume s/.test(l)),
          );
          assert.equal(await getJSONIfAny(cluster, ["pod", `static-secret-${NODE}`]), undefined);
        },
      );

      await t.step("the manifest gone: the mirror deleted", async () => {
        mirrors.setStaticPods([]);
        await eventually(
          "mirror deleted",
          async () => await getJSONIfAny(cluster, ["pod", name]) === undefined || undefined,
        );
        assert.deepEqual(others, [], "mirror pods never reach the runtime's side");
      });
    } finally {
      await watcher.stop();
      await mirrors.stop();
      await statuses.stop();
      await node.stop();
      await cluster.stop();
    }
  },
});
