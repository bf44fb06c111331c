import assert from "node:assert/strict";
import { ApiException, type V1Pod, type V1PodStatus } from "@kubernetes/client-node";
import { completeIPLists, keyScope, ownedStatusKey, statusPatch, StatusWriter } from "./status.ts";
import type { KubeLogger } from "./client.ts";

const quiet: KubeLogger = { info: () => {}, warn: () => {} };

Deno.test("ownedStatusKey: Date vs string, fractions, empties and others' conditions", () => {
  const a = {
    phase: "Running",
    startTime: "2026-01-01T00:00:00.000Z",
    conditions: [
      { type: "Ready", status: "True", lastTransitionTime: "2026-01-01T00:00:01.123Z" },
      { type: "Initialized", status: "True" },
    ],
    message: "",
    containerStatuses: [],
    nominatedNodeName: "not ours",
  };
  const b = {
    conditions: [
      { type: "Initialized", status: "True" },
      { type: "DisruptionTarget", status: "True" },
      { status: "True", lastTransitionTime: "2026-01-01T00:00:01Z", type: "Ready" },
    ],
    startTime: "2026-01-01T00:00:00Z",
    phase: "Running",
  };
  const scope = keyScope(a);
  assert.equal(ownedStatusKey(a, scope), ownedStatusKey(b, scope));
  assert.notEqual(ownedStatusKey(a, scope), ownedStatusKey({ ...b, phase: "Failed" }, scope));
  assert.notEqual(
    ownedStatusKey(a, scope),
    ownedStatusKey({ ...b, conditions: [{ type: "Ready", status: "False" }] }, scope),
  );
  // qosClass is the apiserver's unless we give one.
  assert.equal(ownedStatusKey(a, scope), ownedStatusKey({ ...b, qosClass: "BestEffort" }, scope));
  const withQOS = keyScope({ ...a, qosClass: "Burstable" });
  assert.notEqual(
    ownedStatusKey({ ...a, qosClass: "Burstable" }, withQOS),
    ownedStatusKey({ ...b, qosClass: "BestEffort" }, withQOS),
  );
});

Deno.test("statusPatch: owned fields only, nulls for cleared ones, IP lists replaced, UID", () => {
  const patch = statusPatch("u1", {
    phase: "Running",
    podIP: "10.0.0.5",
    podIPs: [{ ip: "10.0.0.5" }],
    conditions: [{ type: "Ready", status: "True" }],
    nominatedNodeName: "x",
  }) as { metadata: unknown; status: Record<string, unknown> };
  assert.deepEqual(patch.metadata, { uid: "u1" });
  assert.equal(patch.status.phase, "Running");
  assert.deepEqual(patch.status.podIPs, [{ $patch: "replace" }, { ip: "10.0.0.5" }]);
  assert.equal(patch.status.message, null);
  assert.equal(patch.status.containerStatuses, null);
  assert.equal("qosClass" in patch.status, false, "immutable: never cleared");
  assert.equal("nominatedNodeName" in patch.status, false);
  assert.deepEqual(patch.status.conditions, [{ type: "Ready", status: "True" }]);
  // No conditions given: others' (and our earlier) conditions are left alone, not nulled.
  const bare = statusPatch("u1", { phase: "Pending" }) as { status: Record<string, unknown> };
  assert.equal("conditions" in bare.status, false);
});

/** A pods/status endpoint that applies the patch the way the apiserver does, roughly. */
class FakeCore {
  status: Record<string, unknown> = {};
  uid = "u1";
  calls = 0;
  failures: number[] = [];
  delayMs = 0;

  async patchNamespacedPodStatus(
    param: { namespace: string; name: string; body: unknown },
  ): Promise<V1Pod> {
    this.calls++;
    if (this.delayMs) await new Promise((r) => setTimeout(r, this.delayMs));
    const code = this.failures.shift();
    if (code) throw new ApiException(code, "fail", "{}", {});
    const body = param.body as { metadata: { uid: string }; status: Record<string, unknown> };
    if (body.metadata.uid !== this.uid) {
      throw new ApiException(
        422,
        "uid",
        '{"message":"Pod \\"fluid\\" is invalid: metadata.uid: Invalid value: \\"u1\\": field is immutable"}',
        {},
      );
    }
    for (const [k, v] of Object.entries(body.status)) {
      if (v === null) delete this.status[k];
      else if (k === "conditions") {
        const merged = new Map(
          ((this.status.conditions ?? []) as { type: string }[]).map((c) => [c.type, c]),
        );
        for (const c of v as { type: string }[]) merged.set(c.type, c);
        this.status.conditions = [...merged.values()];
      } else if (Array.isArray(v)) this.status[k] = v.filter((x) => !x.$patch);
      else this.status[k] = v;
    }
    return this.pod();
  }

  pod(): V1Pod {
    return {
      metadata: { uid: this.uid, namespace: "d", name: "p" },
      status: structuredClone(this.status) as V1PodStatus,
    };
  }
}

const ref = { namespace: "d", name: "p", uid: "u1" };
const running: V1PodStatus = {
  phase: "Running",
  conditions: [{ type: "Ready", status: "True", lastTransitionTime: new Date(0) }],
};

Deno.test("StatusWriter coalesces per pod: latest wins", async () => {
  const core = new FakeCore();
  core.delayMs = 20;
  const writer = new StatusWriter({ clients: { core: core as never }, log: quiet });
  writer.set(ref, { phase: "Pending" });
  writer.set(ref, { phase: "Pending", message: "a" });
  writer.set(ref, { phase: "Pending", message: "b" });
  writer.set(ref, running);
  await writer.idle();
  // The first write was in flight; the three later ones fold into one.
  assert.equal(core.calls, 2);
  assert.equal(core.status.phase, "Running");
  assert.equal(core.status.message, undefined);
  await writer.stop();
});

Deno.test("StatusWriter skips what the API already shows, re-asserts what others changed", async () => {
  const core = new FakeCore();
  const writer = new StatusWriter({ clients: { core: core as never }, log: quiet });
  writer.set(ref, running);
  await writer.idle();
  assert.equal(core.calls, 1);
  // The watch echoes our own write: nothing to do.
  writer.reassert(core.pod());
  writer.set(ref, running);
  await writer.idle();
  assert.equal(core.calls, 1);
  // The node lifecycle controller marks the pod not ready, a DisruptionTarget appears too.
  core.status.conditions = [
    { type: "Ready", status: "False", reason: "NodeNotReady" },
    { type: "DisruptionTarget", status: "True" },
  ];
  writer.reassert(core.pod());
  await writer.idle();
  assert.equal(core.calls, 2);
  const conds = core.status.conditions as { type: string; status: string }[];
  assert.equal(conds.find((c) => c.type === "Ready")?.status, "True");
  assert.equal(conds.find((c) => c.type === "DisruptionTarget")?.status, "True");
  // A new writer (systemk restarted) that first sees the API state writes nothing...
  const again = new StatusWriter({ clients: { core: core as never }, log: quiet });
  again.reassert(core.pod());
  again.set(ref, running);
  await again.idle();
  assert.equal(core.calls, 2);
  // ...while set() before any observation writes once.
  const fresh = new StatusWriter({ clients: { core: core as never }, log: quiet });
  fresh.set(ref, running);
  await fresh.idle();
  assert.equal(core.calls, 3);
  await Promise.all([writer.stop(), again.stop(), fresh.stop()]);
});

Deno.test("StatusWriter retries errors with backoff and drops replaced or gone pods", async () => {
  const core = new FakeCore();
  core.failures = [500, 503];
  const writer = new StatusWriter({
    clients: { core: core as never },
    retryBaseMs: 5,
    log: quiet,
  });
  writer.set(ref, running);
  for (let i = 0; i < 100 && core.status.phase !== "Running"; i++) {
    await new Promise((r) => setTimeout(r, 10));
  }
  assert.equal(core.calls, 3);
  assert.equal(core.status.phase, "Running");

  core.uid = "u2"; // re-created under the same name
  writer.set(ref, { phase: "Failed" });
  await writer.idle();
  assert.equal(core.calls, 4);
  assert.equal(core.status.phase, "Running");
  assert.equal(writer.size, 0);

  // Invalid status: not retried until a different one is set.
  const recreated = { ...ref, uid: "u2" };
  core.failures = [422];
  writer.set(recreated, { phase: "Running", qosClass: "Guaranteed" });
  await writer.idle();
  await new Promise((r) => setTimeout(r, 50)); // ten retry periods
  assert.equal(core.calls, 5);
  writer.set(recreated, { phase: "Running", qosClass: "BestEffort" });
  await writer.idle();
  assert.equal(core.calls, 6);
  assert.equal(core.status.qosClass, "BestEffort");

  core.failures = [404];
  writer.set(recreated, { phase: "Failed" });
  await writer.idle();
  assert.equal(writer.size, 0);
  await writer.stop();
});

Deno.test("completeIPLists fills the address lists the apiserver requires", () => {
  assert.deepEqual(completeIPLists({ podIP: "10.0.0.5", hostIP: "10.0.0.5" }), {
    podIP: "10.0.0.5",
    podIPs: [{ ip: "10.0.0.5" }],
    hostIP: "10.0.0.5",
    hostIPs: [{ ip: "10.0.0.5" }],
  });
  const dual = { podIP: "10.0.0.5", podIPs: [{ ip: "10.0.0.5" }, { ip: "fd00::5" }] };
  assert.deepEqual(completeIPLists(dual), dual);
  assert.deepEqual(completeIPLists({ phase: "Pending" }), { phase: "Pending" });
});
