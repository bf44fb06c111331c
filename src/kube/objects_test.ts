import assert from "node:assert/strict";
import type { V1ConfigMap } from "@kubernetes/client-node";
import { ObjectAccess, type ObjectAccessOptions, ObjectForbiddenError } from "./objects.ts";
import type { KubeLogger } from "./client.ts";

const quiet: KubeLogger = { info: () => {}, warn: () => {} };

/**
 * ConfigMaps behind a Node authorizer the test controls: `permitted` names may be read (404 when
 * absent from `objects`), others get 403. Watches stay open and deliver nothing.
 */
class FakeApi {
  objects = new Map<string, V1ConfigMap>();
  permitted = new Set<string>();

  #read(name: string): V1ConfigMap {
    if (!this.permitted.has(name)) throw { code: 403 };
    const object = this.objects.get(name);
    if (!object) throw { code: 404 };
    return structuredClone(object);
  }

  clients = {
    core: {
      readNamespacedConfigMap: ({ name }: { name: string }) =>
        Promise.resolve().then(() => this.#read(name)),
      listNamespacedConfigMap: ({ fieldSelector }: { fieldSelector: string }) =>
        Promise.resolve().then(() => {
          const name = fieldSelector.replace("metadata.name=", "");
          if (!this.permitted.has(name)) throw { code: 403 };
          const object = this.objects.get(name);
          return { items: object ? [object] : [], metadata: { resourceVersion: "1" } };
        }),
    },
    watch: {
      watch: (_path: string, _query: unknown, _cb: unknown, done: (err: unknown) => void) => {
        const controller = new AbortController();
        controller.signal.addEventListener("abort", () => done(null));
        return Promise.resolve(controller);
      },
    },
  } as unknown as ObjectAccessOptions["clients"];
}

function configMap(name: string, value: string): V1ConfigMap {
  return {
    metadata: { name, namespace: "d", uid: `uid-${name}`, resourceVersion: "1" },
    data: { k: value },
  };
}

Deno.test("getReferenced: found ones by name, missing ones absent, each watched", async () => {
  const api = new FakeApi();
  api.objects.set("a", configMap("a", "1"));
  api.permitted = new Set(["a", "missing"]);
  const objects = new ObjectAccess({ clients: api.clients, log: quiet, forbiddenRetryMs: 50 });
  try {
    const found = await objects.getReferenced(
      "d",
      { configMaps: ["a", "missing"], secrets: [] },
      { podUID: "p1", onChange: () => {} },
    );
    assert.deepEqual([...found.configMaps.keys()], ["a"]);
    assert.equal(found.configMaps.get("a")?.data?.k, "1");
    assert.equal(found.secrets.size, 0);
    assert.equal(objects.watchCount, 2);
    objects.releasePod("p1");
    assert.equal(objects.watchCount, 0);
  } finally {
    await objects.stop();
  }
});

Deno.test("getReferenced: a refused object throws, but is watched until permitted", async () => {
  const api = new FakeApi();
  api.objects.set("late", configMap("late", "v"));
  const objects = new ObjectAccess({ clients: api.clients, log: quiet, forbiddenRetryMs: 50 });
  try {
    let changed: () => void = () => {};
    const change = new Promise<void>((resolve) => changed = resolve);
    await assert.rejects(
      objects.getReferenced(
        "d",
        { configMaps: ["late"], secrets: [] },
        { podUID: "p1", onChange: () => changed() },
      ),
      (e) => e instanceof ObjectForbiddenError && /ConfigMap d\/late/.test(e.message),
    );
    assert.equal(objects.watchCount, 1);
    // The authorizer catches up: the watch's retried LIST succeeds and reports the object.
    api.permitted.add("late");
    await change;
  } finally {
    await objects.stop();
  }
});
