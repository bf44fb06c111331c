/**
 * Golden tests: every `tests/testdata/<case>.yaml` (a Pod plus its ConfigMaps/Secrets) is
 * planned on the fixed test node and compared with `<case>.plan.txt` (formatPlan output) or,
 * when planning fails, `<case>.error.txt` (`<reason>: <message>`). `UPDATE_GOLDEN=1` rewrites
 * the expected files — review every change by hand before committing it.
 *
 * A second test feeds every unit of every successful case to `systemd-analyze verify`.
 *
 * @module
 */
import assert from "node:assert/strict";
import { formatPlan, planPod, PodError, type PodPlan } from "../../src/plan/mod.ts";
import { inputFromManifest } from "./_fixtures.ts";

const DATA = new URL("../testdata/", import.meta.url);
const UPDATE = Deno.env.get("UPDATE_GOLDEN") === "1";

const cases = [...Deno.readDirSync(DATA)]
  .filter((e) => e.isFile && e.name.endsWith(".yaml"))
  .map((e) => e.name.slice(0, -".yaml".length))
  .sort();

function readOptional(url: URL): string | undefined {
  try {
    return Deno.readTextFileSync(url);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return undefined;
    throw e;
  }
}

function run(name: string): { kind: "plan" | "error"; text: string; plan?: PodPlan } {
  const input = inputFromManifest(Deno.readTextFileSync(new URL(`${name}.yaml`, DATA)));
  try {
    const plan = planPod(input);
    return { kind: "plan", text: formatPlan(plan), plan };
  } catch (e) {
    if (!(e instanceof PodError)) throw e;
    return { kind: "error", text: `${e.reason}: ${e.message}\n` };
  }
}

const plans = new Map<string, PodPlan>();

for (const name of cases) {
  Deno.test(`golden: ${name}`, () => {
    const { kind, text, plan } = run(name);
    if (plan) plans.set(name, plan);
    const expectedURL = new URL(`${name}.${kind}.txt`, DATA);
    const otherURL = new URL(`${name}.${kind === "plan" ? "error" : "plan"}.txt`, DATA);
    if (UPDATE) {
      Deno.writeTextFileSync(expectedURL, text);
      if (readOptional(otherURL) !== undefined) Deno.removeSync(otherURL);
      return;
    }
    const expected = readOptional(expectedURL);
    assert.ok(
      expected !== undefined,
      `${name}: got a ${kind}, but ${name}.${kind}.txt does not exist` +
        (readOptional(otherURL) !== undefined ? ` (${otherURL.pathname} does)` : ""),
    );
    assert.equal(text, expected);
  });
}

Deno.test("golden: every planned unit passes systemd-analyze verify", async () => {
  const dir = await Deno.makeTempDir({ prefix: "systemk-plan-verify-" });
  try {
    const names: string[] = [];
    for (const name of cases) {
      const plan = plans.get(name) ?? run(name).plan;
      for (const unit of plan?.units ?? []) {
        await Deno.writeTextFile(`${dir}/${unit.name}`, unit.text);
        names.push(`${dir}/${unit.name}`);
      }
    }
    assert.ok(names.length > 10, "expected units from the golden cases");
    const out = await new Deno.Command("systemd-analyze", {
      args: ["verify", "--man=no", ...names],
      env: { SYSTEMD_LOG_COLOR: "0" },
    }).output();
    const stderr = new TextDecoder().decode(out.stderr);
    // The test packages (prometheus, uptimed, ...) are not installed on this machine.
    const problems = stderr.split("\n").filter((l) =>
      l.trim() !== "" && !/: Command \S+ is not executable: No such file or directory$/.test(l)
    );
    assert.deepEqual(problems, [], stderr);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
