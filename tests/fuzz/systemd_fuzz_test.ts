/**
 * Generated pods run by a real systemd 252: for each, the process receives exactly the argv
 * and the environment the independent expectation (tests/fuzz/_expect.ts) says — hostile
 * words and values through `$(VAR)` expansion, ConfigMap and Secret keys (the latter through
 * the root-only `EnvironmentFile=`), `envFrom` prefixes. The planner fuzz proves the unit text;
 * this proves what systemd makes of it.
 *
 * `FUZZ_SEED=<n>` replays a run; `FUZZ_RUNS=<n>` runs n/40 pods (default 25).
 *
 * @module
 */
import assert from "node:assert/strict";
import fc from "fast-check";
import type { V1Pod } from "@kubernetes/client-node";
import { planPod, type PodPlan } from "../../src/plan/mod.ts";
import { applyVolumes } from "../../src/volumes/apply.ts";
import { bootTestSystemd, type TestSystemd } from "../harness/systemd.ts";
import { intendedArgv, intendedEnvironment } from "./_expect.ts";
import { CLEAN, type FuzzCase, fuzzNode, SECRET_MARKER, STATE_DIR } from "./_pods.ts";

const SEED = Number(Deno.env.get("FUZZ_SEED") ?? Math.floor(Math.random() * 2 ** 31));
const PODS = Math.ceil(Number(Deno.env.get("FUZZ_RUNS") ?? 1000) / 40);

// Writes argv and the environment NUL-separated, bypassing the shell's own variables. No shell
// variable of its own: a loop variable would overwrite a generated env var of the same name.
const SCRIPT =
  ': > /out/argv; [ $# -eq 0 ] || printf "%s\\0" "$@" > /out/argv; exec /usr/bin/env -0 > /out/env';
// Variables a shell sets or drops itself: not systemk's doing.
const SHELL_VARIABLES = new Set(["PWD", "OLDPWD", "IFS", "PS1", "PS2", "PS4", "PPID", "OPTIND"]);

const users = [{ name: "nobody", uid: 65534, gid: 65534 }];

const keys = fc.uniqueArray(CLEAN.key, { minLength: 1, maxLength: 3 });

/** One pod: `sh -c SCRIPT sh <generated words>` with a generated environment. */
const pod: fc.Arbitrary<FuzzCase> = fc.record({ cmKeys: keys, secretKeys: keys }).chain((
  { cmKeys, secretKeys },
) =>
  fc.record({
    words: fc.array(CLEAN.word, { maxLength: 5 }),
    env: fc.array(
      fc.oneof(
        { weight: 3, arbitrary: fc.record({ name: CLEAN.envName, value: CLEAN.envValue }) },
        {
          weight: 1,
          arbitrary: fc.record({
            name: CLEAN.envName,
            valueFrom: fc.record({
              secretKeyRef: fc.record({
                name: fc.constant("sec"),
                key: fc.constantFrom(...secretKeys),
              }),
            }),
          }),
        },
        {
          weight: 1,
          arbitrary: fc.record({
            name: CLEAN.envName,
            valueFrom: fc.record({
              configMapKeyRef: fc.record({
                name: fc.constant("cm"),
                key: fc.constantFrom(...cmKeys),
              }),
            }),
          }),
        },
      ),
      { maxLength: 6 },
    ),
    envFrom: fc.array(
      fc.oneof(
        fc.record({ prefix: CLEAN.prefix, configMapRef: fc.constant({ name: "cm" }) }),
        fc.record({ prefix: CLEAN.prefix, secretRef: fc.constant({ name: "sec" }) }),
      ),
      { maxLength: 2 },
    ),
    cmValues: fc.tuple(...cmKeys.map(() => CLEAN.value)),
    secretValues: fc.tuple(...secretKeys.map(() => CLEAN.value)),
  }).map((g): FuzzCase => {
    const spec: V1Pod["spec"] = {
      restartPolicy: "Never",
      securityContext: { runAsUser: 65534, runAsGroup: 65534 },
      containers: [{
        name: "c",
        image: "/bin/sh",
        command: ["/bin/sh", "-c", SCRIPT, "sh"],
        args: g.words,
        env: g.env,
        envFrom: g.envFrom,
        volumeMounts: [{ name: "out", mountPath: "/out" }],
      }],
      volumes: [{ name: "out", emptyDir: {} }],
    };
    const cm = Object.fromEntries(cmKeys.map((k, i) => [k, g.cmValues[i]]));
    const secret = Object.fromEntries(
      secretKeys.map((k, i) => [k, btoa(encodeUtf8(SECRET_MARKER + g.secretValues[i]))]),
    );
    return {
      users,
      input: {
        pod: { metadata: { name: "p", namespace: "fuzz", uid: "fuzz" }, spec },
        configMaps: new Map([["cm", { metadata: { name: "cm" }, data: cm }]]),
        secrets: new Map([["sec", { metadata: { name: "sec" }, data: secret }]]),
        node: fuzzNode(users),
        packages: new Map(),
        stateDir: STATE_DIR,
      },
    };
  })
);

/** UTF-8 bytes as a binary string, for btoa. */
function encodeUtf8(text: string): string {
  return String.fromCharCode(...new TextEncoder().encode(text));
}

async function install(sd: TestSystemd, plan: PodPlan): Promise<void> {
  await applyVolumes(plan.volumes.map((v) => ({ ...v, path: sd.root + v.path })));
  for (const u of plan.units) {
    await Deno.writeTextFile(`${sd.root}/run/systemd/system/${u.name}`, u.text);
  }
}

const fields = (bytes: Uint8Array) =>
  new TextDecoder("utf-8", { ignoreBOM: true }).decode(bytes).split("\0").slice(0, -1);

Deno.test({
  name: "fuzz: generated pods' argv and environment arrive exactly in a real systemd",
  ignore: Deno.uid() !== 0,
  async fn() {
    console.log(`  FUZZ_SEED=${SEED}, ${PODS} pods`);
    // One pod name and UID per case, so their units and directories are distinct.
    const cases = fc.sample(pod, { numRuns: PODS, seed: SEED }).map((c, i) => ({
      ...c,
      input: { ...c.input, pod: { ...c.input.pod, metadata: { name: `p${i}`, uid: `fuzz-${i}` } } },
    }));
    const sd = await bootTestSystemd();
    try {
      const plans = cases.map((c) => planPod(c.input));
      const units = plans.map((p) => p.units[0].name);
      for (const plan of plans) await install(sd, plan);
      const reload = await sd.exec(["systemctl", "daemon-reload"]);
      assert.equal(reload.code, 0, reload.stderr);
      const start = await sd.exec(["systemctl", "start", ...units]);
      assert.equal(start.code, 0, start.stderr);
      for (let n = 0; n < 200; n++) {
        const r = await sd.exec(["systemctl", "show", "-P", "SubState", ...units]);
        if (r.stdout.split("\n").filter(Boolean).every((s) => s !== "running")) break;
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
      for (let i = 0; i < cases.length; i++) {
        const c = cases[i];
        const container = c.input.pod.spec!.containers[0];
        const out = `${sd.root}${plans[i].podDir}/volumes/emptydir/out`;
        const env = intendedEnvironment(c, container);
        const argv = intendedArgv(container, false, env);
        const what = `case ${i} (FUZZ_SEED=${SEED})`;
        assert.deepEqual(fields(await Deno.readFile(`${out}/argv`)), argv.slice(4), what);
        const seen = new Map(
          fields(await Deno.readFile(`${out}/env`)).map((kv) => {
            const eq = kv.indexOf("=");
            return [kv.slice(0, eq), kv.slice(eq + 1)];
          }),
        );
        for (const [name, { value }] of env) {
          if (SHELL_VARIABLES.has(name)) continue;
          assert.equal(seen.get(name), value, `${what}: ${name}`);
        }
      }
    } finally {
      await sd.stop();
    }
  },
});
