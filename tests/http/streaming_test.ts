import assert from "node:assert/strict";
import type { ExecProcess, TerminalSize } from "../../src/exec/container.ts";
import { connectClient } from "../harness/spdy_client.ts";
import {
  commandStatus,
  negotiate,
  portForward,
  runExec,
  streamOptions,
  terminalSizes,
} from "../../src/http/streaming.ts";

Deno.test("stream options: input/output/error/tty as the apiserver sends them", () => {
  assert.deepEqual(streamOptions(new URLSearchParams("input=1&output=1&error=1")), {
    stdin: true,
    stdout: true,
    stderr: true,
    tty: false,
  });
  // A terminal carries stderr too: no separate stream, as the kubelet does.
  assert.deepEqual(streamOptions(new URLSearchParams("output=1&error=1&tty=1")), {
    stdin: false,
    stdout: true,
    stderr: false,
    tty: true,
  });
  assert.match(String(streamOptions(new URLSearchParams("tty=1"))), /at least 1 of/);
});

Deno.test("the error stream's status: success, exit code as kubectl reads it, failure", () => {
  assert.deepEqual(commandStatus({ exitCode: 0 }), { metadata: {}, status: "Success" });
  assert.deepEqual(commandStatus({ exitCode: 3 }), {
    metadata: {},
    status: "Failure",
    message: "command terminated with non-zero exit code: exit status 3",
    reason: "NonZeroExitCode",
    details: { causes: [{ reason: "ExitCode", message: "3" }] },
  });
  const failed = commandStatus({ error: "no stdin", reason: "BadRequest", code: 400 });
  assert.deepEqual([failed.status, failed.reason, failed.code], ["Failure", "BadRequest", 400]);
});

Deno.test("terminal sizes: one JSON object a line, however the bytes are cut", async () => {
  const text = '{"Width":80,"Height":24}\n{"Width":120,"Height":40}\n{"Width":0,"Height":0}\n';
  const bytes = new TextEncoder().encode(text);
  const chunks = [bytes.subarray(0, 5), bytes.subarray(5, 30), bytes.subarray(30)];
  const sizes = [];
  for await (const size of terminalSizes(ReadableStream.from(chunks))) sizes.push(size);
  // A zero size (a client without a terminal size) is no size.
  assert.deepEqual(sizes, [{ columns: 80, rows: 24 }, { columns: 120, rows: 40 }]);
});

Deno.test("negotiation: the client's first protocol the server has", () => {
  const request = (protocols: string) =>
    new Request("https://kubelet/exec", {
      headers: {
        connection: "Upgrade",
        upgrade: "SPDY/3.1",
        "x-stream-protocol-version": protocols,
      },
    });
  assert.equal(
    negotiate(request("v5.channel.k8s.io, v4.channel.k8s.io"), ["v4.channel.k8s.io"]),
    "v4.channel.k8s.io",
  );
  const refused = negotiate(request("v2.channel.k8s.io"), ["v4.channel.k8s.io"]) as Response;
  assert.equal(refused.status, 403);
  assert.equal(refused.headers.get("x-accepted-stream-protocol-versions"), "v4.channel.k8s.io");
  const plain = negotiate(new Request("https://kubelet/exec"), ["v4.channel.k8s.io"]) as Response;
  assert.equal(plain.status, 400);
});

/** A command that ends when `end` is called, with the terminal sizes it was given. */
function fakeProcess(status: { exitCode: number | null; signal: string | null }) {
  const resized: TerminalSize[] = [];
  const ended = Promise.withResolvers<void>();
  let killed = false;
  const process: ExecProcess = {
    stdout: ReadableStream.from([new TextEncoder().encode("out")]),
    stderr: ReadableStream.from([]),
    resize(size) {
      resized.push(size);
      if (resized.length === 2) ended.resolve();
      return Promise.resolve();
    },
    kill() {
      killed = true;
      ended.resolve();
      return Promise.resolve();
    },
    status: ended.promise.then(() => ({ ...status, timedOut: false })),
  };
  return { process, resized, killed: () => killed };
}

Deno.test("exec: the first size starts the terminal, later ones resize it", async () => {
  const fake = fakeProcess({ exitCode: 5, signal: null });
  let started: TerminalSize | undefined;
  const sizes = [{ columns: 100, rows: 30 }, { columns: 90, rows: 20 }];
  const outcome = await runExec(
    (_stdin, tty) => {
      started = tty;
      return Promise.resolve(fake.process);
    },
    { size: { columns: 80, rows: 24 }, resize: ReadableStream.from(sizes).values() },
    { signal: new AbortController().signal },
  );
  assert.deepEqual(started, { columns: 80, rows: 24 });
  assert.deepEqual(fake.resized, sizes);
  assert.deepEqual(outcome, { exitCode: 5 });
});

Deno.test("exec: a client that goes away kills the command; a signal is 128 + its number", async () => {
  const fake = fakeProcess({ exitCode: null, signal: "SIGKILL" });
  const gone = new AbortController();
  const outcome = runExec(() => Promise.resolve(fake.process), {}, { signal: gone.signal });
  gone.abort();
  assert.deepEqual(await outcome, { exitCode: 137 });
  assert.ok(fake.killed());
});

Deno.test("port-forward: stream pairs by request id, bytes both ways, half-close, errors", async () => {
  // The pod's server: answers what it read once its client half-closes, then closes.
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const podPort = (listener.addr as Deno.NetAddr).port;
  const serving = (async () => {
    for await (const conn of listener) {
      // conn.read, not conn.readable: the readable's end would close the connection.
      let length = 0;
      const buffer = new Uint8Array(65536);
      for (let n = await conn.read(buffer); n !== null; n = await conn.read(buffer)) length += n;
      await conn.write(new TextEncoder().encode(`got ${length} bytes`));
      conn.close();
    }
  })();
  const { socket, client } = await connectClient();
  const served = portForward("default/web", {
    dial: (port) => Deno.connect({ hostname: "127.0.0.1", port }),
  })
    .serve(socket);
  try {
    // Request 0: error stream first, then data; request 1 interleaved, data first.
    await client.open(1, [["streamtype", "error"], ["port", `${podPort}`], ["requestid", "0"]]);
    await client.open(3, [["streamtype", "data"], ["port", `${podPort}`], ["requestid", "1"]]);
    await client.open(5, [["streamtype", "data"], ["port", `${podPort}`], ["requestid", "0"]]);
    await client.open(7, [["streamtype", "error"], ["port", `${podPort}`], ["requestid", "1"]]);
    client.send({ type: "data", streamId: 5, fin: true, data: new Uint8Array(70_000) });
    client.send({ type: "data", streamId: 3, fin: true, data: Uint8Array.of(1, 2, 3) });
    const answer = (id: number) =>
      client.until(() =>
        client.received(id).fin && new TextDecoder().decode(client.received(id).data)
      );
    assert.equal(await answer(5), "got 70000 bytes");
    assert.equal(await answer(3), "got 3 bytes");
    // The error streams end without a word: nothing went wrong.
    await client.until(() => client.received(1).fin);
    assert.equal(client.received(1).data.length, 0);
    // A second error stream while a request waits for its data stream: refused.
    await client.open(9, [["streamtype", "error"], ["port", `${podPort}`], ["requestid", "2"]]);
    await client.open(11, [["streamtype", "error"], ["port", `${podPort}`], ["requestid", "2"]]);
    await client.until(() =>
      client.frames.find((f) => f.type === "rstStream" && f.streamId === 11)
    );
    await client.open(13, [["streamtype", "data"], ["port", `${podPort}`], ["requestid", "2"]]);
    client.send({ type: "data", streamId: 13, fin: true, data: new Uint8Array() });
    assert.equal(await answer(13), "got 0 bytes");
    // A port nobody listens on: the reason on the error stream, both streams reset.
    const closed = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const closedPort = (closed.addr as Deno.NetAddr).port;
    closed.close();
    await client.open(15, [["streamtype", "error"], ["port", `${closedPort}`], ["requestid", "3"]]);
    await client.open(17, [["streamtype", "data"], ["port", `${closedPort}`], ["requestid", "3"]]);
    await client.until(() =>
      client.frames.find((f) => f.type === "rstStream" && f.streamId === 17)
    );
    const reason = new TextDecoder().decode(client.received(15).data);
    assert.match(reason, new RegExp(`error forwarding port ${closedPort} to pod default/web`));
    // Not a port at all: the stream is refused.
    await client.open(19, [["streamtype", "data"], ["port", "http"], ["requestid", "4"]]);
    await client.until(() =>
      client.frames.find((f) => f.type === "rstStream" && f.streamId === 19)
    );
  } finally {
    client.close();
    await served;
    listener.close();
    await serving.catch(() => {});
  }
});
