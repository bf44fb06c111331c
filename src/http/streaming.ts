/**
 * The kubelet's streaming endpoints over SPDY/3.1, as the apiserver uses them for
 * `kubectl exec`, `kubectl attach` and `kubectl port-forward` (it talks WebSocket to kubectl
 * and SPDY to kubelets, or passes kubectl's own SPDY through):
 *
 * - `/exec/{ns}/{pod}/{container}?command=..&stdin=1&stdout=1&stderr=1&tty=1`, protocol
 *   `v4.channel.k8s.io`: the client opens one stream per `streamtype` (`error`, `stdin`,
 *   `stdout`, `stderr`, `resize`); once all that the query asks for are there the command
 *   runs, and its end is a `metav1.Status` as JSON on the error stream (`NonZeroExitCode`
 *   with an `ExitCode` cause for a failing command), after which the connection closes.
 * - `/attach/{ns}/{pod}/{container}`: the same streams, with the container's own output.
 * - `/portForward/{ns}/{pod}`, protocol `portforward.k8s.io`: the client opens streams in
 *   pairs, `error` and `data`, with the same `requestid` and a `port`; each pair is one TCP
 *   connection to that port, and a failure is text on its error stream.
 *
 * @module
 */
import type { Duplex } from "node:stream";
import { SpdySession, type SpdyStream } from "./spdy/session.ts";
import type { ExecProcess, TerminalSize } from "../exec/container.ts";
import { text } from "./responses.ts";

/** Answers an upgrade request by switching protocols (101) and serving the connection. */
export interface ProtocolSwitch {
  /** Headers of the 101 response (`Upgrade`, the negotiated `X-Stream-Protocol-Version`). */
  headers: Record<string, string>;
  /** Serves the switched connection until it ends. */
  serve(socket: Duplex): Promise<void>;
}

/** True for a {@link ProtocolSwitch} (as opposed to a plain `Response`). */
export function isProtocolSwitch(answer: Response | ProtocolSwitch): answer is ProtocolSwitch {
  return !(answer instanceof Response);
}

/** The exec/attach sub-protocol systemk speaks (the kubelet also has v1-v3, for old clients). */
export const REMOTE_COMMAND_V4 = "v4.channel.k8s.io";
/** The port-forward sub-protocol. */
export const PORT_FORWARD_V1 = "portforward.k8s.io";

/** How long the client has to open the streams it announced (the kubelet's default). */
const STREAM_CREATION_TIMEOUT_MS = 30_000;

/**
 * The sub-protocol to speak, as the kubelet negotiates it (`httpstream.Handshake`): the
 * client's first `X-Stream-Protocol-Version` that the server supports.
 *
 * @return the protocol, or a Response refusing the request (400 without SPDY upgrade headers
 *   or a protocol list, 403 when none matches).
 */
export function negotiate(request: Request, supported: readonly string[]): string | Response {
  const connection = request.headers.get("connection")?.toLowerCase() ?? "";
  const upgrade = request.headers.get("upgrade")?.toLowerCase() ?? "";
  if (!connection.includes("upgrade") || !upgrade.includes("spdy/3.1")) {
    return text(
      400,
      "unable to upgrade: this endpoint streams over SPDY/3.1 (Connection: Upgrade, " +
        "Upgrade: SPDY/3.1), as the apiserver and kubectl do",
    );
  }
  const offered = (request.headers.get("x-stream-protocol-version") ?? "")
    .split(",").map((p) => p.trim()).filter(Boolean);
  if (offered.length === 0) {
    return text(400, "unable to upgrade: X-Stream-Protocol-Version is required");
  }
  const chosen = offered.find((p) => supported.includes(p));
  if (!chosen) {
    return text(
      403,
      `unable to upgrade: unable to negotiate protocol: client supports [${offered.join(" ")}], ` +
        `server accepts [${supported.join(" ")}]`,
      { headers: { "x-accepted-stream-protocol-versions": supported.join(", ") } },
    );
  }
  return chosen;
}

/**
 * A switch to SPDY/3.1 speaking `protocol`: `run` takes the client's streams as they are opened;
 * when it returns, the session is closed (GOAWAY, then the connection).
 */
function spdySwitch(
  protocol: string,
  run: (session: SpdySession, streams: AsyncIterable<SpdyStream>) => Promise<void>,
  log?: (message: string) => void,
): ProtocolSwitch {
  return {
    headers: { "upgrade": "SPDY/3.1", "x-stream-protocol-version": protocol },
    async serve(socket) {
      const streams = new StreamQueue();
      const session = new SpdySession(socket, { onStream: (s) => streams.push(s), log });
      session.closed.then(() => streams.end());
      try {
        await run(session, streams);
      } catch (e) {
        log?.(`kubelet API: ${protocol} session: ${(e as Error).message}`);
      } finally {
        await session.close();
      }
    },
  };
}

/** Streams as they are opened, to be taken in order; ends with the session. */
class StreamQueue implements AsyncIterable<SpdyStream> {
  readonly #queued: SpdyStream[] = [];
  #wake?: () => void;
  #ended = false;

  push(stream: SpdyStream): void {
    this.#queued.push(stream);
    this.#wake?.();
  }

  end(): void {
    this.#ended = true;
    this.#wake?.();
  }

  async *[Symbol.asyncIterator](): AsyncIterator<SpdyStream> {
    while (true) {
      const next = this.#queued.shift();
      if (next) {
        yield next;
        continue;
      }
      if (this.#ended) return;
      await new Promise<void>((resolve) => this.#wake = resolve);
      this.#wake = undefined;
    }
  }
}

// ---------------------------------------------------------------------------------------------
// port-forward

/** Opens a TCP connection to a port of the pod. */
export type PortDialer = (port: number) => Promise<Deno.TcpConn>;

/**
 * Connects to `port` where a container of a host-network pod listens: `127.0.0.1`, else
 * `[::1]`, as the kubelet's runtimes dial `localhost` inside the pod's network namespace (the
 * node's, here). A server bound to the node's address only is not reachable, as with the
 * kubelet.
 */
export async function dialLoopback(port: number): Promise<Deno.TcpConn> {
  try {
    return await Deno.connect({ hostname: "127.0.0.1", port });
  } catch (v4) {
    try {
      return await Deno.connect({ hostname: "::1", port });
    } catch (v6) {
      throw new Error(
        `failed to connect to localhost:${port}: IPv4: ${(v4 as Error).message}; IPv6: ${
          (v6 as Error).message
        }`,
      );
    }
  }
}

/** Options of the streaming sessions ({@link remoteCommand}, {@link portForward}). */
export interface StreamingOptions {
  /** Where a session's errors are reported (the agent's log); default nowhere. */
  log?: (message: string) => void;
}

/** Options of {@link portForward}. */
export interface PortForwardOptions extends StreamingOptions {
  /** Connects to a port of the pod (pods use the node's network: a loopback port). */
  dial: PortDialer;
}

/** Serves `kubectl port-forward` for `pod` (`namespace/name`); see the module doc. */
export function portForward(pod: string, options: PortForwardOptions): ProtocolSwitch {
  const { dial, log } = options;
  return spdySwitch(PORT_FORWARD_V1, async (_session, streams) => {
    const pairs = new Map<string, { data?: SpdyStream; error?: SpdyStream }>();
    const forwards = new Set<Promise<void>>();
    for await (const stream of streams) {
      const type = stream.headers.get("streamtype");
      const port = Number(stream.headers.get("port"));
      if (
        (type !== "data" && type !== "error") || !Number.isInteger(port) || port < 1 || port > 65535
      ) {
        log?.(
          `port-forward to ${pod}: refused stream ${stream.id} (streamtype ${type}, port ${
            stream.headers.get("port")
          })`,
        );
        stream.reset();
        continue;
      }
      // Old clients send no request id: the pair's error stream is the one two ids before.
      const requestId = stream.headers.get("requestid") ??
        String(type === "error" ? stream.id : stream.id - 2);
      let pair = pairs.get(requestId);
      if (!pair) {
        const created = pair = {} as { data?: SpdyStream; error?: SpdyStream };
        pairs.set(requestId, created);
        // A pair that never completes would hold its stream forever.
        const timer = setTimeout(() => {
          if (pairs.get(requestId) !== created) return;
          pairs.delete(requestId);
          created.data?.reset();
          if (created.error) {
            void writeText(created.error, `timed out waiting for the streams of ${requestId}`)
              .finally(() => created.error?.close());
          }
        }, STREAM_CREATION_TIMEOUT_MS);
        Deno.unrefTimer(timer);
      }
      if (pair[type]) {
        void writeText(
          pair.error ?? stream,
          `stream for request ${requestId} already has a ${type} stream`,
        );
        stream.reset();
        continue;
      }
      pair[type] = stream;
      // The client only reads its error stream: what it may send there is dropped.
      if (type === "error") void stream.readable.cancel();
      if (pair.data && pair.error) {
        pairs.delete(requestId);
        const done: Promise<void> = forward(pod, port, pair.data, pair.error, dial, log)
          .finally(() => forwards.delete(done));
        forwards.add(done);
      }
    }
    await Promise.all(forwards);
  }, log);
}

/** One forwarded connection: bytes both ways until the pod's side ends. */
async function forward(
  pod: string,
  port: number,
  data: SpdyStream,
  error: SpdyStream,
  dial: PortDialer,
  log?: (message: string) => void,
): Promise<void> {
  let conn: Deno.TcpConn;
  try {
    conn = await dial(port);
  } catch (e) {
    const message = `error forwarding port ${port} to pod ${pod}: ${(e as Error).message}`;
    log?.(`kubelet API: ${message}`);
    await writeText(error, message);
    data.reset();
    error.reset();
    return;
  }
  // The client's half: its FIN becomes ours towards the pod (a request may be followed by
  // a half-close, and the answer still comes).
  const reader = data.readable.getReader();
  const toPod = (async () => {
    try {
      for (let r = await reader.read(); !r.done; r = await reader.read()) {
        await writeAll(conn, r.value);
      }
      await conn.closeWrite();
    } catch {
      // Reset by the client, or the pod's side closed: the other half ends it all.
    }
  })();
  try {
    // The pod's half decides, as with the kubelet's runtimes: when the pod's side ends (its
    // readable's end also closes the connection), the forwarded connection is over.
    for await (const chunk of conn.readable) await data.write(chunk);
  } catch {
    // The client reset the stream or went away.
  } finally {
    data.close();
    error.close();
    await reader.cancel().catch(() => {});
    await toPod;
    try {
      conn.close();
    } catch {
      // already closed by its readable's end
    }
  }
}

async function writeAll(conn: Deno.Conn, bytes: Uint8Array): Promise<void> {
  for (let written = 0; written < bytes.length;) {
    written += await conn.write(bytes.subarray(written));
  }
}

function writeText(stream: SpdyStream, message: string): Promise<void> {
  return stream.write(new TextEncoder().encode(message)).catch(() => {});
}

// ---------------------------------------------------------------------------------------------
// exec and attach

/** What `kubectl exec`/`attach` asked for (the query of the request). */
export interface StreamOptions {
  stdin: boolean;
  stdout: boolean;
  stderr: boolean;
  tty: boolean;
}

/**
 * The streams asked for, as the kubelet reads them: `input`, `output`, `error` and `tty`, each
 * on when "1"; a TTY has no separate stderr (the terminal carries both).
 *
 * @return the options, or a message when no stream at all is asked for.
 */
export function streamOptions(query: URLSearchParams): StreamOptions | string {
  const on = (name: string) => query.get(name) === "1";
  const tty = on("tty");
  const options = { stdin: on("input"), stdout: on("output"), stderr: on("error") && !tty, tty };
  if (!options.stdin && !options.stdout && !options.stderr) {
    return "you must specify at least 1 of stdin, stdout, stderr";
  }
  return options;
}

/** The streams of one exec or attach, once the client opened them all. */
export interface RemoteCommandStreams {
  stdin?: SpdyStream;
  stdout?: SpdyStream;
  stderr?: SpdyStream;
  /** Terminal sizes as the client's terminal changes, the first one its size at the start. */
  resize?: AsyncIterator<TerminalSize>;
  /** The initial terminal size, when a TTY was asked for and the client sent one. */
  size?: TerminalSize;
}

/** How a command ended, as the error stream reports it. */
export type CommandOutcome =
  | { exitCode: number }
  /** The command could not run, or the container cannot do what was asked. */
  | { error: string; reason?: string; code?: number };

/**
 * The `metav1.Status` the v4 protocol ends with: Success, NonZeroExitCode with the exit code
 * as the `ExitCode` cause (which kubectl exits with), or a failure with its message.
 */
export function commandStatus(outcome: CommandOutcome): Record<string, unknown> {
  if ("exitCode" in outcome) {
    if (outcome.exitCode === 0) return { metadata: {}, status: "Success" };
    return {
      metadata: {},
      status: "Failure",
      message: `command terminated with non-zero exit code: exit status ${outcome.exitCode}`,
      reason: "NonZeroExitCode",
      details: { causes: [{ reason: "ExitCode", message: String(outcome.exitCode) }] },
    };
  }
  return {
    metadata: {},
    status: "Failure",
    message: outcome.error,
    reason: outcome.reason ?? "InternalError",
    code: outcome.code ?? 500,
  };
}

/**
 * Serves one exec or attach: collects the announced streams, runs `command` with them, then
 * reports its outcome on the error stream and closes everything.
 */
export function remoteCommand(
  options: StreamOptions,
  command: (streams: RemoteCommandStreams, signal: AbortSignal) => Promise<CommandOutcome>,
  { log }: StreamingOptions = {},
): ProtocolSwitch {
  return spdySwitch(REMOTE_COMMAND_V4, async (session, streams) => {
    const expected = new Set(["error"]);
    for (const [name, on] of Object.entries(options)) if (on && name !== "tty") expected.add(name);
    if (options.tty) expected.add("resize");
    const got = new Map<string, SpdyStream>();
    const iterator = streams[Symbol.asyncIterator]();
    const deadline = Promise.withResolvers<"expired">();
    const timer = setTimeout(() => deadline.resolve("expired"), STREAM_CREATION_TIMEOUT_MS);
    try {
      while ([...expected].some((t) => !got.has(t))) {
        const next = await Promise.race([iterator.next(), deadline.promise]);
        if (next === "expired") {
          log?.(`kubelet API: timed out waiting for the client to open streams ${[...expected]}`);
          return;
        }
        if (next.done) return;
        const type = next.value.headers.get("streamtype") ?? "";
        if (!expected.has(type) || got.has(type)) {
          log?.(`kubelet API: unexpected stream type "${type}"`);
          next.value.reset();
          continue;
        }
        got.set(type, next.value);
      }
    } finally {
      clearTimeout(timer);
    }
    const error = got.get("error")!;
    void error.readable.cancel();
    const sizes = got.has("resize")
      ? await firstSize(terminalSizes(got.get("resize")!.readable))
      : undefined;
    const gone = new AbortController();
    session.closed.then(() => gone.abort());
    let outcome: CommandOutcome;
    try {
      outcome = await command({
        stdin: got.get("stdin"),
        stdout: got.get("stdout"),
        stderr: got.get("stderr"),
        resize: sizes?.rest,
        size: sizes?.size,
      }, gone.signal);
    } catch (e) {
      outcome = { error: `error executing command in container: ${(e as Error).message}` };
    }
    await error.write(new TextEncoder().encode(JSON.stringify(commandStatus(outcome))))
      .catch(() => {});
    for (const stream of got.values()) stream.close();
  }, log);
}

/** Terminal sizes from a resize stream: JSON objects `{"Width":w,"Height":h}`, one a line. */
export async function* terminalSizes(
  readable: ReadableStream<Uint8Array>,
): AsyncGenerator<TerminalSize> {
  let buffered = "";
  for await (const chunk of readable.pipeThrough(new TextDecoderStream())) {
    buffered += chunk;
    // Go's json.Encoder ends each object with a newline.
    for (let nl = buffered.indexOf("\n"); nl >= 0; nl = buffered.indexOf("\n")) {
      const line = buffered.slice(0, nl).trim();
      buffered = buffered.slice(nl + 1);
      if (!line) continue;
      const size = JSON.parse(line) as { Width?: number; Height?: number };
      if (size.Width && size.Height) yield { columns: size.Width, rows: size.Height };
    }
  }
}

/**
 * The client's terminal size at the start (kubectl sends it right after opening the streams),
 * and the sizes after it. A client that sends none within a second gets a terminal of the
 * default size (80x24) rather than a wait; its size, when it comes, is the first resize.
 */
async function firstSize(
  sizes: AsyncIterator<TerminalSize>,
): Promise<{ size: TerminalSize; rest: AsyncIterator<TerminalSize> }> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<"late">((resolve) => timer = setTimeout(() => resolve("late"), 1000));
  const next = sizes.next();
  const first = await Promise.race([next, late]);
  clearTimeout(timer);
  const fallback = { columns: 80, rows: 24 };
  if (first !== "late") return { size: first.done ? fallback : first.value, rest: sizes };
  const rest = (async function* () {
    const pending = await next;
    if (pending.done) return;
    yield pending.value;
    for (let r = await sizes.next(); !r.done; r = await sizes.next()) yield r.value;
  })();
  return { size: fallback, rest };
}

/** Options of {@link runExec}. */
export interface RunExecOptions {
  /** Aborts when the client goes away: the process is killed. */
  signal: AbortSignal;
}

/**
 * Runs a command in a container with the streams of one exec: stdin from the client, output
 * to it, resizes applied, the process killed when the client goes away.
 */
export async function runExec(
  start: (
    stdin: ReadableStream<Uint8Array> | undefined,
    tty?: TerminalSize,
  ) => Promise<ExecProcess>,
  streams: RemoteCommandStreams,
  options: RunExecOptions,
): Promise<CommandOutcome> {
  const { signal } = options;
  const process = await start(streams.stdin?.readable, streams.size);
  const kill = () => void process.kill().catch(() => {});
  signal.addEventListener("abort", kill, { once: true });
  // The client may have left while the command was starting.
  if (signal.aborted) kill();
  // Resizes go on until the client's resize stream ends (with the session at the latest).
  void (async () => {
    if (!streams.resize) return;
    for (let r = await streams.resize.next(); !r.done; r = await streams.resize.next()) {
      await process.resize(r.value).catch(() => {});
    }
  })().catch(() => {});
  await Promise.all([
    pump(process.stdout, { to: streams.stdout }),
    pump(process.stderr, { to: streams.stderr }),
  ]);
  const status = await process.status;
  signal.removeEventListener("abort", kill);
  if (status.exitCode !== null) return { exitCode: status.exitCode };
  if (status.timedOut) return { error: "command timed out" };
  // Killed by a signal: the exit code a shell would report (128 + the signal's number).
  const number = SIGNALS[status.signal ?? ""];
  return number ? { exitCode: 128 + number } : { error: `command killed by ${status.signal}` };
}

/** Where {@link pump} copies to, and until when. */
export interface PumpOptions {
  /** The client's stream; none when the client did not ask for this output. */
  to?: SpdyStream;
  /** Ends the copy early (the client went away). */
  signal?: AbortSignal;
}

/**
 * Copies output to a stream until it ends or `signal` aborts; output nobody asked for (no
 * stream) or nobody reads any more (a reset stream) is drained, so the writer never blocks.
 */
export async function pump(
  from: ReadableStream<Uint8Array>,
  options: PumpOptions = {},
): Promise<void> {
  let { to } = options;
  const { signal } = options;
  const reader = from.getReader();
  const stop = () => void reader.cancel().catch(() => {});
  signal?.addEventListener("abort", stop, { once: true });
  try {
    for (let r = await reader.read(); !r.done; r = await reader.read()) {
      if (to) await to.write(r.value).catch(() => to = undefined);
    }
  } finally {
    signal?.removeEventListener("abort", stop);
    reader.releaseLock();
  }
}

const SIGNALS: Record<string, number> = {
  SIGHUP: 1,
  SIGINT: 2,
  SIGQUIT: 3,
  SIGABRT: 6,
  SIGKILL: 9,
  SIGSEGV: 11,
  SIGPIPE: 13,
  SIGTERM: 15,
};
