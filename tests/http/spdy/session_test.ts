import assert from "node:assert/strict";
import { concat } from "../../../src/http/spdy/compression.ts";
import { SpdySession, type SpdyStream, StreamClosedError } from "../../../src/http/spdy/session.ts";
import { connectClient } from "../../harness/spdy_client.ts";

/** A session on one end of a loopback connection and a test client on the other. */
async function connect(onStream: (stream: SpdyStream) => void) {
  const { socket, client } = await connectClient();
  const session = new SpdySession(socket, { onStream });
  return {
    session,
    client,
    async close() {
      client.close();
      await session.closed;
    },
  };
}

Deno.test("a stream: reply, headers, data both ways, FIN both ways, then forgotten", async () => {
  const streams: SpdyStream[] = [];
  const { session, client, close } = await connect((s) => streams.push(s));
  try {
    await client.open(1, [["streamtype", "stdin"], ["port", "80"]]);
    // The reply's (empty) header block decodes with a real inflater on the client's context.
    assert.deepEqual(await client.reply(1), []);
    await client.open(3, [["streamtype", "stdout"]]);
    assert.deepEqual(await client.reply(3), []);
    const [stdin, stdout] = streams;
    assert.equal(stdin.headers.get("streamtype"), "stdin");
    assert.equal(stdin.headers.get("port"), "80");
    assert.equal(stdout.id, 3);
    client.send({ type: "data", streamId: 1, fin: false, data: Uint8Array.of(1, 2) });
    client.send({ type: "data", streamId: 1, fin: true, data: Uint8Array.of(3) });
    assert.deepEqual(
      new Uint8Array(await new Response(stdin.readable).arrayBuffer()),
      Uint8Array.of(1, 2, 3),
    );
    const big = new Uint8Array(100_000).map((_, i) => i % 251);
    await stdout.write(big);
    stdout.close();
    const got = await client.until(() => client.received(3).fin && client.received(3));
    assert.deepEqual(got.data, big);
    // 100 000 bytes in frames of at most 32 KiB.
    const frames = client.frames.filter((f) => f.type === "data" && f.streamId === 3);
    assert.deepEqual(frames.map((f) => (f as { data: Uint8Array }).data.length), [
      32768,
      32768,
      32768,
      1696,
      0,
    ]);
    await assert.rejects(stdout.write(Uint8Array.of(1)), StreamClosedError);
    assert.equal(session.openStreams, 2, "stdin: only the client's half is closed");
    stdin.close();
    client.send({ type: "data", streamId: 3, fin: true, data: new Uint8Array() });
    await client.until(() => client.received(1).fin);
    await waitUntil(() => session.openStreams === 0);
  } finally {
    await close();
  }
});

Deno.test("flow control: windows reopened as data arrives; a slow reader loses nothing", async () => {
  const streams: SpdyStream[] = [];
  const { client, close } = await connect((s) => streams.push(s));
  try {
    await client.open(1, [["streamtype", "stdin"]]);
    await client.reply(1);
    // 3 MiB, far past the 64 KiB window and the 1 MiB read buffer, with nobody reading yet.
    const sent = new Uint8Array(3 << 20).map((_, i) => (i * 7) % 256);
    for (let i = 0; i < sent.length; i += 16384) {
      client.send({ type: "data", streamId: 1, fin: false, data: sent.subarray(i, i + 16384) });
    }
    client.send({ type: "data", streamId: 1, fin: true, data: new Uint8Array() });
    const reader = streams[0].readable.getReader();
    const chunks: Uint8Array[] = [];
    for (let r = await reader.read(); !r.done; r = await reader.read()) {
      chunks.push(r.value);
      // A slow reader: the session holds the client back by TCP meanwhile.
      if (chunks.length % 16 === 0) await new Promise((resolve) => setTimeout(resolve, 1));
    }
    assert.deepEqual(concat(chunks), sent);
    // What was received is granted back, per stream and for the connection (stream 0), in
    // steps of at least half a window.
    const granted = (id: number) =>
      client.frames.filter((f) => f.type === "windowUpdate" && f.streamId === id)
        .map((f) => (f as { delta: number }).delta);
    const total = (id: number) => granted(id).reduce((a, b) => a + b, 0);
    await client.until(() => total(0) >= sent.length - 32768);
    assert.ok(granted(0).every((d) => d >= 32768), `${granted(0)}`);
    assert.ok(total(1) >= sent.length - 32768 && total(1) <= sent.length, `${total(1)}`);
  } finally {
    await close();
  }
});

Deno.test("pings echoed, resets seen by reader and writer, refused streams reset", async () => {
  const streams: SpdyStream[] = [];
  const { session, client, close } = await connect((s) => {
    if (s.headers.get("streamtype") === "bogus") throw new Error("unknown stream type");
    streams.push(s);
  });
  try {
    client.send({ type: "ping", id: 7 });
    await client.until(() => client.frames.some((f) => f.type === "ping" && f.id === 7));
    await client.open(1, [["streamtype", "bogus"]]);
    await client.reply(1);
    const reset = await client.until(() =>
      client.frames.find((f) => f.type === "rstStream" && f.streamId === 1)
    );
    assert.deepEqual(reset, { type: "rstStream", streamId: 1, status: 5 });
    await client.open(3, [["streamtype", "data"]]);
    await client.reply(3);
    const [data] = streams;
    client.send({ type: "rstStream", streamId: 3, status: 5 });
    await assert.rejects(new Response(data.readable).arrayBuffer(), /reset/);
    await assert.rejects(data.write(Uint8Array.of(1)), StreamClosedError);
    assert.equal(session.openStreams, 0);
    // Stream ids must grow: an old id is a protocol error.
    await client.open(3, [["streamtype", "data"]]);
    await client.until(() =>
      client.frames.find((f) => f.type === "rstStream" && f.streamId === 3 && f.status === 1)
    );
    // GOAWAY with nothing open: the server ends the connection.
    client.send({ type: "goAway", lastGoodStreamId: 0, status: 0 });
    await client.until(() => client.ended);
  } finally {
    await close();
  }
});

Deno.test("close: GOAWAY naming the last stream, then the connection ends", async () => {
  const streams: SpdyStream[] = [];
  const { session, client, close } = await connect((s) => streams.push(s));
  try {
    await client.open(5, [["streamtype", "error"]]);
    await client.reply(5);
    await session.close();
    assert.deepEqual(client.frames.find((f) => f.type === "goAway"), {
      type: "goAway",
      lastGoodStreamId: 5,
      status: 0,
    });
    await assert.rejects(new Response(streams[0].readable).arrayBuffer(), StreamClosedError);
  } finally {
    await close();
  }
});

async function waitUntil(check: () => boolean): Promise<void> {
  for (let i = 0; !check(); i++) {
    if (i > 4000) throw new Error("condition never held in 20 s");
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

/** A session whose log is kept, on a loopback connection to a test client. */
async function connectLogged(onStream: (stream: SpdyStream) => void = () => {}) {
  const logs: string[] = [];
  const { socket, client } = await connectClient();
  const session = new SpdySession(socket, { onStream, log: (m) => logs.push(m) });
  return { session, client, logs };
}

/** A name/value block of one header `name` whose value is `length` bytes `a`. */
function longHeaderBlock(name: string, length: number): Uint8Array {
  const bytes = new TextEncoder().encode(name);
  const block = new Uint8Array(12 + bytes.length + length).fill(0x61);
  const view = new DataView(block.buffer);
  view.setUint32(0, 1);
  view.setUint32(4, bytes.length);
  block.set(bytes, 8);
  view.setUint32(8 + bytes.length, length);
  return block;
}

Deno.test("a header bomb (100 KB → 100 MB) ends the connection with GOAWAY", async () => {
  const { session, client, logs } = await connectLogged();
  try {
    await client.open(1, [["streamtype", "error"]]);
    await client.reply(1);
    await client.open(3, longHeaderBlock("x", 100_000_000));
    const goAway = await client.until(() => client.frames.find((f) => f.type === "goAway"));
    // Stream 3 was never accepted: the last good one is 1; status 1 is PROTOCOL_ERROR.
    assert.deepEqual(goAway, { type: "goAway", lastGoodStreamId: 1, status: 1 });
    await client.until(() => client.ended);
    await session.closed;
    assert.match(logs.join("\n"), /closing the connection: .*inflates to more than 262144 bytes/);
    assert.ok(!client.frames.some((f) => f.type === "synReply" && f.streamId === 3));
  } finally {
    client.close();
  }
});

Deno.test("a 16 MiB control frame is refused at its header, before its payload", async () => {
  const { session, client, logs } = await connectLogged();
  try {
    // The header of a SYN_STREAM of 16 MiB - 1 bytes and the first 64 KiB of its payload: the
    // GOAWAY comes without the rest ever being sent.
    const frame = new Uint8Array(8 + 65536);
    frame.set([0x80, 3, 0, 1, 0, 0xff, 0xff, 0xff]);
    client.sendBytes(frame);
    const goAway = await client.until(() => client.frames.find((f) => f.type === "goAway"));
    assert.deepEqual(goAway, { type: "goAway", lastGoodStreamId: 0, status: 1 });
    await session.closed;
    assert.match(logs.join("\n"), /control frame of 16777215 bytes; at most \d+ are accepted/);
  } finally {
    client.close();
  }
});

Deno.test("too many headers in a block: that stream is reset, the connection goes on", async () => {
  const streams: SpdyStream[] = [];
  const { client, logs } = await connectLogged((s) => streams.push(s));
  try {
    const many = Array.from({ length: 101 }, (_, i): [string, string] => [`h${i}`, "v"]);
    await client.open(1, many);
    const reset = await client.until(() =>
      client.frames.find((f) => f.type === "rstStream" && f.streamId === 1)
    );
    assert.deepEqual(reset, { type: "rstStream", streamId: 1, status: 11 }, "FRAME_TOO_LARGE");
    assert.match(logs.join("\n"), /stream 1 refused: more than 100 headers/);
    await client.open(3, [["streamtype", "data"]]);
    await client.reply(3);
    assert.deepEqual(streams.map((s) => s.id), [3]);
  } finally {
    client.close();
  }
});

Deno.test("the open streams of a connection hold bounded headers; closing frees room", async () => {
  const streams: SpdyStream[] = [];
  const { client, logs } = await connectLogged((s) => streams.push(s));
  const refused = (id: number) =>
    client.until(() =>
      client.frames.find((f) => f.type === "rstStream" && f.streamId === id && f.status === 3)
    );
  try {
    // 1000 headers: ten streams of 100; the eleventh stream, of one header, finds no room.
    const hundred = Array.from({ length: 100 }, (_, i): [string, string] => [`h${i}`, "v"]);
    for (let id = 1; id <= 19; id += 2) {
      await client.open(id, hundred);
      await client.reply(id);
    }
    await client.open(21, [["streamtype", "data"]]);
    await refused(21);
    assert.match(logs.join("\n"), /stream 21 refused: the open streams .* hold 1000 headers/);
    // The client resets one: its headers are let go, and a new stream fits again.
    client.send({ type: "rstStream", streamId: 1, status: 5 });
    await client.open(23, [["streamtype", "data"]]);
    await client.reply(23);
    for (const s of streams) s.reset();

    // Bytes likewise: five blocks of 200 000 bytes fit into 1 MiB, a sixth does not.
    for (let id = 25; id <= 33; id += 2) {
      await client.open(id, longHeaderBlock("x", 200_000));
      await client.reply(id);
    }
    await client.open(35, longHeaderBlock("x", 200_000));
    await refused(35);
  } finally {
    client.close();
  }
});
