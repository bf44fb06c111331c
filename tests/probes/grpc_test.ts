import assert from "node:assert/strict";
import { startGrpcHealthServer } from "../harness/grpc_health.ts";
import {
  checkGrpc,
  decodeHealthCheckResponse,
  encodeHealthCheckRequest,
  frameMessage,
  judgeAnswer,
  unframeMessage,
} from "../../src/probes/grpc.ts";

Deno.test("health messages: encoded and decoded as protobuf", () => {
  assert.deepEqual([...encodeHealthCheckRequest("")], []);
  // A 200-byte name needs a two-byte length varint (0xc8 0x01).
  const long = encodeHealthCheckRequest("x".repeat(200));
  assert.deepEqual([...long.subarray(0, 3)], [0x0a, 0xc8, 0x01]);
  assert.equal(long.length, 203);
  assert.equal(decodeHealthCheckResponse(new Uint8Array()), 0, "absent status is UNKNOWN");
  assert.equal(decodeHealthCheckResponse(Uint8Array.of(0x08, 2)), 2);
  // Unknown fields of every wire type are skipped; the last status wins.
  const mixed = Uint8Array.of(
    0x08,
    1, // status SERVING
    0x12,
    2,
    0x61,
    0x62, // field 2, length-delimited
    0x19,
    ...new Array(8).fill(0), // field 3, fixed64
    0x25,
    0,
    0,
    0,
    0, // field 4, fixed32
    0x28,
    0x96,
    0x01, // field 5, varint 150
    0x08,
    3, // status SERVICE_UNKNOWN
  );
  assert.equal(decodeHealthCheckResponse(mixed), 3);
  assert.throws(() => decodeHealthCheckResponse(Uint8Array.of(0x12, 5, 1)), /truncated/);
  assert.throws(() => decodeHealthCheckResponse(Uint8Array.of(0x08, 0x80)), /varint/);
  assert.throws(() => decodeHealthCheckResponse(Uint8Array.of(0x0b)), /wire type 3/);
});

Deno.test("gRPC frames: 5-byte prefix, one message", () => {
  const frame = frameMessage(encodeHealthCheckRequest("svc"));
  assert.deepEqual([...frame], [0, 0, 0, 0, 5, 0x0a, 3, 0x73, 0x76, 0x63]);
  assert.deepEqual([...unframeMessage(frame)], [0x0a, 3, 0x73, 0x76, 0x63]);
  assert.throws(() => unframeMessage(Uint8Array.of(0, 0, 0)), /no message/);
  assert.throws(() => unframeMessage(Uint8Array.of(1, 0, 0, 0, 0)), /compressed/);
  assert.throws(() => unframeMessage(Uint8Array.of(0, 0, 0, 0, 2, 8)), /truncated/);
});

Deno.test("answers are judged with the kubelet's messages", () => {
  const grpc = { httpStatus: 200, contentType: "application/grpc" };
  const body = (status: number) => frameMessage(Uint8Array.of(0x08, status));
  assert.deepEqual(judgeAnswer({ ...grpc, grpcStatus: "0", body: body(1) }, 1), { ok: true });
  assert.equal(
    judgeAnswer({ ...grpc, grpcStatus: "0", body: body(3) }, 1).message,
    'service unhealthy (responded with "SERVICE_UNKNOWN")',
  );
  assert.equal(
    judgeAnswer({ ...grpc, grpcStatus: "5", grpcMessage: "unknown%20service", body: body(0) }, 1)
      .message,
    "error: health rpc probe failed: rpc error: code = NotFound desc = unknown service",
  );
  assert.match(
    judgeAnswer({ ...grpc, grpcStatus: "12", body: new Uint8Array() }, 1).message!,
    /^error: this server does not implement the grpc health protocol/,
  );
  assert.equal(
    judgeAnswer({ ...grpc, grpcStatus: "4", body: new Uint8Array() }, 3).message,
    "timeout: health rpc did not complete within 3s",
  );
  const notGrpc = judgeAnswer(
    { httpStatus: 200, contentType: "text/plain", body: new Uint8Array() },
    1,
  );
  assert.match(notGrpc.message!, /code = Unknown desc = unexpected content-type "text\/plain"/);
  assert.match(
    judgeAnswer({ httpStatus: 404, body: new Uint8Array() }, 1).message!,
    /does not implement the grpc health protocol.*404/,
  );
  assert.match(
    judgeAnswer({ ...grpc, body: body(1) }, 1).message!,
    /code = Internal desc = server closed the stream without sending trailers/,
  );
});

Deno.test("against a real gRPC health server: SERVING, NOT_SERVING, unknown service", async () => {
  const server = await startGrpcHealthServer({ "": "SERVING", "db": "NOT_SERVING" });
  try {
    assert.deepEqual(
      await checkGrpc({ host: "127.0.0.1", port: server.port }, { service: "", timeoutSeconds: 1 }),
      { ok: true },
    );
    assert.deepEqual(
      await checkGrpc({ host: "127.0.0.1", port: server.port }, {
        service: "db",
        timeoutSeconds: 1,
      }),
      {
        ok: false,
        message: 'service unhealthy (responded with "NOT_SERVING")',
      },
    );
    const unknown = await checkGrpc({ host: "127.0.0.1", port: server.port }, {
      service: "nope",
      timeoutSeconds: 1,
    });
    console.log(`  unknown service: ${unknown.message}`);
    assert.match(unknown.message!, /code = NotFound/);
    server.setStatus("", "NOT_SERVING");
    assert.equal(
      (await checkGrpc({ host: "127.0.0.1", port: server.port }, {
        service: "",
        timeoutSeconds: 1,
      })).ok,
      false,
    );
    server.setStatus("", "SERVING");
    assert.equal(
      (await checkGrpc({ host: "127.0.0.1", port: server.port }, {
        service: "",
        timeoutSeconds: 1,
      })).ok,
      true,
    );
  } finally {
    server.stop();
  }
});

Deno.test("gRPC probe of what is no gRPC server fails with a clear message", async () => {
  // Nothing listening.
  const free = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const closedPort = (free.addr as Deno.NetAddr).port;
  free.close();
  const refused = await checkGrpc({ host: "127.0.0.1", port: closedPort }, {
    service: "",
    timeoutSeconds: 1,
  });
  console.log(`  closed port: ${refused.message}`);
  assert.match(refused.message!, /^error: failed to connect service at "127\.0\.0\.1:\d+"/);

  // An HTTP server (Deno.serve also speaks h2c): it answers 404 in plain text.
  const web = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen() {} },
    () => new Response("not found", { status: 404 }),
  );
  try {
    const answer = await checkGrpc({ host: "127.0.0.1", port: web.addr.port }, {
      service: "",
      timeoutSeconds: 1,
    });
    console.log(`  HTTP server: ${answer.message}`);
    assert.equal(answer.ok, false);
    assert.match(answer.message!, /404/);
  } finally {
    await web.shutdown();
  }

  // A server that speaks something else and hangs up.
  const other = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const hangingUp = (async () => {
    for await (const conn of other) {
      await conn.write(new TextEncoder().encode("SSH-2.0-OpenSSH\r\n")).catch(() => {});
      conn.close();
    }
  })();
  try {
    const answer = await checkGrpc({ host: "127.0.0.1", port: (other.addr as Deno.NetAddr).port }, {
      service: "",
      timeoutSeconds: 1,
    });
    console.log(`  other protocol: ${answer.message}`);
    assert.equal(answer.ok, false);
    assert.match(answer.message!, /^(error|timeout): /);
  } finally {
    other.close();
    await hangingUp;
  }

  // A server that accepts and never answers: the probe's timeout.
  const silent = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const held: Deno.Conn[] = [];
  const accepting = (async () => {
    for await (const conn of silent) held.push(conn);
  })();
  try {
    const started = performance.now();
    const answer = await checkGrpc(
      { host: "127.0.0.1", port: (silent.addr as Deno.NetAddr).port },
      { service: "", timeoutSeconds: 1 },
    );
    console.log(`  silent server: ${answer.message} (${(performance.now() - started) | 0} ms)`);
    assert.match(answer.message!, /^timeout: /);
  } finally {
    silent.close();
    held.forEach((c) => c.close());
    await accepting;
  }
});
