import assert from "node:assert/strict";
import { ApiException, type CoreV1Event } from "@kubernetes/client-node";
import {
  buildEvent,
  EventRecorder,
  MAX_EVENT_MESSAGE,
  nodeReference,
  podReference,
} from "./events.ts";
import type { KubeLogger } from "./client.ts";

const pod = { metadata: { namespace: "d", name: "web", uid: "u1", resourceVersion: "7" } };

Deno.test("podReference: pod and container field paths", () => {
  assert.deepEqual(podReference(pod), {
    apiVersion: "v1",
    kind: "Pod",
    namespace: "d",
    name: "web",
    uid: "u1",
    resourceVersion: "7",
  });
  assert.equal(podReference(pod, { name: "c" }).fieldPath, "spec.containers{c}");
  assert.equal(podReference(pod, { name: "i", init: true }).fieldPath, "spec.initContainers{i}");
});

Deno.test("buildEvent: kubelet source, namespace, truncation", () => {
  const now = new Date(0);
  const e = buildEvent(podReference(pod), {
    type: "Warning",
    reason: "Failed",
    message: "x".repeat(5000),
  }, { name: "web.1", nodeName: "n1", now });
  assert.deepEqual(e.source, { component: "kubelet", host: "n1" });
  assert.equal(e.metadata.namespace, "d");
  assert.equal(e.message?.length, MAX_EVENT_MESSAGE);
  assert.equal(e.count, 1);
  const n = buildEvent(nodeReference("n1", "nu"), {
    type: "Normal",
    reason: "NodeReady",
    message: "ready",
  }, { name: "n1.1", nodeName: "n1", now });
  assert.equal(n.metadata.namespace, "default");
});

class FakeCore {
  created: CoreV1Event[] = [];
  patches: { name: string; body: Record<string, unknown> }[] = [];
  failCreate = 0;
  patch404 = false;

  createNamespacedEvent(p: { namespace: string; body: CoreV1Event }) {
    if (this.failCreate-- > 0) return Promise.reject(new ApiException(500, "x", "{}", {}));
    this.created.push(p.body);
    return Promise.resolve(p.body);
  }

  patchNamespacedEvent(p: { name: string; body: Record<string, unknown> }) {
    if (this.patch404) return Promise.reject(new ApiException(404, "gone", "{}", {}));
    this.patches.push(p);
    return Promise.resolve({});
  }
}

Deno.test("EventRecorder folds repeats into count, starts anew when the Event expired", async () => {
  const core = new FakeCore();
  const rec = new EventRecorder({ clients: { core: core as never }, nodeName: "n1" });
  const ref = podReference(pod, { name: "c" });
  const backoff = { type: "Warning" as const, reason: "BackOff", message: "Back-off restarting" };
  rec.record(ref, backoff);
  rec.record(ref, backoff);
  rec.record(ref, backoff);
  rec.record(ref, { type: "Normal", reason: "Started", message: "Started container c" });
  await rec.idle();
  assert.equal(core.created.length, 2);
  assert.deepEqual(core.patches.map((p) => [p.name, p.body.count]), [
    [core.created[0].metadata.name, 2],
    [core.created[0].metadata.name, 3],
  ]);
  // Other incarnation (same name, new UID): a separate Event.
  rec.record(podReference({ metadata: { ...pod.metadata, uid: "u2" } }, { name: "c" }), backoff);
  await rec.idle();
  assert.equal(core.created.length, 3);
  core.patch404 = true;
  rec.record(ref, backoff);
  await rec.idle();
  assert.equal(core.created.length, 4);
  assert.notEqual(core.created[3].metadata.name, core.created[0].metadata.name);
});

Deno.test("EventRecorder never throws; failures are logged", async () => {
  const core = new FakeCore();
  core.failCreate = 1;
  const warnings: string[] = [];
  const log: KubeLogger = { info: () => {}, warn: (m) => warnings.push(m) };
  const rec = new EventRecorder({ clients: { core: core as never }, nodeName: "n1", log });
  rec.record(podReference(pod), { type: "Normal", reason: "Pulled", message: "a" });
  rec.record(podReference(pod), { type: "Normal", reason: "Created", message: "b" });
  await rec.idle();
  assert.equal(warnings.length, 1);
  assert.match(warnings[0], /Pulled/);
  assert.deepEqual(core.created.map((e) => e.reason), ["Created"]);
});
