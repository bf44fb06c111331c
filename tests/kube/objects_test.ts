import assert from "node:assert/strict";
import type { V1ConfigMap, V1Secret } from "@kubernetes/client-node";
import { ObjectAccess, ObjectForbiddenError } from "../../src/kube/objects.ts";
import {
  boundPod,
  CLUSTER_TEST,
  eventually,
  getJSON,
  kubectlOk,
  startKubeFixture,
} from "./_helpers.ts";

const NODE = "kube-objects-node";

Deno.test({
  name: "ConfigMaps and Secrets: only referenced ones, read and watched as the node",
  ...CLUSTER_TEST,
  async fn(t) {
    const { cluster, clients, log } = await startKubeFixture(NODE);
    const objects = new ObjectAccess({ clients, log, forbiddenRetryMs: 1000 });
    try {
      await kubectlOk(cluster, ["create", "configmap", "used", "--from-literal=k=v1"]);
      await kubectlOk(cluster, ["create", "configmap", "unused", "--from-literal=k=x"]);
      await kubectlOk(cluster, ["create", "secret", "generic", "pw", "--from-literal=p=s3cret"]);
      const started = performance.now();
      await kubectlOk(
        cluster,
        ["create", "-f", "-"],
        JSON.stringify(boundPod("consumer", NODE, {
          configMaps: ["used", "not-there"],
          secrets: ["pw"],
        })),
      );
      const podUID = (await getJSON(cluster, ["pod", "consumer"]) as { metadata: { uid: string } })
        .metadata.uid;

      await t.step("a referenced ConfigMap and Secret are readable", async () => {
        const cm = await objects.get({ kind: "ConfigMap", namespace: "default", name: "used" });
        console.log(`  pod created → configmap readable: ${(performance.now() - started) | 0} ms`);
        assert.ok(cm.found);
        assert.equal((cm.object as V1ConfigMap).data?.k, "v1");
        const s = await objects.get({ kind: "Secret", namespace: "default", name: "pw" });
        assert.ok(s.found);
        assert.equal(atob((s.object as V1Secret).data?.p ?? ""), "s3cret");
      });

      await t.step("a referenced but missing ConfigMap is 'not found', not forbidden", async () => {
        const r = await objects.get({ kind: "ConfigMap", namespace: "default", name: "not-there" });
        assert.deepEqual(r, { found: false });
      });

      await t.step("an unreferenced ConfigMap is forbidden (Node authorizer)", async () => {
        await assert.rejects(
          objects.get({ kind: "ConfigMap", namespace: "default", name: "unused" }),
          ObjectForbiddenError,
        );
        await assert.rejects(
          objects.get({ kind: "Secret", namespace: "kube-system", name: "pw" }),
          ObjectForbiddenError,
        );
      });

      await t.step("a watch sees edits and deletion, shared and refcounted by pod", async () => {
        const seenA: (string | undefined)[] = [];
        const seenB: (string | undefined)[] = [];
        const ref = { kind: "ConfigMap" as const, namespace: "default", name: "used" };
        const unwatchA = objects.watchObject(ref, {
          podUID,
          onChange: (o) => seenA.push((o as V1ConfigMap | undefined)?.data?.k),
        });
        objects.watchObject(ref, {
          podUID: "another-pod",
          onChange: (o) => seenB.push((o as V1ConfigMap | undefined)?.data?.k),
        });
        assert.equal(objects.watchCount, 1);
        await eventually("initial listing", () => seenA.includes("v1") || undefined);
        const edited = performance.now();
        await kubectlOk(cluster, [
          "patch",
          "configmap",
          "used",
          "--type=merge",
          "-p",
          '{"data":{"k":"v2"}}',
        ]);
        await eventually("edit seen", () => seenA.includes("v2") || undefined);
        console.log(`  configmap edit → watch callback: ${(performance.now() - edited) | 0} ms`);
        assert.ok(seenB.includes("v2"));
        unwatchA();
        assert.equal(objects.watchCount, 1, "still wanted by another pod");
        await kubectlOk(cluster, ["delete", "configmap", "used"]);
        await eventually("deletion seen", () => seenB.at(-1) === undefined || undefined);
        assert.equal(seenA.at(-1), "v2", "an unwatched listener hears nothing more");
        objects.releasePod("another-pod");
        assert.equal(objects.watchCount, 0);
      });

      await t.step("a Secret watch works the same way", async () => {
        const values: (string | undefined)[] = [];
        objects.watchObject({ kind: "Secret", namespace: "default", name: "pw" }, {
          podUID,
          onChange: (o) => values.push(atob((o as V1Secret | undefined)?.data?.p ?? "")),
        });
        await eventually("initial listing", () => values.includes("s3cret") || undefined);
        await kubectlOk(cluster, [
          "patch",
          "secret",
          "pw",
          "--type=merge",
          "-p",
          JSON.stringify({ data: { p: btoa("n3w") } }),
        ]);
        await eventually("edit seen", () => values.includes("n3w") || undefined);
        objects.releasePod(podUID);
        assert.equal(objects.watchCount, 0);
      });

      await t.step("a watched object is read from its watch, not with a GET", async () => {
        let gets = 0;
        const counting = new ObjectAccess({
          clients: {
            ...clients,
            core: new Proxy(clients.core, {
              get(core, method, receiver) {
                if (method === "readNamespacedConfigMap") gets++;
                return Reflect.get(core, method, receiver);
              },
            }),
          },
          log,
        });
        try {
          await kubectlOk(
            cluster,
            ["create", "-f", "-"],
            JSON.stringify(boundPod("cached-consumer", NODE, { configMaps: ["cached"] })),
          );
          const ref = { kind: "ConfigMap" as const, namespace: "default", name: "cached" };
          assert.deepEqual(await counting.get(ref), { found: false }, "no watch yet: a GET");
          assert.equal(gets, 1);
          const seen: (string | undefined)[] = [];
          counting.watchObject(ref, {
            podUID: "cached-consumer",
            onChange: (o) => seen.push((o as V1ConfigMap | undefined)?.data?.k),
          });
          await kubectlOk(cluster, ["create", "configmap", "cached", "--from-literal=k=c1"]);
          await eventually("creation seen", () => seen.includes("c1") || undefined);
          const read = await counting.get(ref);
          assert.ok(read.found);
          assert.equal((read.object as V1ConfigMap).data?.k, "c1");
          await kubectlOk(cluster, [
            "patch",
            "configmap",
            "cached",
            "--type=merge",
            "-p",
            '{"data":{"k":"c2"}}',
          ]);
          await eventually("edit seen", () => seen.includes("c2") || undefined);
          const edited = await counting.get(ref);
          assert.ok(edited.found);
          assert.equal((edited.object as V1ConfigMap).data?.k, "c2");
          await kubectlOk(cluster, ["delete", "configmap", "cached"]);
          await eventually("deletion seen", () => seen.at(-1) === undefined || undefined);
          assert.deepEqual(await counting.get(ref), { found: false });
          assert.equal(gets, 1, "reads while watched made no GET");

          // A burst of pods referencing one object before any watch of it exists.
          counting.releasePod("cached-consumer");
          assert.equal(counting.watchCount, 0);
          await kubectlOk(cluster, ["create", "configmap", "cached", "--from-literal=k=c3"]);
          const readers = Array.from(
            { length: 10 },
            (_, i) =>
              counting.getReferenced("default", { configMaps: ["cached"], secrets: [] }, {
                podUID: `burst-${i}`,
                onChange: () => {},
              }),
          );
          for (const got of await Promise.all(readers)) {
            assert.equal(got.configMaps.get("cached")?.data?.k, "c3");
          }
          const later = await counting.getReferenced("default", {
            configMaps: ["cached"],
            secrets: [],
          }, { podUID: "later", onChange: () => {} });
          assert.equal(later.configMaps.get("cached")?.data?.k, "c3");
          assert.equal(gets, 2, "11 pods' reads made one GET");
        } finally {
          await counting.stop();
        }
      });
    } finally {
      await objects.stop();
      await cluster.stop();
    }
  },
});
