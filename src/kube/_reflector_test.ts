import assert from "node:assert/strict";
import type { V1Pod } from "@kubernetes/client-node";
import { Reflector, type ReflectorEvent } from "./_reflector.ts";
import type { KubeLogger } from "./client.ts";

const quiet: KubeLogger = { info: () => {}, warn: () => {} };

function pod(name: string, uid: string, rv: string): V1Pod {
  return { metadata: { namespace: "d", name, uid, resourceVersion: rv } };
}

/** One watch request the fake received, with handles to drive it. */
interface FakeWatchCall {
  path: string;
  query: Record<string, unknown>;
  emit: (type: string, object: unknown) => void;
  end: (err: unknown) => void;
  aborted: () => boolean;
}

/** A list endpoint and a watch endpoint under the test's control. */
class FakeApi {
  items: V1Pod[] = [];
  rv = "10";
  lists = 0;
  watches: FakeWatchCall[] = [];
  #waiters: (() => void)[] = [];

  list = () => {
    this.lists++;
    return Promise.resolve({
      items: structuredClone(this.items),
      metadata: { resourceVersion: this.rv },
    });
  };

  watch = {
    watch: (
      path: string,
      query: Record<string, unknown>,
      cb: (type: string, obj: unknown) => void,
      done: (err: unknown) => void,
    ) => {
      const controller = new AbortController();
      let finished = false;
      const end = (err: unknown) => {
        if (finished) return;
        finished = true;
        done(err);
      };
      controller.signal.addEventListener("abort", () => end(null));
      this.watches.push({
        path,
        query,
        emit: (t, o) => !finished && cb(t, o),
        end,
        aborted: () => controller.signal.aborted,
      });
      this.#waiters.splice(0).forEach((w) => w());
      return Promise.resolve(controller);
    },
  };

  /** Resolves once the n-th watch (1-based) has been opened. */
  async watchNumber(n: number): Promise<FakeWatchCall> {
    while (this.watches.length < n) {
      await new Promise<void>((r) => this.#waiters.push(r));
    }
    return this.watches[n - 1];
  }
}

function setup(quietTimeoutMs = 60_000) {
  const api = new FakeApi();
  const events: string[] = [];
  const objects: V1Pod[] = [];
  const reflector = new Reflector<V1Pod>({
    watch: api.watch,
    list: api.list,
    path: "/api/v1/pods",
    query: { fieldSelector: "spec.nodeName=n1" },
    model: "V1Pod",
    onEvent: (e: ReflectorEvent<V1Pod>) => {
      objects.push(e.object);
      events.push(
        `${e.type} ${e.object.metadata?.name} ${e.object.metadata?.resourceVersion ?? "-"}`,
      );
    },
    quietTimeoutMs,
    description: "test pods",
    log: quiet,
  });
  return { api, events, objects, reflector };
}

Deno.test("Reflector: list, then watch from its resourceVersion; events in order", async () => {
  const { api, events, objects, reflector } = setup();
  api.items = [pod("a", "ua", "5"), pod("b", "ub", "6")];
  await reflector.start();
  assert.deepEqual(events.splice(0), ["upsert a 5", "upsert b 6"]);
  const w = await api.watchNumber(1);
  assert.equal(w.path, "/api/v1/pods");
  assert.deepEqual(w.query, {
    fieldSelector: "spec.nodeName=n1",
    resourceVersion: "10",
    allowWatchBookmarks: true,
  });
  w.emit("ADDED", pod("c", "uc", "11"));
  w.emit("MODIFIED", pod("a", "ua", "12"));
  w.emit("MODIFIED", pod("a", "ua", "12")); // duplicate: not repeated
  w.emit("DELETED", pod("b", "ub", "13"));
  w.emit("BOOKMARK", { metadata: { resourceVersion: "20" } });
  assert.deepEqual(events.splice(0), ["upsert c 11", "upsert a 12", "delete b 13"]);
  assert.equal(reflector.size, 2);
  // Watch objects get the same shape as listed ones (Dates, model classes).
  w.emit("MODIFIED", {
    metadata: {
      name: "c",
      uid: "uc",
      resourceVersion: "21",
      creationTimestamp: "2026-01-01T00:00:00Z",
    },
  });
  assert.ok(objects.at(-1)?.metadata?.creationTimestamp instanceof Date);
  // A clean end re-lists (and re-watches from the new list's version).
  api.items = [pod("a", "ua", "12"), pod("c", "uc", "21")];
  api.rv = "30";
  w.end(null);
  const w2 = await api.watchNumber(2);
  assert.equal(w2.query.resourceVersion, "30");
  assert.deepEqual(events.splice(0), ["upsert c 21"]);
  await reflector.stop();
  assert.ok(w2.aborted());
});

Deno.test("Reflector: 410 Gone relists and emits the difference, stubs for missed deletes", async () => {
  const { api, events, reflector } = setup();
  api.items = [pod("a", "ua", "5"), pod("b", "ub", "6"), pod("c", "uc", "7")];
  await reflector.start();
  events.splice(0);
  const w = await api.watchNumber(1);
  // While the watch was broken: a deleted, b changed, d added, c untouched.
  api.items = [pod("b", "ub", "16"), pod("c", "uc", "7"), pod("d", "ud", "17")];
  api.rv = "40";
  w.emit("ERROR", { kind: "Status", code: 410, message: "too old resource version" });
  const w2 = await api.watchNumber(2);
  assert.ok(w.aborted());
  assert.equal(w2.query.resourceVersion, "40");
  assert.deepEqual(events.splice(0), ["upsert b 16", "upsert d 17", "delete a -"]);
  assert.equal(api.lists, 2);
  await reflector.stop();
});

Deno.test("Reflector: a silent watch is replaced after the quiet timeout", async () => {
  const { api, events, reflector } = setup(50);
  await reflector.start();
  const w = await api.watchNumber(1);
  api.items = [pod("late", "ul", "8")]; // its ADDED event never arrives on the silent watch
  const w2 = await api.watchNumber(2);
  assert.ok(w.aborted());
  assert.deepEqual(events, ["upsert late 8"]);
  assert.equal(reflector.listCount, 2);
  await reflector.stop();
  assert.ok(w2.aborted());
});

Deno.test("Reflector: bookmarks keep a quiet watch alive; failed lists are retried", async () => {
  const { api, reflector } = setup(80);
  const list = api.list;
  let failures = 1;
  api.list = () => failures-- > 0 ? Promise.reject(new Error("connection refused")) : list();
  await reflector.start(); // resolves only after the retried list
  assert.equal(api.lists, 1);
  const w = await api.watchNumber(1);
  for (let i = 0; i < 5; i++) {
    await new Promise((r) => setTimeout(r, 40));
    w.emit("BOOKMARK", { metadata: { resourceVersion: String(50 + i) } });
  }
  assert.equal(api.watches.length, 1, "bookmarks every 40 ms < 80 ms timeout: no relist");
  await reflector.stop();
});

Deno.test("Reflector: objects are handed on without managedFields, listed or watched", async () => {
  const { api, objects, reflector } = setup();
  const managed = (p: V1Pod): V1Pod => ({
    ...p,
    metadata: {
      ...p.metadata,
      managedFields: [{ manager: "kubectl", operation: "Apply", fieldsV1: { "f:spec": {} } }],
    },
  });
  api.items = [managed(pod("a", "ua", "5"))];
  await reflector.start();
  const w = await api.watchNumber(1);
  w.emit("ADDED", managed(pod("b", "ub", "11")));
  assert.deepEqual(objects.map((o) => o.metadata?.name), ["a", "b"]);
  for (const o of objects) {
    assert.equal(o.metadata?.managedFields, undefined);
    assert.ok(o.metadata?.uid, "the rest of the metadata stays");
  }
  await reflector.stop();
});
