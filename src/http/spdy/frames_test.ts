import assert from "node:assert/strict";
import fc from "fast-check";
import {
  decodeFrame,
  encodeFrame,
  type Frame,
  FrameError,
  frameSize,
  MAX_FRAME_LENGTH,
} from "./frames.ts";

const id31 = fc.integer({ min: 1, max: 0x7fffffff });
const u32 = fc.integer({ min: 0, max: 0xffffffff });
const bytes = fc.uint8Array({ maxLength: 64 });

const frames: fc.Arbitrary<Frame> = fc.oneof(
  fc.record({ type: fc.constant("data"), streamId: id31, fin: fc.boolean(), data: bytes }),
  fc.record({
    type: fc.constant("synStream"),
    streamId: id31,
    associatedTo: fc.integer({ min: 0, max: 0x7fffffff }),
    priority: fc.integer({ min: 0, max: 7 }),
    fin: fc.boolean(),
    unidirectional: fc.boolean(),
    headerBlock: bytes,
  }),
  fc.record({
    type: fc.constant("synReply"),
    streamId: id31,
    fin: fc.boolean(),
    headerBlock: bytes,
  }),
  fc.record({
    type: fc.constant("headers"),
    streamId: id31,
    fin: fc.boolean(),
    headerBlock: bytes,
  }),
  fc.record({
    type: fc.constant("rstStream"),
    streamId: id31,
    status: fc.integer({ min: 1, max: 11 }),
  }),
  fc.record({
    type: fc.constant("settings"),
    clear: fc.boolean(),
    settings: fc.array(
      fc.record({
        flags: fc.integer({ min: 0, max: 3 }),
        id: fc.integer({ min: 1, max: 0xffffff }),
        value: u32,
      }),
      { maxLength: 4 },
    ),
  }),
  fc.record({ type: fc.constant("ping"), id: u32 }),
  fc.record({
    type: fc.constant("goAway"),
    lastGoodStreamId: fc.integer({ min: 0, max: 0x7fffffff }),
    status: fc.integer({ min: 0, max: 2 }),
  }),
  fc.record({
    type: fc.constant("windowUpdate"),
    streamId: fc.integer({ min: 0, max: 0x7fffffff }),
    delta: id31,
  }),
) as fc.Arbitrary<Frame>;

Deno.test("frames survive encoding, also cut at any point and fed again", () => {
  fc.assert(fc.property(fc.array(frames, { minLength: 1, maxLength: 5 }), fc.nat(), (list, cut) => {
    const encoded = list.map(encodeFrame);
    const all = new Uint8Array(encoded.reduce((n, e) => n + e.length, 0));
    encoded.reduce((offset, e) => (all.set(e, offset), offset + e.length), 0);
    // A prefix of a frame is no frame yet.
    const at = cut % encoded[0].length;
    assert.equal(decodeFrame(all.subarray(0, at)), undefined);
    const decoded: Frame[] = [];
    for (let rest = all, next = decodeFrame(rest); next; next = decodeFrame(rest)) {
      decoded.push(next.frame);
      rest = rest.subarray(next.size);
    }
    // (structuredClone: plain objects, as fast-check's records may have no prototype)
    assert.deepEqual(decoded, structuredClone(list));
  }));
});

Deno.test("frame layout: the SPDY/3 bytes of a SYN_REPLY, a data frame with FIN, a PING", () => {
  const reply = encodeFrame({
    type: "synReply",
    streamId: 3,
    fin: false,
    headerBlock: Uint8Array.of(0xaa),
  });
  assert.deepEqual([...reply], [0x80, 3, 0, 2, 0, 0, 0, 5, 0, 0, 0, 3, 0xaa]);
  const data = encodeFrame({ type: "data", streamId: 5, fin: true, data: Uint8Array.of(7, 8) });
  assert.deepEqual([...data], [0, 0, 0, 5, 1, 0, 0, 2, 7, 8]);
  assert.deepEqual([...encodeFrame({ type: "ping", id: 1 })], [
    0x80,
    3,
    0,
    6,
    0,
    0,
    0,
    4,
    0,
    0,
    0,
    1,
  ]);
});

Deno.test("frames no SPDY/3 peer sends are refused; unknown control frames pass", () => {
  const v2 = Uint8Array.of(0x80, 2, 0, 6, 0, 0, 0, 4, 0, 0, 0, 1);
  assert.throws(() => decodeFrame(v2), FrameError);
  const short = Uint8Array.of(0x80, 3, 0, 3, 0, 0, 0, 4, 0, 0, 0, 1);
  assert.throws(() => decodeFrame(short), /too short/);
  const credential = Uint8Array.of(0x80, 3, 0, 10, 0, 0, 0, 1, 9);
  assert.deepEqual(decodeFrame(credential)?.frame, {
    type: "unknown",
    frameType: 10,
    flags: 0,
    payload: Uint8Array.of(9),
  });
  assert.throws(
    () =>
      encodeFrame({
        type: "data",
        streamId: 1,
        fin: false,
        data: new Uint8Array(MAX_FRAME_LENGTH + 1),
      }),
    FrameError,
  );
});

Deno.test("a control frame longer than the bound is refused at its header", () => {
  // A SYN_STREAM announcing 16 MiB - 1: refused with nothing but its 8 header bytes here.
  const header = Uint8Array.of(0x80, 3, 0, 1, 0, 0xff, 0xff, 0xff);
  const options = { maxControlFrameLength: 1024 };
  assert.throws(
    () => decodeFrame(header, options),
    /control frame of 16777215 bytes; at most 1024 are accepted/,
  );
  assert.equal(frameSize(header), 8 + 0xffffff);
  assert.equal(frameSize(header.subarray(0, 7)), undefined);
  assert.equal(decodeFrame(header), undefined, "without a bound it waits for the rest");
  // Data frames are not control frames: their length is the stream's business.
  const data = Uint8Array.of(0, 0, 0, 1, 0, 0xff, 0xff, 0xff);
  assert.equal(decodeFrame(data, options), undefined);
  const ping = encodeFrame({ type: "ping", id: 1 });
  assert.deepEqual(decodeFrame(ping, { maxControlFrameLength: 4 })?.frame, { type: "ping", id: 1 });
});
