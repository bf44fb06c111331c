import assert from "node:assert/strict";
import type { CoreV1Event, V1Pod, V1PodStatus, Watch } from "@kubernetes/client-node";
import type { TestCluster } from "../harness/cluster.ts";
import { type PodEvent, PodWatcher } from "../../src/kube/pods.ts";
import { StatusWriter } from "../../src/kube/status.ts";
import { deletePodObject } from "../../src/kube/deletion.ts";
import { EventRecorder, nodeReference, podReference } from "../../src/kube/events.ts";
import { STRATEGIC_MERGE_PATCH } from "../../src/kube/client.ts";
import {
  boundPod,
  CLUSTER_TEST,
  eventually,
  getJSON,
  kubectlOk,
  registerNode,
  startKubeFixture,
  statusOf,
} from "./_helpers.ts";

const NODE = "kube-pods-node";

async function createPod(cluster: TestCluster, name: string): Promise<V1Pod> {
  await kubectlOk(cluster, ["create", "-f", "-"], JSON.stringify(boundPod(name, NODE)));
  return await getJSON<V1Pod>(cluster, ["pod", name]);
}

function runningStatus(message?: string): V1PodStatus {
  const now = new Date();
  const condition = (type: string) => ({ type, status: "True", lastTransitionTime: now });
  return {
    phase: "Running",
    message,
    conditions: ["PodReadyToStartContainers", "Initialized", "ContainersReady", "Ready"].map(
      condition,
    ),
    hostIP: "127.0.0.2",
    hostIPs: [{ ip: "127.0.0.2" }],
    podIP: "127.0.0.2",
    podIPs: [{ ip: "127.0.0.2" }],
    startTime: now,
    qosClass: "BestEffort",
    containerStatuses: [{
      name: "main",
      image: "/bin/sleep",
      imageID: "",
      ready: true,
      started: true,
      restartCount: 0,
      state: { running: { startedAt: now } },
    }],
  };
}

/** Sets one status condition of pod `name` as someone other than the node would. */
async function patchConditionAsAdmin(
  cluster: TestCluster,
  name: string,
  condition: { type: string; status: string; reason?: string },
): Promise<void> {
  await kubectlOk(cluster, [
    "patch",
    "pod",
    name,
    "--subresource=status",
    "--type=strategic",
    "-p",
    JSON.stringify({ status: { conditions: [condition] } }),
  ]);
}

const conditionOf = (pod: V1Pod, type: string) =>
  pod.status?.conditions?.find((c) => c.type === type);

Deno.test({
  name: "pod watcher, status writer, deletion and events work with the node identity",
  ...CLUSTER_TEST,
  async fn(t) {
    const fixture = await startKubeFixture(NODE);
    const { cluster, clients, log } = fixture;
    const node = await registerNode(fixture);

    // The watch goes through a wrapper the test can mute (a watch that silently stops) or
    // cut (a watch whose connection dies).
    let muted = false;
    const connections: AbortController[] = [];
    const watch: Pick<Watch, "watch"> = {
      watch: async (path, query, callback, done) => {
        const c = await clients.watch.watch(
          path,
          query,
          (type, obj, raw) => muted || callback(type, obj, raw),
          done,
        );
        connections.push(c);
        return c;
      },
    };
    const events: PodEvent[] = [];
    const writer = new StatusWriter({ clients, log, retryBaseMs: 100 });
    const pods = new PodWatcher({
      clients: { core: clients.core, watch: watch as Watch },
      nodeName: NODE,
      quietTimeoutMs: 1500,
      log,
      onEvent: (e) => {
        events.push(e);
        if (e.type === "upsert") writer.reassert(e.pod);
      },
    });
    const recorder = new EventRecorder({ clients, nodeName: NODE, log });
    const seen = (type: PodEvent["type"], name: string, test: (p: V1Pod) => boolean = () => true) =>
      eventually(
        `${type} of ${name}`,
        () => events.find((e) => e.type === type && e.pod.metadata?.name === name && test(e.pod)),
      );

    try {
      await kubectlOk(cluster, ["create", "-f", "-"], JSON.stringify(boundPod("before", NODE)));
      await pods.start();

      await t.step("watcher: existing pods arrive, then adds, updates and deletes", async () => {
        await seen("upsert", "before");
        const created = performance.now();
        await createPod(cluster, "p1");
        await seen("upsert", "p1");
        console.log(`  create → upsert: ${(performance.now() - created) | 0} ms`);
        await kubectlOk(cluster, ["label", "pod", "p1", "color=red"]);
        await seen("upsert", "p1", (p) => p.metadata?.labels?.color === "red");
        await kubectlOk(cluster, ["delete", "pod", "before", "--wait=false"]);
        const terminating = await seen("upsert", "before", (p) => !!p.metadata?.deletionTimestamp);
        assert.ok(terminating.pod.metadata?.deletionTimestamp instanceof Date);
        // Others' pods are not ours to see.
        await kubectlOk(
          cluster,
          ["create", "-f", "-"],
          JSON.stringify(boundPod("elsewhere", "some-other-node")),
        );
      });

      await t.step("deletion: grace 0 with a UID precondition", async () => {
        const before = (await getJSON<V1Pod>(cluster, ["pod", "before"])).metadata!;
        const ref = { namespace: "default", name: "before", uid: before.uid! };
        assert.equal(await deletePodObject(clients, { ...ref, uid: "not-its-uid" }), "replaced");
        assert.equal((await cluster.kubectl(["get", "pod", "before"])).code, 0);
        assert.equal(await deletePodObject(clients, ref), "deleted");
        await seen("delete", "before");
        assert.equal(await deletePodObject(clients, ref), "gone");
        // The node may not delete pods bound elsewhere.
        const other = (await getJSON<V1Pod>(cluster, ["pod", "elsewhere"])).metadata!;
        await assert.rejects(
          deletePodObject(clients, { namespace: "default", name: "elsewhere", uid: other.uid! }),
          (e: { code?: number }) => e.code === 403,
        );
        assert.equal(events.some((e) => e.pod.metadata?.name === "elsewhere"), false);
      });

      await t.step("watcher: a silent watch and a cut watch are relisted", async () => {
        const lists = pods.listCount;
        muted = true;
        await createPod(cluster, "during-silence");
        await seen("upsert", "during-silence");
        muted = false;
        assert.ok(pods.listCount > lists, "relisted");
        const lists2 = pods.listCount;
        await kubectlOk(cluster, [
          "delete",
          "pod",
          "during-silence",
          "--grace-period=0",
          "--force",
        ]);
        await seen("delete", "during-silence");
        // Cut every open watch connection; the next change must still arrive.
        for (const c of connections.splice(0)) c.abort();
        await createPod(cluster, "after-cut");
        await seen("upsert", "after-cut");
        assert.ok(pods.listCount > lists2, "relisted after the cut");
        console.log(`  lists so far: ${pods.listCount}`);
      });

      await t.step("status writer: patches the owned fields, keeps others'", async () => {
        const p1 = await getJSON<V1Pod>(cluster, ["pod", "p1"]);
        const ref = { namespace: "default", name: "p1", uid: p1.metadata!.uid! };
        const started = performance.now();
        writer.set(ref, runningStatus());
        await writer.idle();
        console.log(`  first status write: ${(performance.now() - started) | 0} ms`);
        let pod = await getJSON<V1Pod>(cluster, ["pod", "p1"]);
        assert.equal(pod.status?.phase, "Running");
        assert.equal(pod.status?.podIP, "127.0.0.2");
        assert.equal(pod.status?.containerStatuses?.[0].ready, true);
        assert.equal(conditionOf(pod, "PodScheduled"), undefined); // never ours, never added
        // Someone else's condition and label survive our next write.
        await patchConditionAsAdmin(cluster, "p1", { type: "example.com/gate", status: "True" });
        await kubectlOk(cluster, ["label", "pod", "p1", "admin=yes"]);
        writer.set(ref, runningStatus("all good"));
        await eventually("message written", async () => {
          pod = await getJSON<V1Pod>(cluster, ["pod", "p1"]);
          return pod.status?.message === "all good" ? pod : undefined;
        });
        assert.equal(conditionOf(pod, "example.com/gate")?.status, "True");
        assert.equal(pod.metadata?.labels?.admin, "yes");
        assert.equal(pod.metadata?.labels?.color, "red");
      });

      await t.step("status writer: re-asserts Ready when someone else flips it", async () => {
        await patchConditionAsAdmin(cluster, "p1", {
          type: "Ready",
          status: "False",
          reason: "NodeNotReady",
        });
        const flipped = performance.now();
        const pod = await eventually("Ready re-asserted", async () => {
          const p = await getJSON<V1Pod>(cluster, ["pod", "p1"]);
          return conditionOf(p, "Ready")?.status === "True" ? p : undefined;
        });
        console.log(`  re-asserted after ${(performance.now() - flipped) | 0} ms`);
        assert.equal(conditionOf(pod, "example.com/gate")?.status, "True");
      });

      await t.step("status writer: qosClass is left to the apiserver (immutable)", async () => {
        const p1 = await getJSON<V1Pod>(cluster, ["pod", "p1"]);
        const ref = { namespace: "default", name: "p1", uid: p1.metadata!.uid! };
        const { qosClass: _, ...withoutQOS } = runningStatus("no qos given");
        writer.set(ref, withoutQOS);
        await writer.idle();
        let pod = await getJSON<V1Pod>(cluster, ["pod", "p1"]);
        assert.equal(pod.status?.message, "no qos given");
        assert.equal(pod.status?.qosClass, "BestEffort");
        writer.set(ref, { ...runningStatus("wrong qos"), qosClass: "Guaranteed" });
        await writer.idle();
        pod = await getJSON<V1Pod>(cluster, ["pod", "p1"]);
        assert.equal(pod.status?.message, "no qos given");
        assert.ok(log.lines.some((l) => /refused: 422.*qosClass/.test(l)), "refusal logged");
        writer.set(ref, runningStatus());
        await writer.idle();
      });

      await t.step(
        "status writer: never touches a pod re-created under the same name",
        async () => {
          const old = await getJSON<V1Pod>(cluster, ["pod", "p1"]);
          const oldRef = { namespace: "default", name: "p1", uid: old.metadata!.uid! };
          await kubectlOk(cluster, ["delete", "pod", "p1", "--grace-period=0", "--force"]);
          const fresh = await createPod(cluster, "p1");
          assert.notEqual(fresh.metadata?.uid, oldRef.uid);
          // What the apiserver answers to a status patch carrying the old UID:
          const code = await statusOf(clients.core.patchNamespacedPodStatus({
            namespace: "default",
            name: "p1",
            body: { metadata: { uid: oldRef.uid }, status: { message: "stale" } },
          }, STRATEGIC_MERGE_PATCH));
          console.log(`  status patch with a stale metadata.uid → HTTP ${code}`);
          assert.notEqual(code, 200);
          writer.set(oldRef, { ...runningStatus("stale write"), phase: "Failed" });
          await writer.idle();
          const now = await getJSON<V1Pod>(cluster, ["pod", "p1"]);
          assert.notEqual(now.status?.phase, "Failed");
          assert.notEqual(now.status?.message, "stale write");
          writer.forget(oldRef.uid);
        },
      );

      await t.step("events: recorded as the kubelet's, repeats folded", async () => {
        const pod = await getJSON<V1Pod>(cluster, ["pod", "p1"]);
        const ref = podReference(pod, { name: "main" });
        const backoff = {
          type: "Warning" as const,
          reason: "BackOff",
          message: "Back-off restarting failed container main",
        };
        recorder.record(ref, {
          type: "Normal",
          reason: "Started",
          message: "Started container main",
        });
        recorder.record(ref, backoff);
        recorder.record(ref, backoff);
        recorder.record(ref, backoff);
        await recorder.idle();
        const list = await getJSON<{ items: CoreV1Event[] }>(cluster, [
          "events",
          "--field-selector",
          `involvedObject.uid=${pod.metadata?.uid}`,
        ]);
        const byReason = new Map(list.items.map((e) => [e.reason, e]));
        assert.equal(byReason.get("Started")?.count, 1);
        assert.equal(byReason.get("BackOff")?.count, 3);
        assert.equal(list.items.length, 2);
        assert.deepEqual(byReason.get("BackOff")?.source, { component: "kubelet", host: NODE });
        assert.equal(byReason.get("BackOff")?.involvedObject.fieldPath, "spec.containers{main}");
        const describe = await kubectlOk(cluster, ["describe", "pod", "p1"]);
        assert.match(describe, /Warning\s+BackOff\s+.*kubelet/);
        // Node events go to the default namespace, as the kubelet's do.
        recorder.record(nodeReference(NODE, node.nodeUID), {
          type: "Normal",
          reason: "NodeReady",
          message: `Node ${NODE} status is now: NodeReady`,
        });
        await recorder.idle();
        const nodeEvents = await getJSON<{ items: CoreV1Event[] }>(cluster, [
          "events",
          "-n",
          "default",
          "--field-selector",
          `involvedObject.kind=Node,involvedObject.name=${NODE}`,
        ]);
        // (The controller-manager's node controller adds its own RegisteredNode event.)
        const ours = nodeEvents.items.filter((e) => e.source?.component === "kubelet");
        assert.deepEqual(ours.map((e) => [e.reason, e.source?.host]), [["NodeReady", NODE]]);
        assert.ok(!log.lines.some((l) => /^event /.test(l)), "no event failed");
      });
    } finally {
      await pods.stop();
      await writer.stop();
      await recorder.idle();
      await node.stop();
      await cluster.stop();
    }
  },
});
