import assert from "node:assert/strict";
import { ApiException, type V1Pod, type V1PodStatus } from "@kubernetes/client-node";
import { StatusWriter } from "./status.ts";
import type { KubeLogger } from "./client.ts";

const quiet: KubeLogger = { info: () => {}, warn: () => {} };

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
