import assert from "node:assert/strict";
import { parseManifests } from "./manifest.ts";

Deno.test("parseManifests: multi-document YAML, Lists, JSON; YAML 1.1 octal modes", () => {
  const m = parseManifests(`
kind: Pod
metadata: {name: a}
spec:
  volumes: [{name: v, configMap: {name: c, defaultMode: 0644}}]
---
---
kind: List
items:
  - {kind: ConfigMap, metadata: {name: c}}
  - {kind: Secret, metadata: {name: s}}
`);
  assert.deepEqual(m.pods.map((p) => p.metadata?.name), ["a"]);
  assert.equal(m.pods[0].spec?.volumes?.[0].configMap?.defaultMode, 0o644);
  assert.deepEqual(m.configMaps.map((c) => c.metadata?.name), ["c"]);
  assert.deepEqual(m.secrets.map((s) => s.metadata?.name), ["s"]);
  const json = parseManifests(JSON.stringify({ kind: "Pod", metadata: { name: "j" } }));
  assert.equal(json.pods[0].metadata?.name, "j");
});

Deno.test("parseManifests: errors name the document", () => {
  assert.throws(
    () =>
      parseManifests(
        "kind: Pod\nmetadata: {name: a}\n---\nkind: Deployment\nmetadata: {name: d}\n",
      ),
    /^Error: document 2: kind Deployment is not supported/,
  );
  assert.throws(
    () => parseManifests("kind: Pod\nmetadata: {}\n"),
    /document 1: Pod without metadata.name/,
  );
  assert.throws(() => parseManifests("a: [\n"), /document 1: /);
  assert.throws(() => parseManifests("---\n- 1\n"), /document 1: not a Kubernetes object/);
  assert.throws(
    () => parseManifests("kind: List\nitems: [{kind: Pod, metadata: {}}]\n"),
    /document 1, item 0: Pod without metadata.name/,
  );
});
