import assert from "node:assert/strict";
import { checkProbe, UnsupportedProbe } from "./probe.ts";

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
      checkProbe(
        { httpGet: { path, port: p, httpHeaders: [{ name: "X-Probe", value: "1" }] } },
        container,
        "127.0.0.1",
      );
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

Deno.test("tcpSocket: an open port succeeds, a closed one fails", async () => {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  try {
    assert.deepEqual(await checkProbe({ tcpSocket: { port } }, { name: "c" }, "127.0.0.1"), {
      ok: true,
    });
  } finally {
    listener.close();
  }
  const closed = await checkProbe({ tcpSocket: { port } }, { name: "c" }, "127.0.0.1");
  assert.equal(closed.ok, false);
});

Deno.test("exec and grpc probes are refused as unsupported", async () => {
  await assert.rejects(
    checkProbe({ exec: { command: ["true"] } }, { name: "c" }, "127.0.0.1"),
    UnsupportedProbe,
  );
  await assert.rejects(
    checkProbe({ grpc: { port: 1 } }, { name: "c" }, "127.0.0.1"),
    UnsupportedProbe,
  );
});
