import assert from "node:assert/strict";
import { spawnProcess } from "./spawn.ts";

Deno.test("spawnProcess: output streams while the program runs; aborting ends it", async () => {
  const stop = new AbortController();
  const child = spawnProcess(["/bin/sh", "-c", "echo first; exec sleep 600"], {
    signal: stop.signal,
  });
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  assert.equal((await reader.read()).value, "first\n");
  stop.abort();
  assert.deepEqual({ ...await child.status }, { success: false, code: 143, signal: "SIGTERM" });
  assert.equal((await reader.read()).done, true);
  assert.equal(await new Response(child.stderr).text(), "");
});

Deno.test("spawnProcess: an aborted signal ends the program at once; abort after exit is a no-op", async () => {
  const aborted = AbortSignal.abort();
  const never = spawnProcess(["/bin/sleep", "600"], { signal: aborted, stderr: "null" });
  assert.equal((await never.status).signal, "SIGTERM");
  await never.stdout.cancel();

  const stop = new AbortController();
  const done = spawnProcess(["/bin/sh", "-c", "cat; echo err >&2; exit 4"], {
    stdin: "piped",
    signal: stop.signal,
  });
  const writer = done.stdin.getWriter();
  await writer.write(new TextEncoder().encode("in"));
  await writer.close();
  const [stdout, stderr, status] = await Promise.all([
    new Response(done.stdout).text(),
    new Response(done.stderr).text(),
    done.status.then((s) => ({ ...s })),
  ]);
  assert.deepEqual({ stdout, stderr, status }, {
    stdout: "in",
    stderr: "err\n",
    status: { success: false, code: 4, signal: null },
  });
  stop.abort();
  assert.throws(() => spawnProcess(["/nonexistent/program"]));
});
