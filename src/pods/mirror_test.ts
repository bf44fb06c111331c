import assert from "node:assert/strict";
import type { V1Pod } from "@kubernetes/client-node";
import {
  buildMirrorPod,
  isMirrorPod,
  MIRROR_ANNOTATION,
  mirrorReferenceProblem,
} from "./mirror.ts";
import { staticPod as asRun } from "./static.ts";

const staticPod: V1Pod = {
  metadata: { name: "web", labels: { app: "web" } },
  spec: {
    containers: [{ name: "c", image: "/bin/sleep" }],
    volumes: [{ name: "d", emptyDir: {} }, { name: "h", hostPath: { path: "/srv" } }],
  },
};

Deno.test("buildMirrorPod: the static pod's name and hash, controller owner reference to the Node", () => {
  const running = asRun(staticPod, { file: "/etc/systemk/manifests/web.yaml", nodeName: "n1" });
  const mirror = buildMirrorPod(running, { nodeName: "n1", nodeUID: "nu" });
  assert.equal(mirror.metadata?.name, "web-n1");
  assert.equal(mirror.metadata?.namespace, "default");
  assert.equal(mirror.metadata?.uid, undefined, "the API gives the mirror a UID of its own");
  const hash = running.metadata?.annotations?.["kubernetes.io/config.hash"];
  assert.match(hash ?? "", /^[0-9a-f]{32}$/);
  assert.equal(mirror.metadata?.annotations?.[MIRROR_ANNOTATION], hash);
  assert.deepEqual(mirror.metadata?.ownerReferences, [
    { apiVersion: "v1", kind: "Node", name: "n1", uid: "nu", controller: true },
  ]);
  assert.equal(mirror.spec?.nodeName, "n1");
  assert.deepEqual(mirror.metadata?.labels, { app: "web" });
  assert.ok(isMirrorPod(mirror));
  assert.ok(!isMirrorPod(running));
  // An edited manifest is another static pod: its mirror says so.
  const edited = structuredClone(staticPod);
  edited.spec!.containers[0].image = "/bin/true";
  const editedMirror = buildMirrorPod(
    asRun(edited, { file: "/etc/systemk/manifests/web.yaml", nodeName: "n1" }),
    {
      nodeName: "n1",
      nodeUID: "nu",
    },
  );
  assert.notEqual(editedMirror.metadata?.annotations?.[MIRROR_ANNOTATION], hash);
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
