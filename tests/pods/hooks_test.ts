import assert from "node:assert/strict";
import type { ExecOptions, ExecProcess, ExecStatus } from "../../src/exec/container.ts";
import { runHook } from "../../src/pods/hooks.ts";

const never = new AbortController().signal;

/**
 * An exec that records what it was asked and ends as told, or once killed (the real one is
 * tested in src/exec and end to end).
 */
function fakeExec(end?: Partial<ExecStatus> & { output?: string }) {
  const asked: ExecOptions[] = [];
  let kills = 0;
  const exec = (options: ExecOptions): Promise<ExecProcess> => {
    asked.push(options);
    let killed!: () => void;
    const killedNow = new Promise<ExecStatus>((resolve) =>
      killed = () => resolve({ exitCode: null, signal: "SIGKILL", timedOut: false })
    );
    const status = end
      ? Promise.resolve({ exitCode: null, signal: null, timedOut: false, ...end })
      : killedNow;
    return Promise.resolve({
      stdout: new Blob([end?.output ?? ""]).stream(),
      stderr: new Blob([]).stream(),
      status,
      resize: () => Promise.resolve(),
      kill: () => (kills++, killed(), Promise.resolve()),
    });
  };
  return { exec, asked, kills: () => kills };
}

Deno.test("exec hooks: exit 0 succeeds, else the failure says how it ended", async () => {
  const container = { name: "c" };
  const ok = fakeExec({ exitCode: 0 });
  const hook = { exec: { command: ["touch", "/tmp/x"] } };
  assert.deepEqual(
    await runHook(hook, { container, host: "h", exec: ok.exec, signal: never, timeoutMs: 5000 }),
    { ok: true },
  );
  assert.deepEqual(ok.asked, [{ command: ["touch", "/tmp/x"], timeoutMs: 5000 }]);
  const failed = fakeExec({ exitCode: 2, output: "touch: denied\n" });
  assert.deepEqual(
    await runHook(hook, { container, host: "h", exec: failed.exec, signal: never }),
    {
      ok: false,
      message: 'command "touch /tmp/x" exited with 2: touch: denied\n',
    },
  );
  assert.equal((await runHook(hook, { container, host: "h", signal: never })).ok, false);
  assert.equal(
    (await runHook({ exec: { command: [] } }, {
      container,
      host: "h",
      exec: ok.exec,
      signal: never,
    }))
      .ok,
    false,
  );
});

Deno.test("an aborted exec hook kills its command", async () => {
  const hanging = fakeExec();
  const abort = new AbortController();
  const running = runHook({ exec: { command: ["sleep", "60"] } }, {
    container: { name: "c" },
    host: "h",
    exec: hanging.exec,
    signal: abort.signal,
  });
  await new Promise((r) => setTimeout(r, 10));
  abort.abort();
  const outcome = await running;
  assert.equal(hanging.kills(), 1);
  assert.deepEqual(outcome, {
    ok: false,
    message: 'command "sleep 60" was killed before it finished: ',
  });
});

Deno.test("httpGet hooks: any answer succeeds, a failed request fails", async () => {
  const seen: string[] = [];
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, (req) => {
    seen.push(`${new URL(req.url).pathname} ${req.headers.get("user-agent")}`);
    return new Response("no", { status: 503 });
  });
  const port = server.addr.port;
  const container = { name: "c", ports: [{ name: "http", containerPort: port }] };
  try {
    const hook = { httpGet: { path: "drain", port: "http" } };
    assert.deepEqual(
      await runHook(hook, { container, host: "127.0.0.1", signal: never }),
      { ok: true },
      "the kubelet ignores the status code of hooks",
    );
    assert.deepEqual(seen, ["/drain kube-lifecycle/1.34"]);
  } finally {
    await server.shutdown();
  }
  const refused = await runHook({ httpGet: { path: "/", port } }, {
    container,
    host: "127.0.0.1",
    signal: never,
  });
  assert.equal(refused.ok, false);
  assert.match(refused.message!, /^Get "http:\/\/127\.0\.0\.1:\d+\/": /);
  // A server that never answers: the hook ends when aborted (the container stops).
  const silent = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const abort = new AbortController();
  const waiting = runHook({ httpGet: { path: "/", port: silent.addr.port } }, {
    container,
    host: "127.0.0.1",
    signal: abort.signal,
  });
  const accepted = await silent.accept();
  abort.abort();
  assert.match((await waiting).message!, /context canceled/);
  accepted.close();
  silent.close();
  const unknownPort = await runHook({ httpGet: { path: "/", port: "nope" } }, {
    container,
    host: "127.0.0.1",
    signal: never,
  });
  assert.equal(unknownPort.ok, false);
});

Deno.test("sleep hooks wait, and end early when aborted; tcpSocket hooks fail", async () => {
  const container = { name: "c" };
  assert.deepEqual(
    await runHook({ sleep: { seconds: 0 } }, { container, host: "h", signal: never }),
    { ok: true },
  );
  const abort = new AbortController();
  const sleeping = runHook({ sleep: { seconds: 3600 } }, {
    container,
    host: "h",
    signal: abort.signal,
  });
  abort.abort();
  assert.equal((await sleeping).ok, false);
  const tcp = await runHook({ tcpSocket: { port: 1 } }, { container, host: "h", signal: never });
  assert.equal(tcp.ok, false);
});
