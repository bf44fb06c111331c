import assert from "node:assert/strict";
import type { V1Pod } from "@kubernetes/client-node";
import {
  buildMirrorPod,
  isMirrorPod,
  MIRROR_ANNOTATION,
  mirrorReferenceProblem,
  staticPodHash,
} from "./mirror.ts";

const staticPod: V1Pod = {
  metadata: { name: "web", labels: { app: "web" } },
  spec: {
    containers: [{ name: "c", image: "/bin/sleep" }],
    volumes: [{ name: "d", emptyDir: {} }, { name: "h", hostPath: { path: "/srv" } }],
  },
};

Deno.test("buildMirrorPod: name, annotations, controller owner reference to the Node", () => {
  const mirror = buildMirrorPod(staticPod, { nodeName: "n1", nodeUID: "nu", hash: "h1" });
  assert.equal(mirror.metadata?.name, "web-n1");
  assert.equal(mirror.metadata?.namespace, "default");
  assert.equal(mirror.metadata?.annotations?.[MIRROR_ANNOTATION], "h1");
  assert.deepEqual(mirror.metadata?.ownerReferences, [
    { apiVersion: "v1", kind: "Node", name: "n1", uid: "nu", controller: true },
  ]);
  assert.equal(mirror.spec?.nodeName, "n1");
  assert.deepEqual(mirror.metadata?.labels, { app: "web" });
  assert.ok(isMirrorPod(mirror));
  assert.ok(!isMirrorPod(staticPod));
});

Deno.test("staticPodHash: stable under key order, changes with content", async () => {
  const reordered: V1Pod = {
    spec: { volumes: staticPod.spec!.volumes, containers: staticPod.spec!.containers },
    metadata: { labels: { app: "web" }, name: "web" },
  };
  assert.equal(await staticPodHash(staticPod), await staticPodHash(reordered));
  const changed = structuredClone(staticPod);
  changed.spec!.containers[0].image = "/bin/true";
  assert.notEqual(await staticPodHash(staticPod), await staticPodHash(changed));
  assert.match(await staticPodHash(staticPod), /^[0-9a-f]{32}$/);
});

Deno.test("mirrorReferenceProblem names what NodeRestriction would refuse", () => {
  assert.equal(mirrorReferenceProblem(staticPod), undefined);
  const withCM = structuredClone(staticPod);
  withCM.spec!.volumes!.push({ name: "cfg", configMap: { name: "x" } });
  assert.match(mirrorReferenceProblem(withCM) ?? "", /volume cfg/);
  const withEnv = structuredClone(staticPod);
  withEnv.spec!.containers[0].env = [{
    name: "P",
    valueFrom: { secretKeyRef: { name: "s", key: "k" } },
  }];
  assert.match(mirrorReferenceProblem(withEnv) ?? "", /env P/);
  const withSA = structuredClone(staticPod);
  withSA.spec!.serviceAccountName = "default";
  assert.equal(mirrorReferenceProblem(withSA), "serviceAccountName");
  const projected = structuredClone(staticPod);
  projected.spec!.volumes = [{
    name: "p",
    projected: { sources: [{ serviceAccountToken: { path: "t" } }] },
  }];
  assert.match(mirrorReferenceProblem(projected) ?? "", /projected volume p/);
});
