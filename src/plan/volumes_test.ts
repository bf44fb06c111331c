import assert from "node:assert/strict";
import fc from "fast-check";
import { planPod, PodError } from "./mod.ts";
import { relativePathProblem } from "./volumes.ts";
import { inputFromManifest } from "../../tests/plan/_fixtures.ts";

Deno.test("relativePathProblem: unsafe keys and item paths", () => {
  const table: [string, string | undefined][] = [
    ["a", undefined],
    ["a/b/c.txt", undefined],
    ["..a", "starts with '..'"],
    ["a..b", undefined],
    ["", "is empty"],
    ["/etc/passwd", "is absolute"],
    ["../x", "contains a '..' segment"],
    ["a/../../x", "contains a '..' segment"],
    ["a/..", "contains a '..' segment"],
    ["a\0b", "contains a NUL character"],
    ["a//b", "contains an empty or '.' segment"],
    ["./a", "contains an empty or '.' segment"],
    ["a/", "contains an empty or '.' segment"],
  ];
  for (const [path, problem] of table) assert.equal(relativePathProblem(path), problem, path);
});

const secretPod = (mode: number) =>
  `kind: Pod
metadata: {name: p, uid: u-1}
spec:
  securityContext: {runAsUser: 998}
  containers: [{name: c, image: /bin/true, command: [/bin/true]}]
  volumes:
    - name: s
      secret: {secretName: s, defaultMode: ${mode}, items: [{key: k, path: k}]}
    - name: c
      configMap: {name: c, defaultMode: ${mode}}
---
kind: Secret
metadata: {name: s}
data: {k: eA==}
---
kind: ConfigMap
metadata: {name: c}
data: {k: x}`;

Deno.test("volumes: secret files never readable by others; configMap modes as given (property)", () => {
  fc.assert(
    fc.property(fc.integer({ min: 0, max: 0o777 }), (mode) => {
      const files = planPod(inputFromManifest(secretPod(mode))).volumes.filter((v) =>
        v.kind === "file"
      );
      const secret = files.find((f) => f.path.includes("/volumes/secret/s/k"))!;
      const config = files.find((f) => f.path.includes("/volumes/configmap/c/k"))!;
      assert.equal(secret.mode, mode & 0o770);
      assert.equal(config.mode, mode);
      assert.ok(secret.kind === "file" && secret.secret === true);
      assert.ok(config.kind === "file" && config.secret === undefined);
      assert.equal(secret.uid, 998);
    }),
    { numRuns: 200 },
  );
  assert.throws(() => planPod(inputFromManifest(secretPod(0o1000))), /not a file mode/);
});

Deno.test("volumes: clashing item paths and duplicate volumes are refused", () => {
  const pod = (items: string, extraVolume = "") =>
    `kind: Pod
metadata: {name: p, uid: u-1}
spec:
  containers: [{name: c, image: /bin/true, command: [/bin/true]}]
  volumes:
    - name: v
      configMap: {name: c, items: [${items}]}
${extraVolume}
---
kind: ConfigMap
metadata: {name: c}
data: {a: x, b: "y"}`; // quoted: YAML 1.1 reads a bare y as true
  assert.throws(
    () => planPod(inputFromManifest(pod("{key: a, path: x}, {key: b, path: x}"))),
    /"x" is produced twice/,
  );
  assert.throws(
    () => planPod(inputFromManifest(pod("{key: a, path: x}, {key: b, path: x/y}"))),
    /"x" is produced twice/,
  );
  assert.throws(
    () => planPod(inputFromManifest(pod("{key: a, path: x/y}, {key: b, path: x}"))),
    /"x" is produced twice/,
  );
  assert.throws(
    () => planPod(inputFromManifest(pod("{key: a, path: x}", "    - {name: v, emptyDir: {}}"))),
    PodError,
  );
  assert.throws(
    () => planPod(inputFromManifest(pod("{key: a, path: x}", "    - {name: ../x, emptyDir: {}}"))),
    /volume name/,
  );
});

Deno.test("volumes: hostPath must be absolute with a known type; each is checked on the node, subPaths too", () => {
  const pod = (hostPath: string, mounts = "[]") =>
    `kind: Pod
metadata: {name: p, uid: u-1}
spec:
  containers: [{name: c, image: /bin/true, command: [/bin/true], volumeMounts: ${mounts}}]
  volumes: [{name: h, hostPath: ${hostPath}}]`;
  assert.deepEqual(
    planPod(inputFromManifest(pod("{path: /srv, type: DirectoryOrCreate}")))
      .hostPathChecks,
    [{ volume: "h", path: "/srv", type: "DirectoryOrCreate" }],
  );
  // Untyped ones too: resolved on the node, the path must still be allowed.
  assert.deepEqual(planPod(inputFromManifest(pod("{path: /srv}"))).hostPathChecks, [
    { volume: "h", path: "/srv", type: "" },
  ]);
  const subPaths =
    "[{name: h, mountPath: /a, subPath: x/y}, {name: h, mountPath: /b, subPath: x/y}]";
  assert.deepEqual(planPod(inputFromManifest(pod("{path: /srv}", subPaths))).hostPathChecks, [
    { volume: "h", path: "/srv", type: "" },
    { volume: "h", path: "/srv/x/y", type: "" },
  ]);
  assert.throws(() => planPod(inputFromManifest(pod("{path: srv}"))), /not absolute/);
  assert.throws(() => planPod(inputFromManifest(pod("{path: /srv, type: Dir}"))), /unknown/);
});

Deno.test("volumes: missing service account tokens are skipped, present ones written secret", () => {
  const text = `kind: Pod
metadata: {name: p, uid: u-1}
spec:
  containers: [{name: c, image: /bin/true, command: [/bin/true]}]
  volumes:
    - name: t
      projected: {sources: [{serviceAccountToken: {path: token}}]}`;
  const input = inputFromManifest(text);
  const token = () => planPod(input).volumes.find((v) => v.path.endsWith("/t/token"));
  const found = token();
  assert.ok(found?.kind === "file" && found.secret && found.mode === 0o640);
  input.serviceAccountTokens = new Map();
  assert.equal(token(), undefined);
});
