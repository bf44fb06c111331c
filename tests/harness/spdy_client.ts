/**
 * A SPDY client for tests, over a real loopback TCP connection, as Go's spdystream is one:
 * header blocks really deflated with the SPDY dictionary on one context, frames read as they
 * come.
 *
 * @module
 */
import net from "node:net";
import zlib from "node:zlib";
import {
  concat,
  decodeHeaderList,
  encodeHeaderList,
  HeaderDecompressor,
  type HeaderList,
  SPDY3_DICTIONARY,
} from "../../src/http/spdy/compression.ts";
import { decodeFrame, encodeFrame, type Frame } from "../../src/http/spdy/frames.ts";

/** The test client; see the module doc. */
export class TestClient {
  readonly frames: Frame[] = [];
  readonly #socket: net.Socket;
  readonly #deflate = zlib.createDeflate({ dictionary: SPDY3_DICTIONARY, level: 9 });
  readonly #inflate = new HeaderDecompressor();
  #pending = new Uint8Array();
  #waiters: (() => void)[] = [];
  ended = false;

  constructor(socket: net.Socket) {
    this.#socket = socket;
    socket.on("data", (chunk: Uint8Array) => {
      let bytes = concat([this.#pending, chunk]);
      for (let next = decodeFrame(bytes); next; next = decodeFrame(bytes)) {
        this.frames.push(next.frame);
        bytes = bytes.subarray(next.size);
      }
      this.#pending = bytes.slice();
      this.#wake();
    });
    socket.on("end", () => {
      this.ended = true;
      this.#wake();
    });
    // A server that cuts the connection while the client still writes: that is the test's
    // subject, not an error of the test.
    socket.on("error", () => {
      this.ended = true;
      this.#wake();
    });
  }

  #wake() {
    for (const w of this.#waiters.splice(0)) w();
  }

  /** Waits until `check` holds for the frames received so far. */
  async until<T>(check: () => T | undefined | false): Promise<T> {
    for (;;) {
      const result = check();
      if (result) return result;
      await new Promise<void>((resolve) => this.#waiters.push(resolve));
    }
  }

  /** Opens stream `id` with `headers`, or with a name/value block made by the caller. */
  async open(id: number, headers: HeaderList | Uint8Array, fin = false): Promise<void> {
    const block = headers instanceof Uint8Array ? headers : encodeHeaderList(headers);
    const headerBlock = await this.#compress(block);
    this.send({
      type: "synStream",
      streamId: id,
      associatedTo: 0,
      priority: 0,
      fin,
      unidirectional: false,
      headerBlock,
    });
  }

  send(frame: Frame): void {
    this.#socket.write(encodeFrame(frame));
  }

  /** Writes bytes as they are: frames cut short, or lying about their length. */
  sendBytes(bytes: Uint8Array): void {
    this.#socket.write(bytes);
  }

  /** Data the server sent on stream `id` so far, and whether it ended it (FIN). */
  received(id: number): { data: Uint8Array; fin: boolean } {
    const frames = this.frames.filter((f) => f.type === "data" && f.streamId === id) as Extract<
      Frame,
      { type: "data" }
    >[];
    return { data: concat(frames.map((f) => f.data)), fin: frames.some((f) => f.fin) };
  }

  /** The headers of the server's SYN_REPLY to stream `id`, read with a real inflater. */
  async reply(id: number): Promise<HeaderList> {
    const reply = await this.until(() =>
      this.frames.find((f) => f.type === "synReply" && f.streamId === id) as
        | Extract<Frame, { type: "synReply" }>
        | undefined
    );
    return decodeHeaderList(await this.#inflate.decompress(reply.headerBlock));
  }

  #compress(block: Uint8Array): Promise<Uint8Array> {
    return new Promise((resolve) => {
      const out: Uint8Array[] = [];
      const take = (c: Uint8Array) => out.push(c);
      this.#deflate.on("data", take);
      this.#deflate.write(block);
      this.#deflate.flush(zlib.constants.Z_SYNC_FLUSH, () => {
        this.#deflate.off("data", take);
        resolve(concat(out));
      });
    });
  }

  close(): void {
    this.#socket.destroy();
    this.#deflate.close();
    this.#inflate.close();
  }
}

/** A connected pair: the server's socket (to serve SPDY on) and a test client on the other end. */
export async function connectClient(): Promise<{ socket: net.Socket; client: TestClient }> {
  const server = net.createServer();
  const accepted = new Promise<net.Socket>((resolve) => server.once("connection", resolve));
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as net.AddressInfo).port;
  const socket = net.connect(port, "127.0.0.1");
  const serverSide = await accepted;
  server.close();
  return { socket: serverSide, client: new TestClient(socket) };
}
