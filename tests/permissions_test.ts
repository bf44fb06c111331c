import assert from "node:assert/strict";
import { PERMISSION_FLAGS } from "../scripts/permissions.ts";

Deno.test("deno task start runs main.ts with exactly the shipped permission set", async () => {
  const config = JSON.parse(await Deno.readTextFile(new URL("../deno.json", import.meta.url)));
  assert.equal(config.tasks.start, `deno run ${PERMISSION_FLAGS.join(" ")} main.ts`);
  assert.ok(!PERMISSION_FLAGS.includes("--allow-all") && !PERMISSION_FLAGS.includes("-A"));
});

Deno.test("an action outside the shipped permission set is refused", async () => {
  // The same flags the binary is compiled with; the probe tries what systemk must never do.
  const probe = `
    const tries = {
      "run a shell": () => new Deno.Command("sh", { args: ["-c", "true"] }).outputSync(),
      "run rm": () => new Deno.Command("rm", { args: ["--version"] }).outputSync(),
      "load native code": () => Deno.dlopen("/lib/x86_64-linux-gnu/libc.so.6", {}),
    };
    const result = {};
    for (const [what, f] of Object.entries(tries)) {
      try { f(); result[what] = "allowed"; }
      catch (e) { result[what] = e instanceof Deno.errors.NotCapable || e instanceof Deno.errors.PermissionDenied ? "refused" : String(e); }
    }
    result["run systemctl"] = new Deno.Command("systemctl", { args: ["--version"] }).outputSync().success ? "allowed" : "failed";
    console.log(JSON.stringify(result));
  `;
  // `deno eval` would grant everything: run the probe as a file, as main.ts is run.
  const file = await Deno.makeTempFile({ prefix: "systemk-permission-probe-", suffix: ".js" });
  await Deno.writeTextFile(file, probe);
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", ...PERMISSION_FLAGS, file],
    stdout: "piped",
    stderr: "piped",
  }).output().finally(() => Deno.remove(file));
  const result = JSON.parse(new TextDecoder().decode(out.stdout));
  assert.deepEqual(result, {
    "run a shell": "refused",
    "run rm": "refused",
    "load native code": "refused",
    "run systemctl": "allowed",
  }, new TextDecoder().decode(out.stderr));
});
