import assert from "node:assert/strict";
import zlib from "node:zlib";
import fc from "fast-check";
import {
  adler32,
  concat,
  decodeHeaderList,
  encodeHeaderList,
  HeaderCompressor,
  HeaderDecompressor,
  HeaderLimitError,
  type HeaderList,
  MAX_HEADER_BLOCK_BYTES,
  MAX_HEADERS_PER_BLOCK,
  SPDY3_DICTIONARY,
} from "./compression.ts";

Deno.test("the SPDY/3 dictionary has the draft's length and checksum", () => {
  // 1423 bytes, Adler-32 0xe3c6a7c2: the DICTID a SPDY/3 peer's zlib header carries.
  assert.equal(SPDY3_DICTIONARY.length, 1423);
  assert.equal(adler32(SPDY3_DICTIONARY), 0xe3c6a7c2);
  assert.equal(adler32(new TextEncoder().encode("Wikipedia")), 0x11e60398);
});

const headerLists = fc.array(
  fc.tuple(fc.stringMatching(/^[a-z][a-z0-9-]{0,20}$/), fc.string({ maxLength: 40 })),
  { maxLength: 8 },
).map((pairs) => pairs.filter(([, v]) => !v.includes("\0")));

/** Groups values by name in first-seen order, as a block carries them. */
function grouped(headers: HeaderList): HeaderList {
  const m = new Map<string, string[]>();
  for (const [n, v] of headers) m.set(n, [...m.get(n) ?? [], v]);
  return [...m].flatMap(([n, vs]) => vs.map((v): [string, string] => [n, v]));
}

Deno.test("header lists survive encoding, several values of a name joined by NUL", () => {
  fc.assert(fc.property(headerLists, (headers) => {
    assert.deepEqual(decodeHeaderList(encodeHeaderList(headers)), grouped(headers));
  }));
  const block = encodeHeaderList([["streamtype", "error"], ["port", "80"], ["port", "81"]]);
  assert.equal(new DataView(block.buffer).getUint32(0), 2, "two names");
  assert.throws(() => decodeHeaderList(block.subarray(0, block.length - 1)), /truncated/);
});

Deno.test("our stored-block stream inflates with the dictionary, block after block", () => {
  fc.assert(
    fc.property(fc.array(headerLists, { minLength: 1, maxLength: 6 }), (lists) => {
      const compressor = new HeaderCompressor();
      const blocks = lists.map((l) => encodeHeaderList(l));
      const compressed = blocks.map((b) => compressor.compress(b));
      // Each ends as Z_SYNC_FLUSH ends a block: Go's inflater needs the marker in the frame.
      for (const c of compressed) assert.deepEqual([...c.slice(-5)], [0, 0, 0, 0xff, 0xff]);
      const stream = concat(compressed);
      // A whole-stream inflate (zlib's own reader) sees exactly the blocks, in order.
      const inflated = zlib.inflateSync(stream, {
        dictionary: SPDY3_DICTIONARY,
        finishFlush: zlib.constants.Z_SYNC_FLUSH,
      });
      assert.deepEqual(new Uint8Array(inflated), concat(blocks));
    }),
    { numRuns: 50 },
  );
  const first = new HeaderCompressor().compress(new Uint8Array(0));
  assert.deepEqual([...first.subarray(0, 2)], [0x78, 0xbb], "FDICT set");
  assert.equal(new DataView(first.buffer).getUint32(2), 0xe3c6a7c2, "DICTID of the dictionary");
});

Deno.test("a peer's deflate stream with the dictionary inflates frame by frame", async () => {
  // The peer's side: one deflate context, Z_SYNC_FLUSH after each block, as Go's framer does.
  const deflate = zlib.createDeflate({ dictionary: SPDY3_DICTIONARY, level: 9 });
  const deflateBlock = (block: Uint8Array) =>
    new Promise<Uint8Array>((resolve) => {
      const out: Uint8Array[] = [];
      const take = (c: Uint8Array) => out.push(c);
      deflate.on("data", take);
      deflate.write(block);
      deflate.flush(zlib.constants.Z_SYNC_FLUSH, () => {
        deflate.off("data", take);
        resolve(concat(out));
      });
    });
  const decompressor = new HeaderDecompressor();
  try {
    const lists: HeaderList[] = [
      [["streamtype", "error"], ["port", "8080"], ["requestid", "0"]],
      [["streamtype", "data"], ["port", "8080"], ["requestid", "0"]],
      [],
      [["streamtype", "stdout"], ["x", "y".repeat(70000)]],
      [["streamtype", "data"], ["port", "8080"], ["requestid", "1"]],
    ];
    const compressed = [];
    for (const l of lists) compressed.push(await deflateBlock(encodeHeaderList(l)));
    const decoded = await Promise.all(compressed.map((c) => decompressor.decompress(c)));
    assert.deepEqual(decoded.map(decodeHeaderList), lists);
  } finally {
    decompressor.close();
    deflate.close();
  }
});

Deno.test("a corrupt header stream fails, and so does every block after it", async () => {
  const decompressor = new HeaderDecompressor();
  try {
    await assert.rejects(decompressor.decompress(Uint8Array.of(0x78, 0xbb, 1, 2, 3, 4, 5, 6)));
    const next = new HeaderCompressor().compress(encodeHeaderList([]));
    await assert.rejects(decompressor.decompress(next));
  } finally {
    decompressor.close();
  }
});

Deno.test("a bomb: a block inflating past the bound is refused, nothing past it inflated", async () => {
  // 100 MB of zeros deflate to about 100 KB: the block inflation stops at the bound.
  const bomb = zlib.deflateSync(new Uint8Array(100_000_000), {
    dictionary: SPDY3_DICTIONARY,
    level: 9,
    finishFlush: zlib.constants.Z_SYNC_FLUSH,
  });
  assert.ok(bomb.length < 110_000, `${bomb.length}`);
  const decompressor = new HeaderDecompressor();
  try {
    const before = Deno.memoryUsage().rss;
    await assert.rejects(
      decompressor.decompress(bomb),
      new RegExp(`header block inflates to more than ${MAX_HEADER_BLOCK_BYTES} bytes`),
    );
    // 100 MB would have shown; a few zlib chunks do not.
    const grown = Deno.memoryUsage().rss - before;
    assert.ok(grown < 32 << 20, `RSS grew by ${grown} bytes`);
    // The context is past use: what follows fails too (the connection has to end).
    await assert.rejects(decompressor.decompress(bomb), HeaderLimitError);
  } finally {
    decompressor.close();
  }
});

Deno.test("a header block names at most MAX_HEADERS_PER_BLOCK headers", () => {
  const many = (n: number): HeaderList => Array.from({ length: n }, (_, i) => [`h${i}`, "v"]);
  assert.equal(decodeHeaderList(encodeHeaderList(many(MAX_HEADERS_PER_BLOCK))).length, 100);
  assert.throws(
    () => decodeHeaderList(encodeHeaderList(many(MAX_HEADERS_PER_BLOCK + 1))),
    HeaderLimitError,
  );
  // Values joined by NUL count each, and a count field of 2^32 - 1 is refused before any loop.
  const values = encodeHeaderList([["x", "\0".repeat(MAX_HEADERS_PER_BLOCK)]]);
  assert.throws(() => decodeHeaderList(values), /more than 100 headers/);
  assert.throws(() => decodeHeaderList(Uint8Array.of(0xff, 0xff, 0xff, 0xff)), HeaderLimitError);
});
