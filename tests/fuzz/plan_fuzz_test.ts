/**
 * Fuzzing the planner with generated pods (tests/fuzz/_pods.ts) against an independent
 * statement of what it must produce (tests/fuzz/_expect.ts):
 *
 * (a) planPod returns a plan or throws PodError naming the pod — never another error;
 * (b) every unit parses back to exactly the intended directives: keys from an allow-list, the
 *     [X-Kubernetes] identity, the argv, the environment, the working directory and the binds;
 * (c) every volume entry lies in the pod's directory, every bind source there or in an allowed
 *     hostPath;
 * (d) Secret data never reaches a unit file (or a PodError message), and Secret files are never
 *     readable by others.
 *
 * `FUZZ_SEED=<n>` replays a run (each run prints its seed), `FUZZ_RUNS=<n>` scales the case
 * counts (default 1000 per property here).
 *
 * @module
 */
import assert from "node:assert/strict";
import fc from "fast-check";
import { planPod, PodError, type PodPlan } from "../../src/plan/mod.ts";
import { decodeBindPaths, parseUnit } from "../../src/unit/mod.ts";
import { checkPlan, isBelow } from "./_expect.ts";
import { cleanCase, type FuzzCase, fuzzCase, hostile, SECRET_MARKER } from "./_pods.ts";

const SEED = Number(Deno.env.get("FUZZ_SEED") ?? Math.floor(Math.random() * 2 ** 31));
const RUNS = Number(Deno.env.get("FUZZ_RUNS") ?? 1000);
console.log(`tests/fuzz: FUZZ_SEED=${SEED} FUZZ_RUNS=${RUNS}`);

/** Plans a case: the plan, or the PodError (anything else fails the property). */
function plan(c: FuzzCase): PodPlan | PodError {
  try {
    return planPod(c.input);
  } catch (e) {
    if (e instanceof PodError) return e;
    throw e;
  }
}

function checkError(c: FuzzCase, e: PodError): void {
  assert.ok(e.message.startsWith("pod "), `message names the pod: ${e.message}`);
  assert.ok(e.reason !== "", "a reason for the status");
  assert.ok(!e.message.includes(SECRET_MARKER), `Secret data in the error: ${e.message}`);
  void c;
}

/** Runs `property` over `arbitrary`, printing how many cases were planned and refused. */
function fuzz(name: string, arbitrary: fc.Arbitrary<FuzzCase>, runs: number, mustPlan: boolean) {
  Deno.test(`fuzz: ${name}`, () => {
    let planned = 0;
    let refused = 0;
    const reasons = new Map<string, number>();
    const started = performance.now();
    fc.assert(
      fc.property(arbitrary, (c) => {
        const result = plan(c);
        if (result instanceof PodError) {
          if (mustPlan) assert.fail(`refused a well-formed pod: ${result.message}`);
          checkError(c, result);
          refused++;
          const what = result.message.replace(/^pod [^:]*: /, "").replace(/[ ,:"].*/s, "");
          reasons.set(what, (reasons.get(what) ?? 0) + 1);
          return;
        }
        checkPlan(c, result);
        planned++;
      }),
      { seed: SEED, numRuns: runs },
    );
    const top = [...reasons].sort((a, b) => b[1] - a[1]).slice(0, 6).map(([r, n]) => `${r} ${n}`);
    console.log(
      `  ${planned} planned, ${refused} refused in ${Math.round(performance.now() - started)} ms` +
        (top.length ? ` (refusals by first word: ${top.join(", ")})` : ""),
    );
  });
}

fuzz("well-formed pods are all planned exactly", cleanCase, RUNS, true);
// One field in 40 hostile: most cases reach the later stages (units, mounts) and get planned.
fuzz(
  "pods with a rare hostile field are planned exactly or refused",
  fuzzCase(hostile(40)),
  RUNS,
  false,
);
fuzz(
  "pods with a hostile field in ten are planned exactly or refused",
  fuzzCase(hostile(10)),
  RUNS,
  false,
);
fuzz(
  "pods with hostile fields everywhere never crash the planner",
  fuzzCase(hostile(3)),
  RUNS,
  false,
);

/** Every field path of `value` (objects and lists), for replacing one. */
function fieldPaths(value: unknown, prefix: (string | number)[] = []): (string | number)[][] {
  if (value === null || typeof value !== "object") return [prefix];
  return [
    prefix,
    ...Object.entries(value).flatMap(([k, v]) =>
      fieldPaths(v, [...prefix, Array.isArray(value) ? Number(k) : k])
    ),
  ];
}

const WRONG_TYPES: unknown[] = [null, 7, "str", true, [], {}, ["x"], { a: 1 }];

/** Well-formed pods with one field (of metadata or spec) replaced by a value of another type. */
const mistyped: fc.Arbitrary<FuzzCase> = cleanCase.chain((c) => {
  const pod = c.input.pod;
  const paths = fieldPaths({ metadata: pod.metadata, spec: pod.spec }).filter((p) => p.length);
  return fc.tuple(fc.constantFrom(...paths), fc.constantFrom(...WRONG_TYPES)).map(
    ([path, wrong]) => {
      const copy = structuredClone({ metadata: pod.metadata, spec: pod.spec });
      let parent: Record<string | number, unknown> = copy;
      for (const k of path.slice(0, -1)) parent = parent[k] as Record<string | number, unknown>;
      parent[path.at(-1)!] = wrong;
      return { ...c, input: { ...c.input, pod: { ...pod, ...copy } } };
    },
  );
});

// Manifests (standalone mode, `systemk plan`) are not typed by an API server.
fuzz("pods with a field of the wrong type are refused, never crash", mistyped, RUNS, false);

Deno.test("fuzz: two pods never bind each other's directory", () => {
  fc.assert(
    fc.property(fuzzCase(hostile(20)), fuzzCase(hostile(20)), (a, b) => {
      const plans = [plan(a), plan(b)];
      if (plans.some((p) => p instanceof PodError)) return;
      const [pa, pb] = plans as PodPlan[];
      if (pa.podDir === pb.podDir) return; // the same UID is the same pod
      for (const [mine, other] of [[pa, pb], [pb, pa]]) {
        for (const u of mine.units) {
          for (const section of parseUnit(u.text).sections) {
            for (const line of section.lines) {
              if (line.kind !== "directive" || !/^Bind(ReadOnly)?Paths$/.test(line.key)) continue;
              for (const { source } of decodeBindPaths(line.value)) {
                assert.ok(!isBelow(source, other.podDir), `${u.name} binds ${source}`);
              }
            }
          }
        }
        for (const v of mine.volumes) assert.ok(!isBelow(v.path, other.podDir));
      }
    }),
    { seed: SEED, numRuns: Math.ceil(RUNS / 4) },
  );
});
