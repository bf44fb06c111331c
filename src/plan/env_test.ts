import assert from "node:assert/strict";
import fc from "fast-check";
import { environmentFile } from "./env.ts";
import { planPod } from "./mod.ts";
import { decodeEnvironment, parseUnit } from "../unit/mod.ts";
import { inputFromManifest } from "../../tests/plan/_fixtures.ts";

/**
 * systemd's env-file.c reading of `NAME="value"` lines: inside double quotes a backslash
 * escapes `"`, `\`, `` ` `` and `$`, drops a following newline, and is kept before anything else.
 */
function readEnvironmentFile(text: string): [string, string][] {
  const out: [string, string][] = [];
  let i = 0;
  while (i < text.length) {
    const eq = text.indexOf("=", i);
    const name = text.slice(i, eq);
    assert.equal(text[eq + 1], '"');
    let value = "";
    let j = eq + 2;
    for (; text[j] !== '"'; j++) {
      if (text[j] === "\\") {
        const next = text[++j];
        if (`"\\\`$`.includes(next)) value += next;
        else if (next !== "\n") value += "\\" + next;
      } else value += text[j];
    }
    assert.equal(text[j + 1], "\n");
    out.push([name, value]);
    i = j + 2;
  }
  return out;
}

Deno.test("environmentFile: values round-trip through systemd's env-file rules (property)", () => {
  const value = fc.string({ unit: "grapheme", maxLength: 30 }).filter((s) => !s.includes("\0"));
  fc.assert(
    fc.property(fc.array(fc.tuple(fc.constantFrom("A", "B_2", "_c"), value)), (vars) => {
      assert.deepEqual(readEnvironmentFile(environmentFile(vars)), vars);
    }),
    { numRuns: 1000 },
  );
  assert.equal(environmentFile([["K", 'a"b\\c$d`e\nf']]), 'K="a\\"b\\\\c\\$d\\`e\nf"\n');
});

const pod = (env: string, extra = "") => `
apiVersion: v1
kind: Pod
metadata: {name: p, namespace: ns, uid: u-1}
spec:
  containers:
    - name: c
      image: /bin/true
      command: [/bin/true]
${env}
${extra}`;

function environment(text: string) {
  const plan = planPod(inputFromManifest(text));
  const unit = parseUnit(plan.units[0].text);
  const env = new Map<string, string>();
  for (const l of unit.sections.find((s) => s.name === "Service")!.lines) {
    if (l.kind === "directive" && l.key === "Environment") {
      const [k, v] = decodeEnvironment(l.value);
      env.set(k, v);
    }
  }
  const file = plan.volumes.find((v) => v.kind === "file" && v.path.endsWith("/env/c.env"));
  const secret = file?.kind === "file"
    ? new Map(readEnvironmentFile(new TextDecoder().decode(file.content)))
    : new Map<string, string>();
  return { env, secret, file };
}

Deno.test("env: any literal value reaches the unit exactly (property)", () => {
  const value = fc.string({ unit: "grapheme", maxLength: 30 })
    .filter((s) => !s.includes("\0") && !s.includes("$"));
  fc.assert(
    fc.property(value, (v) => {
      const { env } = environment(pod(`      env: [{name: V, value: ${JSON.stringify(v)}}]`));
      assert.equal(env.get("V"), v);
    }),
    { numRuns: 300 },
  );
});

Deno.test("env: later entries override earlier ones and envFrom, in place", () => {
  const { env } = environment(pod(
    `      envFrom: [{configMapRef: {name: cm}}]
      env:
        - {name: A, value: "1"}
        - {name: B, value: "$(A)$(K)"}
        - {name: A, value: "2"}
        - {name: K, value: "override"}`,
    `---
kind: ConfigMap
metadata: {name: cm}
data: {K: from-map}`,
  ));
  assert.deepEqual([...env.keys()].slice(0, 3), ["K", "A", "B"]);
  assert.equal(env.get("K"), "override");
  assert.equal(env.get("A"), "2");
  assert.equal(env.get("B"), "1from-map");
});

Deno.test("env: secret values and values expanding them stay out of the unit file", () => {
  const { env, secret, file } = environment(pod(
    `      env:
        - {name: PW, valueFrom: {secretKeyRef: {name: s, key: pw}}}
        - {name: DSN, value: "x:$(PW)@db"}
        - {name: PLAIN, value: "x:$(NOPE)"}`,
    `---
kind: Secret
metadata: {name: s}
data: {pw: aHVudGVyMg==}`,
  ));
  assert.equal(secret.get("PW"), "hunter2");
  assert.equal(secret.get("DSN"), "x:hunter2@db");
  assert.equal(env.get("PLAIN"), "x:$(NOPE)");
  assert.ok(!env.has("PW") && !env.has("DSN"));
  assert.ok(file?.kind === "file" && file.secret && file.mode === 0o600 && file.uid === 0);
});

Deno.test("env: KUBERNETES_SERVICE_* omitted when the API server is unknown", () => {
  const input = inputFromManifest(pod(""));
  input.node = { ...input.node, apiServerHost: undefined, apiServerPort: undefined };
  const text = planPod(input).units[0].text;
  assert.ok(!text.includes("KUBERNETES_SERVICE"));
  assert.ok(text.includes('"SYSTEMK_NODE_EXTERNAL_IP=198.51.100.2"'));
});
