import assert from "node:assert/strict";
import fc from "fast-check";
import { environmentFile } from "../../src/plan/env.ts";
import { planPod } from "../../src/plan/mod.ts";
import { decodeEnvironment, decodeExecCommandLine, parseUnit } from "../../src/unit/mod.ts";
import { inputFromManifest } from "./_fixtures.ts";

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

/** The unit's `Environment=` lines, the environment the process gets, and the env file. */
function environment(text: string) {
  const plan = planPod(inputFromManifest(text));
  const unit = parseUnit(plan.units[0].text);
  const lines = new Map<string, string>();
  for (const l of unit.sections.find((s) => s.name === "Service")!.lines) {
    if (l.kind === "directive" && l.key === "Environment") {
      const [k, v] = decodeEnvironment(l.value);
      lines.set(k, v);
    }
  }
  const file = plan.volumes.find((v) => v.kind === "file" && v.path.endsWith("/env/c.env"));
  const env = new Map(lines);
  if (file?.kind === "file") {
    for (const [k, v] of readEnvironmentFile(new TextDecoder().decode(file.content))) env.set(k, v);
  }
  return { lines, env, file, text: plan.units[0].text };
}

Deno.test("env: any literal value reaches the container exactly (property)", () => {
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

Deno.test("env: all of it in the root-only file, none in the unit", () => {
  const { lines, env, file, text } = environment(pod(
    `      env:
        - {name: PW, valueFrom: {secretKeyRef: {name: s, key: pw}}}
        - {name: DSN, value: "x:$(PW)@db"}
        - {name: PLAIN, value: "x:$(NOPE)"}`,
    `---
kind: Secret
metadata: {name: s}
data: {pw: aHVudGVyMg==}`,
  ));
  assert.equal(env.get("PW"), "hunter2");
  assert.equal(env.get("DSN"), "x:hunter2@db");
  assert.equal(env.get("PLAIN"), "x:$(NOPE)");
  assert.equal(lines.size, 0, "no Environment= lines");
  assert.ok(!text.includes("hunter2") && !text.includes("x:$(NOPE)"));
  assert.ok(file?.kind === "file" && file.secret && file.mode === 0o600 && file.uid === 0);
});

Deno.test("env: a Secret in command/args is a ${VAR} systemd fills in, not its value", () => {
  const { text } = environment(pod(
    `      args: ["--dsn=$(DSN)", "$(PLAIN) $$(PW) $(PW)$"]
      env:
        - {name: PW, valueFrom: {secretKeyRef: {name: s, key: pw}}}
        - {name: DSN, value: "x:$(PW)@db"}
        - {name: PLAIN, value: "p"}`,
    `---
kind: Secret
metadata: {name: s}
data: {pw: aHVudGVyMg==}`,
  ));
  assert.ok(!text.includes("hunter2"), text);
  const execStart = parseUnit(text).sections.find((s) => s.name === "Service")!.lines
    .flatMap((l) => l.kind === "directive" && l.key === "ExecStart" ? [l.value] : []);
  assert.deepEqual(execStart, ['"/bin/true" "--dsn=${DSN}" "p $$(PW) ${PW}$$"']);
  const values = new Map([["DSN", "x:hunter2@db"], ["PW", "hunter2"]]);
  assert.deepEqual(decodeExecCommandLine(execStart[0], { environment: values }), [
    "/bin/true",
    "--dsn=x:hunter2@db",
    "p $(PW) hunter2$",
  ]);
});

Deno.test("env: KUBERNETES_SERVICE_* omitted when the API server is unknown", () => {
  const input = inputFromManifest(pod(""));
  input.node = { ...input.node, apiServerHost: undefined, apiServerPort: undefined };
  const plan = planPod(input);
  const file = plan.volumes.find((v) => v.kind === "file" && v.path.endsWith("/env/c.env"));
  const content = file?.kind === "file" ? new TextDecoder().decode(file.content) : "";
  assert.ok(!content.includes("KUBERNETES_SERVICE"));
  assert.ok(content.includes('SYSTEMK_NODE_EXTERNAL_IP="198.51.100.2"'));
});
