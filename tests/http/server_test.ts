import assert from "node:assert/strict";
import https from "node:https";
import type { IncomingMessage } from "node:http";
import type { TLSSocket } from "node:tls";
import { X509Certificate } from "node:crypto";
import { KubeletServer } from "../../src/http/server.ts";
import { selfSignedCertificate } from "../../src/http/tls.ts";

const identity = { hostname: "node-1", addresses: ["127.0.0.1"] };

/** GET over TLS, not verifying the server (the test looks at its certificate itself). */
function get(
  port: number,
  path: string,
  client?: { cert: string; key: string },
): Promise<IncomingMessage> {
  return new Promise((resolve, reject) => {
    https.get({
      host: "127.0.0.1",
      port,
      path,
      rejectUnauthorized: false,
      agent: false,
      ...client,
    }, resolve).on("error", reject);
  });
}

async function body(res: IncomingMessage): Promise<string> {
  let text = "";
  for await (const chunk of res) text += new TextDecoder().decode(chunk as Uint8Array);
  return text;
}

function fingerprint(res: IncomingMessage): string {
  return (res.socket as TLSSocket).getPeerCertificate().fingerprint256;
}

Deno.test("server: client certificate handed over; new certificate without dropping streams", async () => {
  const dirs = await Promise.all([1, 2, 3].map(() => Deno.makeTempDir({ prefix: "systemk-srv-" })));
  const [a, b, client] = await Promise.all(
    dirs.map((dir) => selfSignedCertificate(dir, identity)),
  );
  let cancelled = 0;
  const server = await KubeletServer.start({
    address: "127.0.0.1",
    port: 0,
    certificate: a,
    handler(request, credentials) {
      if (new URL(request.url).pathname === "/who") {
        return Promise.resolve(new Response(credentials.certificate?.subject ?? "nobody"));
      }
      let n = 0;
      // An endless log: one line per read, as journalctl --follow gives them.
      return Promise.resolve(
        new Response(
          new ReadableStream({
            async pull(controller) {
              await new Promise((r) => setTimeout(r, 20));
              controller.enqueue(new TextEncoder().encode(`line ${++n}\n`));
            },
            cancel() {
              cancelled++;
            },
          }, { highWaterMark: 0 }),
        ),
      );
    },
  });
  try {
    const who = await get(server.port, "/who", client);
    assert.match(await body(who), /CN=node-1@/);
    const anonymous = await get(server.port, "/who");
    assert.equal(await body(anonymous), "nobody");

    const stream = await get(server.port, "/follow");
    const first = fingerprint(stream);
    const chunks: string[] = [];
    stream.on("data", (d: Uint8Array) => chunks.push(new TextDecoder().decode(d)));
    while (chunks.length < 2) await new Promise((r) => setTimeout(r, 10));

    server.setCertificate(b);
    const fresh = await get(server.port, "/who");
    assert.notEqual(fingerprint(fresh), first, "new connections get the new certificate");
    fresh.resume();
    const seen = chunks.length;
    while (chunks.length < seen + 3) await new Promise((r) => setTimeout(r, 10));
    assert.equal(fingerprint(stream), first, "the open stream kept going on its connection");

    stream.destroy();
    while (cancelled === 0) await new Promise((r) => setTimeout(r, 10));
    assert.equal(cancelled, 1, "the client going away cancels the body");
  } finally {
    await server.close();
    await Promise.all(dirs.map((d) => Deno.remove(d, { recursive: true })));
  }
});

Deno.test("self-signed certificate: made once, reused, for the node's names", async () => {
  const dir = await Deno.makeTempDir({ prefix: "systemk-tls-" });
  try {
    const first = await selfSignedCertificate(dir, identity);
    const again = await selfSignedCertificate(dir, identity);
    assert.equal(again.cert, first.cert);
    const cert = new X509Certificate(first.cert);
    assert.match(cert.subjectAltName ?? "", /DNS:node-1/);
    assert.match(cert.subjectAltName ?? "", /IP Address:127\.0\.0\.1/);
    assert.equal((await Deno.stat(`${dir}/kubelet.key`)).mode! & 0o777, 0o600);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
