/**
 * The server side of a SPDY/3.1 connection, as the kubelet's streaming endpoints use it: the
 * client (the apiserver, or kubectl through it) opens streams with SYN_STREAM; each is
 * answered with an empty SYN_REPLY and handed to the endpoint as a {@link SpdyStream}, with
 * the data the client sends on it and a way to send data back.
 *
 * Flow control: SPDY/3.1 gives each stream and the connection a 64 KiB send window that the
 * receiver reopens with WINDOW_UPDATE. systemk reopens the client's windows as data arrives
 * (so a client that honours windows never stalls), and holds back the client by TCP instead:
 * while a stream's reader lags behind, the socket is paused. It does not wait for windows of
 * its own: Kubernetes' SPDY implementation (moby/spdystream) neither honours nor sends
 * WINDOW_UPDATE, so a sender waiting for one would stall after 64 KiB; writes wait for the
 * socket to drain instead.
 *
 * The client is not trusted with systemk's memory (anyone allowed `pods/exec` on a pod of
 * their own reaches this parser through the apiserver). Every size is bounded before it is
 * buffered or inflated:
 *
 * - a control frame longer than {@link MAX_CONTROL_FRAME_LENGTH} is refused at its header;
 * - a header block inflates to at most `MAX_HEADER_BLOCK_BYTES` (256 KiB) and names at most
 *   `MAX_HEADERS_PER_BLOCK` (100) headers (see {@link ./compression.ts});
 * - the streams open at once on a connection hold at most
 *   {@link MAX_CONNECTION_HEADER_BYTES} of headers, {@link MAX_CONNECTION_HEADERS} of them;
 * - frames waiting to be handled hold at most 1 MiB before the socket is paused, as a
 *   stream's unread data does.
 *
 * Past a bound the answer is what SPDY/3 prescribes: a block that names too many headers or a
 * stream the connection has no room for is reset (RST_STREAM FRAME_TOO_LARGE, REFUSED_STREAM),
 * and the connection goes on; a block inflated only in part leaves the compression context out
 * of step, so that connection, like one with an oversized or malformed frame, is ended with
 * GOAWAY PROTOCOL_ERROR. The log says which bound was hit.
 *
 * @module
 */
import type { Duplex } from "node:stream";
import {
  concat,
  decodeHeaderList,
  encodeHeaderList,
  HeaderCompressor,
  HeaderDecompressor,
  HeaderLimitError,
  type HeaderList,
  MAX_HEADER_BLOCK_BYTES,
} from "./compression.ts";
import {
  decodeFrame,
  encodeFrame,
  type Frame,
  frameSize,
  GoAwayStatus,
  RstStatus,
} from "./frames.ts";

/** The window SPDY/3.1 starts every stream (and the connection) with. */
export const INITIAL_WINDOW = 65536;
/** How much of a window is reopened at once: half, as browsers did. */
const WINDOW_CREDIT = INITIAL_WINDOW / 2;
/** Data frames systemk sends carry at most this much: other streams' frames can go between. */
const MAX_DATA_FRAME = 32 * 1024;
/**
 * Bytes buffered for a stream's reader, or in frames not yet handled, before the socket is
 * paused.
 */
const READ_BUFFER = 1024 * 1024;
/** The longest control frame accepted: room for the largest header block, compressed. */
export const MAX_CONTROL_FRAME_LENGTH = MAX_HEADER_BLOCK_BYTES + 4096;
/** Inflated header bytes the open streams of one connection may hold together. */
export const MAX_CONNECTION_HEADER_BYTES = 1024 * 1024;
/** Headers the open streams of one connection may hold together. */
export const MAX_CONNECTION_HEADERS = 1000;
/** How long a connection ended for a protocol error has to take its GOAWAY before it is cut. */
const GOAWAY_GRACE_MS = 1000;

/** True for the errors of a peer that just went away (which needs no explaining). */
export function isDisconnect(e: Error): boolean {
  const code = (e as { code?: string }).code ?? "";
  return ["EPIPE", "ECONNRESET", "ERR_STREAM_DESTROYED", "ERR_STREAM_WRITE_AFTER_END"]
    .includes(code);
}

/** The stream was reset (RST_STREAM) or its connection is gone. */
export class StreamClosedError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "StreamClosedError";
  }
}

/** One stream the client opened. */
export class SpdyStream {
  /** The stream id (odd: the client's). */
  readonly id: number;
  /** The SYN_STREAM's headers (`streamtype`, `port`, `requestid`, ...). */
  readonly headers: Headers;
  /** What the client sends; ends at its FIN, errors on RST_STREAM or a lost connection. */
  readonly readable: ReadableStream<Uint8Array>;
  readonly #session: SpdySession;
  #controller!: ReadableStreamDefaultController<Uint8Array>;
  #remoteDone = false;
  #localDone = false;
  #discarding = false;

  /**
   * @internal Made by {@link SpdySession} for each SYN_STREAM; `remoteDone` is its FIN flag.
   */
  constructor(
    session: SpdySession,
    opened: { id: number; headers: Headers; remoteDone: boolean },
  ) {
    const { id, headers, remoteDone } = opened;
    this.#session = session;
    this.id = id;
    this.headers = headers;
    this.readable = new ReadableStream<Uint8Array>({
      start: (controller) => {
        this.#controller = controller;
      },
      pull: () => session.readerCaughtUp(this),
      cancel: () => {
        // Nobody reads any more: what else arrives is dropped, not buffered.
        this.#discarding = true;
        session.readerCaughtUp(this);
      },
    }, new ByteLengthQueuingStrategy({ highWaterMark: READ_BUFFER }));
    if (remoteDone) this.#endRemote();
  }

  /** True once both sides sent FIN (or the stream was reset). */
  get done(): boolean {
    return this.#remoteDone && this.#localDone;
  }

  /**
   * Sends data to the client, in frames of at most 32 KiB; resolves once the socket took it.
   *
   * @throws {StreamClosedError} after {@link close}, a reset, or the connection's end.
   */
  async write(data: Uint8Array): Promise<void> {
    for (let i = 0; i === 0 || i < data.length; i += MAX_DATA_FRAME) {
      if (this.#localDone) throw new StreamClosedError(`stream ${this.id} is closed`);
      await this.#session.send({
        type: "data",
        streamId: this.id,
        fin: false,
        data: data.subarray(i, i + MAX_DATA_FRAME),
      });
    }
  }

  /** Ends the stream from systemk's side (FIN); the client's side may go on. Idempotent. */
  close(): void {
    if (this.#localDone) return;
    this.#localDone = true;
    void this.#session.send({ type: "data", streamId: this.id, fin: true, data: new Uint8Array() })
      .catch(() => {});
    this.#session.forgetIfDone(this);
  }

  /** Aborts the stream both ways (RST_STREAM CANCEL). */
  reset(): void {
    if (this.done) return;
    void this.#session.send({ type: "rstStream", streamId: this.id, status: RstStatus.CANCEL })
      .catch(() => {});
    this.abort(new StreamClosedError(`stream ${this.id} was reset by systemk`));
  }

  /** @internal Data from the client. */
  receive(data: Uint8Array, fin: boolean): void {
    if (this.#remoteDone) return;
    if (data.length > 0 && !this.#discarding) {
      this.#controller.enqueue(data);
      if ((this.#controller.desiredSize ?? 0) <= 0) this.#session.readerLags(this);
    }
    if (fin) this.#endRemote();
  }

  /** @internal The stream is over both ways: reset by either side, or the connection ended. */
  abort(reason: Error): void {
    this.#localDone = true;
    if (!this.#remoteDone) {
      this.#remoteDone = true;
      if (!this.#discarding) this.#controller.error(reason);
    }
    this.#session.forgetIfDone(this);
  }

  #endRemote(): void {
    this.#remoteDone = true;
    if (!this.#discarding) this.#controller.close();
    this.#session.forgetIfDone(this);
  }
}

/** What a session does with its streams. */
export interface SpdySessionOptions {
  /**
   * Called for each stream the client opens, after its SYN_REPLY went out. Throwing resets
   * the stream (the kubelet refuses a stream without the headers it needs the same way).
   */
  onStream(stream: SpdyStream): void;
  /** Where protocol errors are explained. */
  log?: (message: string) => void;
}

/** A SPDY/3.1 server connection over an upgraded socket; see the module doc. */
export class SpdySession {
  readonly #socket: Duplex;
  readonly #o: SpdySessionOptions;
  readonly #streams = new Map<number, SpdyStream>();
  readonly #compressor = new HeaderCompressor();
  readonly #decompressor = new HeaderDecompressor();
  /** Frames wait here for the ones before them (header blocks decompress in order). */
  #processing: Promise<void> = Promise.resolve();
  /** Bytes of frames decoded but not handled yet. */
  #queued = 0;
  /** Received bytes not yet making a whole frame, and their total. */
  #partial: Uint8Array[] = [];
  #partialBytes = 0;
  /** Bytes the frame at the head of {@link #partial} needs (its header's 8 until known). */
  #needed = 8;
  /** Inflated header bytes and headers held by each open stream, and their totals. */
  readonly #held = new Map<number, { bytes: number; headers: number }>();
  #heldBytes = 0;
  #heldHeaders = 0;
  /** Client window bytes received but not yet reopened, per stream (0: the connection). */
  readonly #credit = new Map<number, number>();
  /** Streams whose reader is behind: the socket stays paused while there are any. */
  readonly #lagging = new Set<SpdyStream>();
  #lastStreamId = 0;
  #goingAway = false;
  #ended = false;
  readonly #closed: Promise<void>;

  /** Takes over `socket`, which carries nothing but SPDY from here on. */
  constructor(socket: Duplex, options: SpdySessionOptions) {
    this.#socket = socket;
    this.#o = options;
    this.#closed = new Promise((resolve) => socket.once("close", resolve));
    socket.on("data", (chunk: Uint8Array) => this.#received(chunk));
    socket.on("error", (e: Error) => {
      if (!isDisconnect(e)) this.#o.log?.(`SPDY connection: ${e.message}`);
    });
    socket.once("close", () => this.#end(new StreamClosedError("the connection was closed")));
  }

  /** Resolves when the connection is closed. */
  get closed(): Promise<void> {
    return this.#closed;
  }

  /** The streams still open. */
  get openStreams(): number {
    return this.#streams.size;
  }

  /**
   * Ends the session: GOAWAY (the last stream accepted), then the socket is ended once what
   * was written went out. Open streams end with it.
   */
  async close(): Promise<void> {
    if (!this.#ended && !this.#goingAway) {
      this.#goingAway = true;
      await this.send({ type: "goAway", lastGoodStreamId: this.#lastStreamId, status: 0 })
        .catch(() => {});
    }
    this.#socket.end();
    await this.#closed;
  }

  /** Stops everything at once, without GOAWAY (the client is gone or misbehaves). */
  destroy(): void {
    this.#socket.destroy();
  }

  /**
   * @internal Writes one frame; resolves once the socket buffer has room again.
   * @throws {StreamClosedError} when the connection is gone.
   */
  async send(frame: Frame): Promise<void> {
    if (this.#ended || !this.#socket.writable) {
      throw new StreamClosedError("the connection was closed");
    }
    if (!this.#socket.write(encodeFrame(frame))) {
      await new Promise<void>((resolve) => {
        const done = () => {
          this.#socket.off("drain", done);
          this.#socket.off("close", done);
          resolve();
        };
        this.#socket.on("drain", done);
        this.#socket.on("close", done);
      });
    }
  }

  /** @internal A stream's reader has too much unread: pause the client. */
  readerLags(stream: SpdyStream): void {
    this.#lagging.add(stream);
    this.#updateFlow();
  }

  /** @internal A stream's reader wants more (or stopped reading): resume when none lags. */
  readerCaughtUp(stream: SpdyStream): void {
    if (this.#lagging.delete(stream)) this.#updateFlow();
  }

  /** @internal Drops a stream that is over both ways. */
  forgetIfDone(stream: SpdyStream): void {
    if (!stream.done) return;
    this.#streams.delete(stream.id);
    this.#release(stream.id);
    this.readerCaughtUp(stream);
    if (this.#goingAway && this.#streams.size === 0) this.#socket.end();
  }

  /** Reads from the client only while no reader lags and few frames wait to be handled. */
  #updateFlow(): void {
    if (this.#ended) return;
    if (this.#lagging.size > 0 || this.#queued > READ_BUFFER) this.#socket.pause();
    else this.#socket.resume();
  }

  #received(chunk: Uint8Array): void {
    if (this.#ended) return;
    this.#partial.push(chunk);
    this.#partialBytes += chunk.length;
    // Chunks are joined once the frame they make is complete, not at every chunk: a 16 MB
    // data frame arriving in 64 KiB chunks is copied once, not 256 times.
    if (this.#partialBytes < this.#needed) return;
    let bytes = concat(this.#partial);
    try {
      const options = { maxControlFrameLength: MAX_CONTROL_FRAME_LENGTH };
      for (let next = decodeFrame(bytes, options); next; next = decodeFrame(bytes, options)) {
        const { frame, size } = next;
        bytes = bytes.subarray(size);
        this.#queued += size;
        this.#processing = this.#processing.then(async () => {
          await this.#handle(frame);
          this.#queued -= size;
          this.#updateFlow();
        });
      }
    } catch (e) {
      this.#protocolError(e as Error);
      return;
    }
    this.#partial = bytes.length ? [bytes.slice()] : [];
    this.#partialBytes = bytes.length;
    this.#needed = frameSize(bytes) ?? 8;
    this.#updateFlow();
    this.#processing = this.#processing.then(() => this.#flushCredit());
  }

  async #handle(frame: Frame): Promise<void> {
    if (this.#ended) return;
    try {
      switch (frame.type) {
        case "synStream":
          return await this.#synStream(frame);
        case "data":
          return this.#data(frame.streamId, frame.data, frame.fin);
        case "headers": {
          // Headers after the SYN_STREAM carry nothing the endpoints use; the block is still
          // decompressed, or the compression context would fall out of step.
          await this.#decompressor.decompress(frame.headerBlock);
          if (frame.fin) this.#data(frame.streamId, new Uint8Array(), true);
          return;
        }
        case "rstStream":
          this.#streams.get(frame.streamId)?.abort(
            new StreamClosedError(`stream ${frame.streamId} was reset (status ${frame.status})`),
          );
          return;
        case "ping":
          // Odd ids are the client's pings, to be echoed; even ones would answer ours.
          if (frame.id % 2 === 1) await this.send(frame);
          return;
        case "goAway":
          this.#goingAway = true;
          if (this.#streams.size === 0) this.#socket.end();
          return;
        case "synReply":
          // A server stream's reply: systemk opens none.
          await this.#decompressor.decompress(frame.headerBlock);
          return;
        case "settings":
        case "windowUpdate":
        case "unknown":
          // Settings and windows bound what systemk may send; see the module doc for why
          // they are not waited for. Unknown control frames are ignored, as SPDY requires.
          return;
      }
    } catch (e) {
      this.#protocolError(e as Error);
    }
  }

  async #synStream(frame: Extract<Frame, { type: "synStream" }>): Promise<void> {
    // A block that cannot be inflated (corrupt, or past its bound) ends the connection.
    const block = await this.#decompressor.decompress(frame.headerBlock);
    const id = frame.streamId;
    const refuse = (status: number, why?: string) => {
      if (why) this.#o.log?.(`SPDY stream ${id} refused: ${why}`);
      return this.send({ type: "rstStream", streamId: id, status });
    };
    if (id % 2 === 0 || id <= this.#lastStreamId) return await refuse(RstStatus.PROTOCOL_ERROR);
    this.#lastStreamId = id;
    if (this.#goingAway) return await refuse(RstStatus.REFUSED_STREAM);
    let list: HeaderList;
    let headers: Headers;
    try {
      list = decodeHeaderList(block);
      headers = new Headers(list);
    } catch (e) {
      // The block was inflated whole: the context is in step, only this stream is refused.
      const status = e instanceof HeaderLimitError
        ? RstStatus.FRAME_TOO_LARGE
        : RstStatus.PROTOCOL_ERROR;
      return await refuse(status, (e as Error).message);
    }
    if (
      this.#heldBytes + block.length > MAX_CONNECTION_HEADER_BYTES ||
      this.#heldHeaders + list.length > MAX_CONNECTION_HEADERS
    ) {
      return await refuse(
        RstStatus.REFUSED_STREAM,
        `the open streams of this connection hold ${this.#heldHeaders} headers ` +
          `(${this.#heldBytes} bytes); at most ${MAX_CONNECTION_HEADERS} ` +
          `(${MAX_CONNECTION_HEADER_BYTES} bytes) are kept`,
      );
    }
    const stream = new SpdyStream(this, { id, headers, remoteDone: frame.fin });
    this.#streams.set(id, stream);
    this.#held.set(id, { bytes: block.length, headers: list.length });
    this.#heldBytes += block.length;
    this.#heldHeaders += list.length;
    await this.send({
      type: "synReply",
      streamId: id,
      fin: false,
      headerBlock: this.#compressor.compress(encodeHeaderList([])),
    });
    try {
      this.#o.onStream(stream);
    } catch (e) {
      this.#o.log?.(`SPDY stream ${id} refused: ${(e as Error).message}`);
      stream.reset();
    }
  }

  #data(streamId: number, data: Uint8Array, fin: boolean): void {
    if (data.length > 0) {
      for (const id of [streamId, 0]) {
        this.#credit.set(id, (this.#credit.get(id) ?? 0) + data.length);
      }
    }
    // Data for a stream that is gone (reset, or never opened) is dropped, as spdystream does.
    this.#streams.get(streamId)?.receive(data, fin);
  }

  /** Reopens the client's windows once half of one was used (see the module doc). */
  async #flushCredit(): Promise<void> {
    for (const [id, bytes] of this.#credit) {
      if (bytes < WINDOW_CREDIT && (id === 0 || this.#streams.has(id))) continue;
      this.#credit.delete(id);
      if (id !== 0 && !this.#streams.has(id)) continue;
      await this.send({ type: "windowUpdate", streamId: id, delta: bytes }).catch(() => {});
    }
  }

  #release(id: number): void {
    const held = this.#held.get(id);
    if (!held) return;
    this.#held.delete(id);
    this.#heldBytes -= held.bytes;
    this.#heldHeaders -= held.headers;
  }

  /**
   * Ends the connection for a frame or header block that breaks the protocol or a bound: GOAWAY
   * PROTOCOL_ERROR, nothing more read, the socket cut if the client does not take the GOAWAY.
   */
  #protocolError(e: Error): void {
    if (this.#ended) return;
    this.#o.log?.(`SPDY protocol error, closing the connection: ${e.message}`);
    const goAway = encodeFrame({
      type: "goAway",
      lastGoodStreamId: this.#lastStreamId,
      status: GoAwayStatus.PROTOCOL_ERROR,
    });
    this.#end(new StreamClosedError(`the connection was closed: ${e.message}`));
    this.#partial = [];
    if (this.#socket.writable) this.#socket.end(goAway);
    const cut = setTimeout(() => this.#socket.destroy(), GOAWAY_GRACE_MS);
    this.#socket.once("close", () => clearTimeout(cut));
  }

  #end(reason: Error): void {
    if (this.#ended) return;
    this.#ended = true;
    for (const stream of [...this.#streams.values()]) stream.abort(reason);
    this.#streams.clear();
    this.#held.clear();
    this.#decompressor.close();
  }
}
