import assert from "node:assert/strict";
import {
  completeIPLists,
  keyScope,
  ownedStatusKey,
  sameOwnedStatus,
  statusPatch,
} from "./patch.ts";

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

Deno.test("statusPatch: stale fields of our conditions cleared, others' conditions not sent", () => {
  const current = {
    conditions: [
      {
        type: "Ready",
        status: "False",
        reason: "ContainersNotReady",
        message: "containers with unready status: [writer reader]",
        lastTransitionTime: "2026-01-01T00:00:00Z",
      },
      { type: "example.com/gate", status: "True", reason: "Theirs" },
    ],
  };
  const patch = statusPatch("u1", {
    conditions: [
      { type: "Ready", status: "True", lastTransitionTime: "2026-01-01T00:01:00Z" },
      // As last seen: its owner may have changed it since, so it is not sent.
      { type: "example.com/gate", status: "True" },
    ],
  }, { current }) as { status: Record<string, unknown> };
  assert.deepEqual(patch.status.conditions, [{
    type: "Ready",
    status: "True",
    lastTransitionTime: "2026-01-01T00:01:00Z",
    reason: null,
    message: null,
  }]);
});

Deno.test("statusPatch: one of our conditions the desired status lacks is deleted", () => {
  const current = {
    conditions: [
      { type: "PodResizePending", status: "True", reason: "Deferred", message: "no room" },
      { type: "Ready", status: "True" },
      { type: "example.com/gate", status: "True" },
    ],
  };
  const patch = statusPatch("u1", { conditions: [{ type: "Ready", status: "True" }] }, {
    current,
  }) as { status: Record<string, unknown> };
  assert.deepEqual(patch.status.conditions, [
    { type: "Ready", status: "True" },
    { type: "PodResizePending", $patch: "delete" },
  ]);
});

Deno.test("statusPatch: systemk's own DisruptionTarget is written and compared, others' are not", () => {
  const ours = {
    type: "DisruptionTarget",
    status: "True",
    reason: "TerminationByKubelet",
    message: "Pod was terminated in response to imminent node shutdown.",
  };
  const theirs = { ...ours, reason: "DeletionByTaintManager", message: "Taint manager" };
  const patch = statusPatch("u1", { phase: "Failed", conditions: [ours] }) as {
    status: Record<string, unknown>;
  };
  assert.deepEqual(patch.status.conditions, [ours]);
  const others = statusPatch("u1", { phase: "Failed", conditions: [theirs] }) as {
    status: Record<string, unknown>;
  };
  assert.deepEqual(others.status.conditions, []);
  // Not yet in the API: a write is due; once there, none.
  assert.equal(
    sameOwnedStatus({ phase: "Failed" }, { phase: "Failed", conditions: [ours] }),
    false,
  );
  assert.equal(
    sameOwnedStatus({ phase: "Failed", conditions: [ours] }, {
      phase: "Failed",
      conditions: [ours],
    }),
    true,
  );
  assert.equal(
    sameOwnedStatus({ phase: "Failed" }, { phase: "Failed", conditions: [theirs] }),
    true,
  );
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
