import assert from "node:assert/strict";
import {
  ExecError,
  type ExecOptions,
  type ExecProcess,
  type ExecStatus,
} from "../../src/exec/container.ts";
import { startGrpcHealthServer } from "../harness/grpc_health.ts";
import { selfSignedCertificate } from "../../src/http/tls.ts";
import { checkProbe, UnsupportedProbe } from "../../src/probes/probe.ts";

Deno.test("httpGet: 2xx/3xx succeed, others fail; headers and named ports", async () => {
  const seen: string[] = [];
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, (req) => {
    const url = new URL(req.url);
    seen.push(`${url.pathname} ${req.headers.get("x-probe")} ${req.headers.get("user-agent")}`);
    if (url.pathname === "/healthz") return new Response("ok");
    if (url.pathname === "/moved") return Response.redirect("http://127.0.0.1:1/", 302);
    return new Response("no", { status: 503 });
  });
  try {
    const port = server.addr.port;
    const container = { name: "web", ports: [{ name: "http", containerPort: port }] };
    const get = (path: string, p: number | string = port) =>
      checkProbe({ httpGet: { path, port: p, httpHeaders: [{ name: "X-Probe", value: "1" }] } }, {
        container: container,
        host: "127.0.0.1",
      });
    assert.deepEqual(await get("/healthz", "http"), { ok: true });
    assert.deepEqual(await get("/moved"), { ok: true });
    const failed = await get("/down");
    assert.equal(failed.ok, false);
    assert.match(failed.message!, /statuscode: 503/);
    assert.deepEqual(seen[0], "/healthz 1 kube-probe/1.34");
    await assert.rejects(get("/healthz", "nope"), UnsupportedProbe);
  } finally {
    await server.shutdown();
  }
});

Deno.test("httpGet HTTPS: a self-signed certificate is accepted; Host header; timeout", async () => {
  const dir = await Deno.makeTempDir({ prefix: "systemk-probe-" });
  const { cert, key } = await selfSignedCertificate(dir, {
    hostname: "probe.test",
    addresses: ["127.0.0.1"],
  });
  const hosts: string[] = [];
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, cert, key, onListen() {} },
    async (req) => {
      hosts.push(req.headers.get("host") ?? "");
      if (new URL(req.url).pathname === "/slow") await new Promise((r) => setTimeout(r, 1500));
      return new Response("ok");
    },
  );
  try {
    const port = server.addr.port;
    const get = (path: string, extra: object = {}) =>
      checkProbe({ httpGet: { path, port, scheme: "HTTPS", ...extra }, timeoutSeconds: 1 }, {
        container: { name: "c" },
        host: "127.0.0.1",
      });
    assert.deepEqual(await get("/healthz"), { ok: true });
    await get("/healthz", { httpHeaders: [{ name: "Host", value: "web.example" }] });
    assert.deepEqual(hosts, [`127.0.0.1:${port}`, "web.example"]);
    const slow = await get("/slow");
    assert.equal(slow.ok, false);
    assert.equal(
      slow.message,
      `Get "https://127.0.0.1:${port}/slow": context deadline exceeded ` +
        "(Client.Timeout exceeded while awaiting headers)",
    );
    // An HTTPS probe of a plain HTTP server fails (no TLS handshake), as does HTTP to HTTPS.
    const plain = Deno.serve(
      { hostname: "127.0.0.1", port: 0, onListen() {} },
      () => new Response("ok"),
    );
    try {
      const wrong = await checkProbe({ httpGet: { port: plain.addr.port, scheme: "HTTPS" } }, {
        container: { name: "c" },
        host: "127.0.0.1",
      });
      console.log(`  HTTPS to an HTTP server: ${wrong.message}`);
      assert.equal(wrong.ok, false);
    } finally {
      await plain.shutdown();
    }
  } finally {
    await server.shutdown();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("grpc: the health service's answer decides", async () => {
  const server = await startGrpcHealthServer({ "": "SERVING", "db": "NOT_SERVING" });
  try {
    const grpc = (service?: string) =>
      checkProbe({ grpc: { port: server.port, service } }, {
        container: { name: "c" },
        host: "127.0.0.1",
      });
    assert.deepEqual(await grpc(), { ok: true });
    assert.deepEqual(await grpc("db"), {
      ok: false,
      message: 'service unhealthy (responded with "NOT_SERVING")',
    });
  } finally {
    server.stop();
  }
});

Deno.test("tcpSocket: an open port succeeds, a closed one fails", async () => {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  try {
    assert.deepEqual(
      await checkProbe({ tcpSocket: { port } }, { container: { name: "c" }, host: "127.0.0.1" }),
      {
        ok: true,
      },
    );
  } finally {
    listener.close();
  }
  const closed = await checkProbe({ tcpSocket: { port } }, {
    container: { name: "c" },
    host: "127.0.0.1",
  });
  assert.equal(closed.ok, false);
});

/** An exec that records what it was asked and ends as told (the real one: src/exec). */
function fakeExec(end: Partial<ExecStatus> & { output?: string } | Error) {
  const asked: ExecOptions[] = [];
  const exec = (options: ExecOptions): Promise<ExecProcess> => {
    asked.push(options);
    if (end instanceof Error) return Promise.reject(end);
    return Promise.resolve({
      stdout: new Blob([end.output ?? ""]).stream(),
      stderr: new Blob([]).stream(),
      status: Promise.resolve({ exitCode: null, signal: null, timedOut: false, ...end }),
      resize: () => Promise.resolve(),
      kill: () => Promise.resolve(),
    });
  };
  return { exec, asked };
}

Deno.test("exec: exit 0 succeeds, anything else fails with the output; the timeout is passed on", async () => {
  const probe = { exec: { command: ["cat", "/tmp/healthy"] }, timeoutSeconds: 3 };
  const ok = fakeExec({ exitCode: 0 });
  assert.deepEqual(
    await checkProbe(probe, { container: { name: "c" }, host: "127.0.0.1", exec: ok.exec }),
    { ok: true },
  );
  assert.deepEqual(ok.asked, [{ command: ["cat", "/tmp/healthy"], timeoutMs: 3000 }]);
  const failed = fakeExec({ exitCode: 1, output: "cat: /tmp/healthy: No such file\n" });
  assert.deepEqual(
    await checkProbe(probe, { container: { name: "c" }, host: "127.0.0.1", exec: failed.exec }),
    {
      ok: false,
      message: "cat: /tmp/healthy: No such file\n",
    },
  );
  const killed = fakeExec({ signal: "SIGSEGV" });
  assert.equal(
    (await checkProbe(probe, { container: { name: "c" }, host: "127.0.0.1", exec: killed.exec }))
      .ok,
    false,
  );
  const slow = fakeExec({ signal: "SIGKILL", timedOut: true });
  assert.deepEqual(
    await checkProbe(probe, { container: { name: "c" }, host: "127.0.0.1", exec: slow.exec }),
    {
      ok: false,
      message: 'command "cat /tmp/healthy" timed out',
    },
  );
  const stopped = fakeExec(new ExecError("container u is not running (inactive)"));
  assert.deepEqual(
    await checkProbe(probe, { container: { name: "c" }, host: "127.0.0.1", exec: stopped.exec }),
    {
      ok: false,
      message: "container u is not running (inactive)",
    },
  );
});

Deno.test("exec probes without a command or a way to run it are unsupported", async () => {
  await assert.rejects(
    checkProbe({ exec: { command: ["true"] } }, { container: { name: "c" }, host: "127.0.0.1" }),
    UnsupportedProbe,
  );
  await assert.rejects(
    checkProbe({ exec: { command: [] } }, {
      container: { name: "c" },
      host: "127.0.0.1",
      exec: fakeExec({}).exec,
    }),
    UnsupportedProbe,
  );
});
