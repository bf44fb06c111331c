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
 * @module
 */
import type { Duplex } from "node:stream";
import {
  concat,
  decodeHeaderList,
  encodeHeaderList,
  HeaderCompressor,
  HeaderDecompressor,
} from "./compression.ts";
import { decodeFrame, encodeFrame, type Frame, RstStatus } from "./frames.ts";

/** The window SPDY/3.1 starts every stream (and the connection) with. */
export const INITIAL_WINDOW = 65536;
/** How much of a window is reopened at once: half, as browsers did. */
const WINDOW_CREDIT = INITIAL_WINDOW / 2;
/** Data frames systemk sends carry at most this much: other streams' frames can go between. */
const MAX_DATA_FRAME = 32 * 1024;
/** Bytes buffered for a stream's reader before the socket is paused. */
const READ_BUFFER = 1024 * 1024;

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

  /** @internal Made by {@link SpdySession} for each SYN_STREAM. */
  constructor(session: SpdySession, id: number, headers: Headers, remoteDone: boolean) {
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
  #pending: Uint8Array = new Uint8Array();
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
    this.#socket.pause();
  }

  /** @internal A stream's reader wants more (or stopped reading): resume when none lags. */
  readerCaughtUp(stream: SpdyStream): void {
    if (this.#lagging.delete(stream) && this.#lagging.size === 0 && !this.#ended) {
      this.#socket.resume();
    }
  }

  /** @internal Drops a stream that is over both ways. */
  forgetIfDone(stream: SpdyStream): void {
    if (!stream.done) return;
    this.#streams.delete(stream.id);
    this.readerCaughtUp(stream);
    if (this.#goingAway && this.#streams.size === 0) this.#socket.end();
  }

  #received(chunk: Uint8Array): void {
    let bytes = this.#pending.length ? concat([this.#pending, chunk]) : chunk;
    try {
      for (let next = decodeFrame(bytes); next; next = decodeFrame(bytes)) {
        const frame = next.frame;
        bytes = bytes.subarray(next.size);
        this.#processing = this.#processing.then(() => this.#handle(frame));
      }
    } catch (e) {
      this.#protocolError(e as Error);
      return;
    }
    this.#pending = bytes.slice();
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
    const headers = new Headers(
      decodeHeaderList(await this.#decompressor.decompress(frame.headerBlock)),
    );
    const id = frame.streamId;
    if (id % 2 === 0 || id <= this.#lastStreamId) {
      await this.send({ type: "rstStream", streamId: id, status: RstStatus.PROTOCOL_ERROR });
      return;
    }
    this.#lastStreamId = id;
    if (this.#goingAway) {
      await this.send({ type: "rstStream", streamId: id, status: RstStatus.REFUSED_STREAM });
      return;
    }
    const stream = new SpdyStream(this, id, headers, frame.fin);
    this.#streams.set(id, stream);
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

  #protocolError(e: Error): void {
    this.#o.log?.(`SPDY protocol error, closing the connection: ${e.message}`);
    this.#socket.destroy();
  }

  #end(reason: Error): void {
    if (this.#ended) return;
    this.#ended = true;
    for (const stream of [...this.#streams.values()]) stream.abort(reason);
    this.#streams.clear();
    this.#decompressor.close();
  }
}
