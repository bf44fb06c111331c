/**
 * SPDY/3 header blocks: the name/value layout, and its zlib compression with the SPDY/3
 * dictionary. Each direction of a connection has one compression context for all its header
 * blocks (SYN_STREAM, SYN_REPLY, HEADERS), so blocks must be (de)compressed in frame order.
 *
 * - Incoming blocks are real deflate from the peer (Go's `compress/zlib` at best compression,
 *   flushed with Z_SYNC_FLUSH after each block): they are inflated by one `node:zlib` Inflate
 *   per connection, fed block by block. The peer is not trusted: deflate turns 1 KiB into up to
 *   1 MiB, so a block's inflated bytes are counted as zlib hands them out and inflating stops
 *   at {@link MAX_HEADER_BLOCK_BYTES} (a 100 KB block of zeros would otherwise become 100 MB);
 *   the stream's context is then unusable, and so is the connection. A block may name at most
 *   {@link MAX_HEADERS_PER_BLOCK} headers.
 * - Outgoing blocks are written as zlib *stored* (uncompressed) deflate blocks, each header
 *   block ended by an empty stored block as a compressor's Z_SYNC_FLUSH ends it (Go's inflater
 *   needs that marker to hand out the block's bytes): valid zlib that every inflater reads,
 *   and synchronous, with no compressor state to keep. systemk's header
 *   blocks are a handful of bytes (mostly the empty SYN_REPLY), so compression would gain
 *   nothing. The stream header (sent once) announces the SPDY dictionary (FDICT with its
 *   Adler-32), as a compressing peer's would.
 *
 * @module
 */
import zlib from "node:zlib";

/** Header names and their values, in order. SPDY joins several values of a name with NUL. */
export type HeaderList = [name: string, value: string][];

/**
 * The most bytes one header block may inflate to. Kubernetes' streams carry three or four
 * short headers; the bound is far above that and far below what hurts (Go's HTTP server
 * allows 1 MB for a request's whole header).
 */
export const MAX_HEADER_BLOCK_BYTES = 256 * 1024;
/** The most headers (values, NUL-separated ones counted each) one header block may name. */
export const MAX_HEADERS_PER_BLOCK = 100;

/** A header block beyond a bound of this module (too many bytes inflated, too many headers). */
export class HeaderLimitError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "HeaderLimitError";
  }
}

/**
 * The SPDY/3 zlib dictionary (SPDY/3 draft §2.6.10.1): length-prefixed common header names
 * and values, then a run of status codes, reasons, dates and media types.
 */
export const SPDY3_DICTIONARY: Uint8Array = buildDictionary(
  [
    ...["options", "head", "post", "put", "delete", "trace", "accept", "accept-charset"],
    ...["accept-encoding", "accept-language", "accept-ranges", "age", "allow", "authorization"],
    ...["cache-control", "connection", "content-base", "content-encoding", "content-language"],
    ...["content-length", "content-location", "content-md5", "content-range", "content-type"],
    ...["date", "etag", "expect", "expires", "from", "host", "if-match", "if-modified-since"],
    ...["if-none-match", "if-range", "if-unmodified-since", "last-modified", "location"],
    ...["max-forwards", "pragma", "proxy-authenticate", "proxy-authorization", "range"],
    ...["referer", "retry-after", "server", "te", "trailer", "transfer-encoding", "upgrade"],
    ...["user-agent", "vary", "via", "warning", "www-authenticate", "method", "get", "status"],
    ...["200 OK", "version", "HTTP/1.1", "url", "public", "set-cookie", "keep-alive", "origin"],
  ],
  "100101201202205206300302303304305306307402405406407408409410411412413414415416417502504505" +
    "203 Non-Authoritative Information204 No Content301 Moved Permanently400 Bad Request" +
    "401 Unauthorized403 Forbidden404 Not Found500 Internal Server Error501 Not Implemented" +
    "503 Service UnavailableJan Feb Mar Apr May Jun Jul Aug Sept Oct Nov Dec 00:00:00 " +
    "Mon, Tue, Wed, Thu, Fri, Sat, Sun, GMTchunked,text/html,image/png,image/jpg,image/gif," +
    "application/xml,application/xhtml+xml,text/plain,text/javascript,publicprivatemax-age=" +
    "gzip,deflate,sdchcharset=utf-8charset=iso-8859-1,utf-,*,enq=0.",
);

function buildDictionary(words: string[], tail: string): Uint8Array {
  const encoder = new TextEncoder();
  const parts = words.flatMap((w) => {
    const bytes = encoder.encode(w);
    const length = new Uint8Array(4);
    new DataView(length.buffer).setUint32(0, bytes.length);
    return [length, bytes];
  });
  return concat([...parts, encoder.encode(tail)]);
}

/** Adler-32 of `bytes` (RFC 1950 §8.2), as zlib's FDICT field carries it. */
export function adler32(bytes: Uint8Array): number {
  let a = 1, b = 0;
  for (let i = 0; i < bytes.length; i += 5552) {
    // 5552 bytes is the most that cannot overflow before the modulo (RFC 1950's NMAX).
    const end = Math.min(i + 5552, bytes.length);
    for (let j = i; j < end; j++) {
      a += bytes[j];
      b += a;
    }
    a %= 65521;
    b %= 65521;
  }
  return ((b << 16) | a) >>> 0;
}

/** The uncompressed name/value block: a 32-bit count, then length-prefixed names and values. */
export function encodeHeaderList(headers: HeaderList): Uint8Array {
  const encoder = new TextEncoder();
  const merged = new Map<string, string[]>();
  for (const [name, value] of headers) {
    const key = name.toLowerCase();
    merged.set(key, [...merged.get(key) ?? [], value]);
  }
  const parts: Uint8Array[] = [u32(merged.size)];
  for (const [name, values] of merged) {
    for (const text of [name, values.join("\0")]) {
      const bytes = encoder.encode(text);
      parts.push(u32(bytes.length), bytes);
    }
  }
  return concat(parts);
}

/**
 * Decodes an uncompressed name/value block.
 *
 * @throws {HeaderLimitError} when it names more than {@link MAX_HEADERS_PER_BLOCK} headers.
 * @throws {Error} when the block is shorter than its lengths say.
 */
export function decodeHeaderList(block: Uint8Array): HeaderList {
  const view = new DataView(block.buffer, block.byteOffset, block.byteLength);
  const decoder = new TextDecoder();
  let offset = 0;
  const take = (): Uint8Array => {
    if (offset + 4 > block.length) throw new Error("header block truncated");
    const length = view.getUint32(offset);
    if (offset + 4 + length > block.length) throw new Error("header block truncated");
    const bytes = block.subarray(offset + 4, offset + 4 + length);
    offset += 4 + length;
    return bytes;
  };
  if (block.length < 4) throw new Error("header block truncated");
  const count = view.getUint32(0);
  offset = 4;
  const tooMany = () =>
    new HeaderLimitError(`more than ${MAX_HEADERS_PER_BLOCK} headers in one header block`);
  if (count > MAX_HEADERS_PER_BLOCK) throw tooMany();
  const headers: HeaderList = [];
  for (let i = 0; i < count; i++) {
    const name = decoder.decode(take());
    for (const value of decoder.decode(take()).split("\0")) {
      if (headers.length === MAX_HEADERS_PER_BLOCK) throw tooMany();
      headers.push([name, value]);
    }
  }
  return headers;
}

/** Compresses one direction's header blocks; see the module doc. */
export class HeaderCompressor {
  #started = false;

  /** One header block, as the next part of this direction's zlib stream. */
  compress(block: Uint8Array): Uint8Array {
    const parts: Uint8Array[] = [];
    if (!this.#started) {
      this.#started = true;
      // CMF 0x78: deflate, 32K window. FLG 0xbb: FDICT, level 2, and (CMF*256+FLG) % 31 == 0.
      parts.push(Uint8Array.of(0x78, 0xbb), u32(adler32(SPDY3_DICTIONARY)));
    }
    // Stored blocks, never final: the stream goes on with the next header block.
    for (let i = 0; i < block.length; i += 0xffff) {
      parts.push(...storedBlock(block.subarray(i, i + 0xffff)));
    }
    // Then an empty one, as Z_SYNC_FLUSH ends a compressor's output: Go's inflater hands out
    // a stored block's bytes only when it meets the next block, which must be in this frame.
    parts.push(...storedBlock(new Uint8Array()));
    return concat(parts);
  }
}

/** A non-final stored deflate block: its header (byte-aligned here), LEN, NLEN, the bytes. */
function storedBlock(bytes: Uint8Array): Uint8Array[] {
  const head = new Uint8Array(5);
  const view = new DataView(head.buffer);
  view.setUint16(1, bytes.length, true);
  view.setUint16(3, ~bytes.length & 0xffff, true);
  return [head, bytes];
}

/** Decompresses one direction's header blocks, in the order they arrive; see the module doc. */
export class HeaderDecompressor {
  readonly #inflate = zlib.createInflate({ dictionary: SPDY3_DICTIONARY });
  #queue: Promise<unknown> = Promise.resolve();
  #failed?: Error;

  constructor() {
    this.#inflate.on("error", (e: Error) => this.#failed ??= e);
  }

  /**
   * The next header block of the stream, uncompressed.
   *
   * @throws {HeaderLimitError} when the block inflates to more than
   *   {@link MAX_HEADER_BLOCK_BYTES}: the rest is not inflated, and the context is done.
   * @throws {Error} when the peer's zlib stream is corrupt (the connection cannot go on).
   */
  decompress(compressed: Uint8Array): Promise<Uint8Array> {
    const next = this.#queue.then(() =>
      new Promise<Uint8Array>((resolve, reject) => {
        if (this.#failed) return reject(this.#failed);
        const out: Uint8Array[] = [];
        let size = 0;
        let settled = false;
        const take = (chunk: Uint8Array) => {
          size += chunk.length;
          if (size <= MAX_HEADER_BLOCK_BYTES) return void out.push(chunk);
          // zlib hands out its output in small chunks and stops when the stream is destroyed:
          // what lies beyond the bound is never inflated, let alone kept.
          this.#failed ??= new HeaderLimitError(
            `a header block inflates to more than ${MAX_HEADER_BLOCK_BYTES} bytes`,
          );
          this.#inflate.destroy();
          done(this.#failed);
        };
        const fail = (e: Error) => done(e);
        const done = (e?: Error) => {
          if (settled) return;
          settled = true;
          this.#inflate.off("data", take);
          this.#inflate.off("error", fail);
          if (e) reject(e);
          else resolve(concat(out));
        };
        this.#inflate.on("data", take);
        this.#inflate.once("error", fail);
        this.#inflate.write(compressed);
        // Z_SYNC_FLUSH: everything this block holds comes out now, the context stays open. A
        // corrupt stream's error is emitted on the next tick after the flush: wait past it.
        this.#inflate.flush(
          zlib.constants.Z_SYNC_FLUSH,
          () => setTimeout(() => done(this.#failed), 0),
        );
      })
    );
    this.#queue = next.catch(() => {});
    return next;
  }

  /** Frees the zlib context. */
  close(): void {
    this.#inflate.close();
  }
}

function u32(value: number): Uint8Array {
  const out = new Uint8Array(4);
  new DataView(out.buffer).setUint32(0, value >>> 0);
  return out;
}

/** Joins byte arrays. */
export function concat(parts: readonly Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let offset = 0;
  for (const p of parts) {
    out.set(p, offset);
    offset += p.length;
  }
  return out;
}
