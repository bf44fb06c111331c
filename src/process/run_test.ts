import assert from "node:assert/strict";
import { runCommand } from "./run.ts";

Deno.test("runCommand: output, exit code, standard input and environment", async () => {
  const echo = await runCommand(["/bin/sh", "-c", 'cat; echo "$GREETING" >&2; exit 3'], {
    stdin: "from stdin\n",
    env: { GREETING: "hello" },
  });
  assert.deepEqual(echo, {
    code: 3,
    success: false,
    stdout: "from stdin\n",
    stderr: "hello\n",
  });
  const ok = await runCommand(["/bin/true"]);
  assert.equal(ok.success, true);
  await assert.rejects(() => runCommand(["/nonexistent/program"]));
});
