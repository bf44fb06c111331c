/**
 * `deno task compile`: builds the single `systemk` binary with `deno compile` and the permission
 * set of scripts/permissions.ts. `deno compile` needs a `denort` runtime, which it downloads from
 * Deno's server, or takes from `DENORT_BIN`. Where neither works (these development machines)
 * this says so and exits non-zero. A binary that does not answer `systemk version` as systemk
 * (e.g. `DENORT_BIN` pointing at the full `deno` CLI, which yields the plain Deno CLI) is deleted
 * and reported: no binary is better than one that silently does something else.
 *
 *     deno task compile [--output dist/systemk] [--target x86_64-unknown-linux-gnu]
 *
 * @module
 */
import { parseArgs } from "node:util";
import { PERMISSION_FLAGS } from "./permissions.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: { output: { type: "string", default: "dist/systemk" }, target: { type: "string" } },
});
const repo = new URL("..", import.meta.url).pathname;
const output = values.output!;
const args = [
  "compile",
  ...PERMISSION_FLAGS,
  "--output",
  output,
  ...(values.target ? ["--target", values.target] : []),
  `${repo}main.ts`,
];
console.log(`compile: deno ${args.join(" ")}`);
if (Deno.env.get("DENORT_BIN")) {
  console.log(`compile: runtime from DENORT_BIN=${Deno.env.get("DENORT_BIN")}`);
}
const built = await new Deno.Command(Deno.execPath(), { args, stdout: "inherit", stderr: "piped" })
  .output();
const stderr = new TextDecoder().decode(built.stderr);
await Deno.stderr.write(built.stderr);
if (!built.success) {
  const download = /denort|download|dl\.deno\.land|error sending request|dns error/i.test(stderr);
  console.error(
    download
      ? "compile: FAILED: deno compile could not get its denort runtime (Deno's download server is " +
        "unreachable from here). Build on a machine that reaches it, or set DENORT_BIN to a denort " +
        "binary of the same Deno version."
      : "compile: FAILED (see deno's message above)",
  );
  Deno.exit(1);
}
const check = await new Deno.Command(output, {
  args: ["version"],
  stdout: "piped",
  stderr: "piped",
})
  .output().catch((e) => ({ success: false, stdout: new TextEncoder().encode(String(e)) }));
const said = new TextDecoder().decode(check.stdout);
if (!check.success || !said.startsWith("systemk ")) {
  await Deno.remove(output).catch(() => {});
  console.error(
    `compile: FAILED: the built file does not run systemk (\`${output} version\` said: ` +
      `${JSON.stringify(said.slice(0, 120))}); removed it. Is DENORT_BIN a denort runtime?`,
  );
  Deno.exit(1);
}
console.log(`compile: built ${output}\n${said}`);
