import assert from "node:assert/strict";
import type {
  V1NodeSelectorRequirement,
  V1PersistentVolume,
  V1PersistentVolumeClaim,
} from "@kubernetes/client-node";
import { claimedVolume, type ClaimLookup, nodeSelectorMatches } from "./claims.ts";

const NODE = { name: "n1", labels: { "kubernetes.io/hostname": "n1", disk: "ssd", gen: "5" } };

function claim(overrides: Partial<V1PersistentVolumeClaim> = {}): V1PersistentVolumeClaim {
  return {
    metadata: { name: "data", namespace: "default", uid: "claim-uid" },
    spec: { volumeName: "pv1" },
    status: { phase: "Bound" },
    ...overrides,
  };
}

function pv(spec: Partial<V1PersistentVolume["spec"]> = {}): V1PersistentVolume {
  return {
    metadata: { name: "pv1" },
    spec: {
      claimRef: { namespace: "default", name: "data", uid: "claim-uid" },
      local: { path: "/mnt/disks/pv1" },
      nodeAffinity: {
        required: {
          nodeSelectorTerms: [{
            matchExpressions: [{ key: "kubernetes.io/hostname", operator: "In", values: ["n1"] }],
          }],
        },
      },
      ...spec,
    },
  };
}

function resolve(c?: V1PersistentVolumeClaim, v?: V1PersistentVolume, readOnly?: boolean) {
  const lookup: ClaimLookup = {
    namespace: "default",
    claims: new Map(c ? [["data", c]] : []),
    volumes: new Map(v ? [["pv1", v]] : []),
    node: NODE,
  };
  return claimedVolume(
    { name: "vol", persistentVolumeClaim: { claimName: "data", readOnly } },
    lookup,
  );
}

Deno.test("claimedVolume: a bound claim of a local volume of this node", () => {
  assert.deepEqual(resolve(claim(), pv(), true), {
    persistentVolume: "pv1",
    source: "local",
    path: "/mnt/disks/pv1",
    type: "",
    readOnly: true,
  });
  const hostPath = pv({
    local: undefined,
    hostPath: { path: "/srv/x", type: "DirectoryOrCreate" },
  });
  assert.deepEqual(resolve(claim(), hostPath), {
    persistentVolume: "pv1",
    source: "hostPath",
    path: "/srv/x",
    type: "DirectoryOrCreate",
    readOnly: false,
  });
});

Deno.test("claimedVolume: the kubelet's checks, each with its problem", () => {
  const what = (result: ReturnType<typeof resolve>) => "what" in result ? result.what : "ok";
  assert.equal(what(resolve()), 'persistentvolumeclaim "data" not found');
  assert.equal(
    what(
      resolve(
        claim({ metadata: { name: "data", uid: "claim-uid", deletionTimestamp: new Date() } }),
        pv(),
      ),
    ),
    "can't start pod because PVC default/data is being deleted",
  );
  assert.equal(
    what(resolve(claim({ spec: {}, status: { phase: "Pending" } }))),
    'PVC default/data has non-bound phase ("Pending") or empty pvc.Spec.VolumeName ("")',
  );
  assert.equal(
    what(resolve(claim())),
    'PVC default/data: persistentvolume "pv1" not found',
  );
  assert.match(what(resolve(claim(), pv({ claimRef: undefined }))), /nil pv.Spec.ClaimRef/);
  // A PV still bound to an earlier claim of the same name (a deleted and re-created claim).
  assert.equal(
    what(resolve(claim(), pv({ claimRef: { name: "data", uid: "old-uid" } }))),
    "found PV object pv1 but its pv.Spec.ClaimRef.UID (old-uid) does not point to claim.UID " +
      "(claim-uid)",
  );
  assert.equal(
    what(resolve(claim(), pv({ volumeMode: "Block" }))),
    "PersistentVolume pv1 has volumeMode Block",
  );
  const elsewhere = pv({
    nodeAffinity: {
      required: {
        nodeSelectorTerms: [{
          matchExpressions: [{ key: "kubernetes.io/hostname", operator: "In", values: ["n2"] }],
        }],
      },
    },
  });
  assert.equal(
    what(resolve(claim(), elsewhere)),
    "PersistentVolume pv1 is for another node: its nodeAffinity does not match node n1 (no " +
      "matching NodeSelectorTerms)",
  );
  assert.equal(
    what(resolve(claim(), pv({ local: undefined, nfs: { server: "nfs", path: "/x" } }))),
    "PersistentVolume pv1 has a nfs source, which systemk cannot mount",
  );
  assert.equal(
    what(resolve(claim(), pv({ local: undefined, csi: { driver: "d", volumeHandle: "h" } }))),
    "PersistentVolume pv1 has a csi source, which systemk cannot mount",
  );
});

Deno.test("nodeSelectorMatches: terms ORed, requirements ANDed, every operator", () => {
  const match = (...expressions: V1NodeSelectorRequirement[]) =>
    nodeSelectorMatches({ nodeSelectorTerms: [{ matchExpressions: expressions }] }, NODE);
  assert.equal(match({ key: "disk", operator: "In", values: ["hdd", "ssd"] }), true);
  assert.equal(match({ key: "disk", operator: "In", values: ["hdd"] }), false);
  assert.equal(match({ key: "disk", operator: "NotIn", values: ["hdd"] }), true);
  assert.equal(match({ key: "zone", operator: "NotIn", values: ["a"] }), true);
  assert.equal(match({ key: "disk", operator: "Exists" }), true);
  assert.equal(match({ key: "zone", operator: "DoesNotExist" }), true);
  assert.equal(match({ key: "gen", operator: "Gt", values: ["4"] }), true);
  assert.equal(match({ key: "gen", operator: "Lt", values: ["4"] }), false);
  assert.equal(match({ key: "disk", operator: "Gt", values: ["4"] }), false);
  assert.equal(
    match({ key: "disk", operator: "In", values: ["ssd"] }, { key: "zone", operator: "Exists" }),
    false,
  );
  const terms = (...t: object[]) => nodeSelectorMatches({ nodeSelectorTerms: t }, NODE);
  assert.equal(terms({}), false, "an empty term matches nothing");
  assert.equal(
    terms(
      { matchExpressions: [{ key: "zone", operator: "Exists" }] },
      { matchFields: [{ key: "metadata.name", operator: "In", values: ["n1"] }] },
    ),
    true,
  );
  assert.equal(
    terms({ matchFields: [{ key: "metadata.name", operator: "NotIn", values: ["n1"] }] }),
    false,
  );
  assert.equal(terms({ matchFields: [{ key: "spec.x", operator: "In", values: ["n1"] }] }), false);
});
