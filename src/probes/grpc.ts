/**
 * gRPC probes, as the kubelet's: one call of the standard health service
 * (`grpc.health.v1.Health/Check`) over cleartext HTTP/2 (h2c with prior knowledge, no TLS: the
 * kubelet's probe has no credentials either); `SERVING` succeeds, anything else fails, and so
 * does a connection error or the call outlasting `timeoutSeconds`. Failure messages are the
 * kubelet's.
 *
 * The wire format is small enough to write by hand instead of pulling in a gRPC stack: a
 * request is one length-prefixed protobuf message (`service`, field 1) and the answer is one
 * message (`status`, field 1) followed by trailers carrying `grpc-status`.
 *
 * @module
 */
import http2 from "node:http2";
import type { ProbeOutcome } from "./types.ts";

/** The health service's method, as its HTTP/2 path. */
const CHECK_PATH = "/grpc.health.v1.Health/Check";

/** `HealthCheckResponse.ServingStatus` by number (proto enum values). */
export const SERVING_STATUS = ["UNKNOWN", "SERVING", "NOT_SERVING", "SERVICE_UNKNOWN"] as const;

/** gRPC status code names by number, as grpc-go's `codes.Code.String()` writes them. */
const CODE_NAMES = [
  "OK",
  "Canceled",
  "Unknown",
  "InvalidArgument",
  "DeadlineExceeded",
  "NotFound",
  "AlreadyExists",
  "PermissionDenied",
  "ResourceExhausted",
  "FailedPrecondition",
  "Aborted",
  "OutOfRange",
  "Unimplemented",
  "Internal",
  "Unavailable",
  "DataLoss",
  "Unauthenticated",
];
const UNKNOWN = 2;
const DEADLINE_EXCEEDED = 4;
const UNIMPLEMENTED = 12;
const INTERNAL = 13;
const UNAVAILABLE = 14;

/**
 * Encodes a `grpc.health.v1.HealthCheckRequest`: `string service = 1`, left out when empty
 * (proto3 omits default values).
 *
 * @param service The service to ask about; `""` is the server as a whole.
 * @return The protobuf message.
 *
 * @example Usage
 * ```ts
 * import { encodeHealthCheckRequest } from "./grpc.ts";
 * import assert from "node:assert/strict";
 * assert.deepEqual([...encodeHealthCheckRequest("ab")], [0x0a, 2, 0x61, 0x62]);
 * ```
 */
export function encodeHealthCheckRequest(service: string): Uint8Array {
  if (service === "") return new Uint8Array();
  const text = new TextEncoder().encode(service);
  return concat([Uint8Array.of(0x0a), encodeVarint(text.length), text]);
}

/**
 * Decodes a `grpc.health.v1.HealthCheckResponse`: `ServingStatus status = 1` (a varint; 0,
 * `UNKNOWN`, when absent). Other fields are skipped, as protobuf readers do.
 *
 * @param message The protobuf message.
 * @return The status number (see `SERVING_STATUS`).
 * @throws {Error} When the message is malformed.
 *
 * @example Usage
 * ```ts
 * import { decodeHealthCheckResponse } from "./grpc.ts";
 * import assert from "node:assert/strict";
 * assert.equal(decodeHealthCheckResponse(Uint8Array.of(0x08, 1)), 1);
 * ```
 */
export function decodeHealthCheckResponse(message: Uint8Array): number {
  let status = 0;
  let at = 0;
  while (at < message.length) {
    const [key, afterKey] = decodeVarint(message, at);
    const field = Math.floor(key / 8);
    const wireType = key % 8;
    at = afterKey;
    if (wireType === 0) {
      const [value, next] = decodeVarint(message, at);
      if (field === 1) status = value;
      at = next;
    } else if (wireType === 1 || wireType === 5) {
      at += wireType === 1 ? 8 : 4;
    } else if (wireType === 2) {
      const [length, next] = decodeVarint(message, at);
      at = next + length;
    } else {
      throw new Error(`unsupported protobuf wire type ${wireType}`);
    }
    if (at > message.length) throw new Error("truncated protobuf message");
  }
  return status;
}

/**
 * Frames one message as gRPC sends it: a compressed flag (0), its length (4 bytes, big
 * endian), then the message.
 *
 * @param message The protobuf message.
 * @return The frame.
 *
 * @example Usage
 * ```ts
 * import { frameMessage } from "./grpc.ts";
 * import assert from "node:assert/strict";
 * assert.deepEqual([...frameMessage(Uint8Array.of(8, 1))], [0, 0, 0, 0, 2, 8, 1]);
 * ```
 */
export function frameMessage(message: Uint8Array): Uint8Array {
  const frame = new Uint8Array(5 + message.length);
  new DataView(frame.buffer).setUint32(1, message.length);
  frame.set(message, 5);
  return frame;
}

/**
 * Reads the one message of a unary call's response body.
 *
 * @param body The response body (one frame).
 * @return The message.
 * @throws {Error} When there is no complete frame, or it is compressed (systemk never offers
 *   compression, so a server must not use it).
 *
 * @example Usage
 * ```ts
 * import { unframeMessage } from "./grpc.ts";
 * import assert from "node:assert/strict";
 * assert.deepEqual([...unframeMessage(Uint8Array.of(0, 0, 0, 0, 2, 8, 1))], [8, 1]);
 * ```
 */
export function unframeMessage(body: Uint8Array): Uint8Array {
  if (body.length < 5) throw new Error("the response has no message");
  if (body[0] !== 0) throw new Error("the response message is compressed");
  const length = new DataView(body.buffer, body.byteOffset, body.byteLength).getUint32(1);
  if (body.length < 5 + length) throw new Error("the response message is truncated");
  return body.subarray(5, 5 + length);
}

/** What came back from one health call, before it is judged. */
export interface GrpcAnswer {
  /** HTTP `:status`. */
  httpStatus?: number;
  contentType?: string;
  /** `grpc-status` from the trailers (or the headers of a trailers-only answer). */
  grpcStatus?: string;
  /** `grpc-message`, percent-encoded as sent. */
  grpcMessage?: string;
  body: Uint8Array;
}

/**
 * Judges a health call's answer as the kubelet's prober does: `SERVING` succeeds; a call
 * error, a non-gRPC answer or any other status fails with the kubelet's message.
 *
 * @param answer What the server sent.
 * @param timeoutSeconds The probe's timeout, named in a deadline message.
 * @return The probe outcome.
 *
 * @example Usage
 * ```ts
 * import { judgeAnswer } from "./grpc.ts";
 * import assert from "node:assert/strict";
 * const answer = {
 *   httpStatus: 200, contentType: "application/grpc", grpcStatus: "0",
 *   body: Uint8Array.of(0, 0, 0, 0, 2, 0x08, 2),
 * };
 * assert.equal(judgeAnswer(answer, 1).message, 'service unhealthy (responded with "NOT_SERVING")');
 * ```
 */
export function judgeAnswer(answer: GrpcAnswer, timeoutSeconds: number): ProbeOutcome {
  const error = callError(answer);
  if (error) {
    const fail = (message: string) => ({ ok: false, message });
    if (error.code === UNIMPLEMENTED) {
      return fail(
        "error: this server does not implement the grpc health protocol " +
          `(grpc.health.v1.Health): ${error.message}`,
      );
    }
    if (error.code === DEADLINE_EXCEEDED) {
      return fail(`timeout: health rpc did not complete within ${timeoutSeconds}s`);
    }
    return fail(
      `error: health rpc probe failed: rpc error: code = ${
        CODE_NAMES[error.code] ?? `Code(${error.code})`
      } desc = ${error.message}`,
    );
  }
  let status: number;
  try {
    status = decodeHealthCheckResponse(unframeMessage(answer.body));
  } catch (e) {
    return { ok: false, message: `error: health rpc probe failed: ${(e as Error).message}` };
  }
  if (status === 1) return { ok: true };
  const name = SERVING_STATUS[status] ?? String(status);
  return { ok: false, message: `service unhealthy (responded with ${JSON.stringify(name)})` };
}

/** The call's gRPC error, if any; a non-gRPC answer maps as gRPC's HTTP mapping says. */
function callError(answer: GrpcAnswer): { code: number; message: string } | undefined {
  if (answer.httpStatus !== 200) {
    const code = answer.httpStatus === 404
      ? UNIMPLEMENTED
      : [429, 502, 503, 504].includes(answer.httpStatus ?? 0)
      ? UNAVAILABLE
      : answer.httpStatus === 400
      ? INTERNAL
      : UNKNOWN;
    return {
      code,
      message: `unexpected HTTP status code received from server: ${answer.httpStatus}`,
    };
  }
  if (!answer.contentType?.startsWith("application/grpc")) {
    return {
      code: UNKNOWN,
      message: `unexpected content-type ${JSON.stringify(answer.contentType ?? "")}: not gRPC`,
    };
  }
  if (answer.grpcStatus === undefined) {
    return { code: INTERNAL, message: "server closed the stream without sending trailers" };
  }
  const code = Number(answer.grpcStatus);
  if (code === 0) return undefined;
  let message = answer.grpcMessage ?? "";
  try {
    message = decodeURIComponent(message);
  } catch {
    // Not valid percent-encoding: shown as sent.
  }
  return { code: Number.isInteger(code) ? code : UNKNOWN, message };
}

/**
 * Makes one health call and judges it.
 *
 * @param target Where the server listens (`host`: the node, pods use its network) and its
 *   `port`.
 * @param options The `service` to ask about (`""`: the whole server) and the probe's
 *   `timeoutSeconds` (connecting and the call together).
 * @return The probe outcome; never throws.
 *
 * @example Usage
 * ```ts ignore
 * import { checkGrpc } from "./grpc.ts";
 * const outcome = await checkGrpc({ host: "127.0.0.1", port: 9090 }, {
 *   service: "",
 *   timeoutSeconds: 1,
 * });
 * ```
 */
export function checkGrpc(
  target: { host: string; port: number },
  options: { service: string; timeoutSeconds: number },
): Promise<ProbeOutcome> {
  const { host, port } = target;
  const { service, timeoutSeconds } = options;
  const bracketed = host.includes(":") ? `[${host}]` : host;
  const address = `${bracketed}:${port}`;
  return new Promise((resolve) => {
    let connected = false;
    let settled = false;
    const answer: GrpcAnswer = { body: new Uint8Array() };
    const chunks: Uint8Array[] = [];
    const session = http2.connect(`http://${address}`);
    const finish = (outcome: ProbeOutcome) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      session.destroy();
      resolve(outcome);
    };
    const timer = setTimeout(() =>
      finish({
        ok: false,
        message: connected
          ? `timeout: health rpc did not complete within ${timeoutSeconds}s`
          : `timeout: failed to connect service "${address}" within ${timeoutSeconds}s`,
      }), timeoutSeconds * 1000);
    const failed = (e: Error) => {
      // A refused connection shows first as the request's cancellation; its cause says why.
      const reason = (e.cause as Error | undefined)?.message ?? e.message;
      finish({
        ok: false,
        message: connected
          ? `error: health rpc probe failed: ${reason}`
          : `error: failed to connect service at "${address}": ${reason}`,
      });
    };
    session.on("connect", () => connected = true);
    session.on("error", failed);
    const stream = session.request({
      ":method": "POST",
      ":path": CHECK_PATH,
      "content-type": "application/grpc",
      "te": "trailers",
      "user-agent": "kube-probe/1.34",
      "grpc-timeout": `${timeoutSeconds}S`,
    });
    const readStatus = (headers: http2.IncomingHttpHeaders) => {
      const status = headers["grpc-status"];
      if (status !== undefined) answer.grpcStatus = String(status);
      const message = headers["grpc-message"];
      if (message !== undefined) answer.grpcMessage = String(message);
    };
    stream.on("response", (headers) => {
      answer.httpStatus = Number(headers[":status"]);
      answer.contentType = headers["content-type"];
      readStatus(headers);
    });
    stream.on("trailers", readStatus);
    stream.on("data", (chunk: Uint8Array) => chunks.push(chunk));
    stream.on("error", failed);
    stream.on("close", () => {
      if (answer.httpStatus === undefined) {
        return failed(new Error("the connection closed before an answer (not an HTTP/2 server?)"));
      }
      answer.body = concat(chunks);
      finish(judgeAnswer(answer, timeoutSeconds));
    });
    stream.end(frameMessage(encodeHealthCheckRequest(service)));
  });
}

function encodeVarint(value: number): Uint8Array {
  const bytes: number[] = [];
  while (value >= 0x80) {
    bytes.push((value % 0x80) | 0x80);
    value = Math.floor(value / 0x80);
  }
  bytes.push(value);
  return Uint8Array.from(bytes);
}

/** A varint at `at`: its value (exact up to 2^53) and where the next field starts. */
function decodeVarint(bytes: Uint8Array, at: number): [number, number] {
  let value = 0;
  let scale = 1;
  for (let i = at; i < bytes.length && i < at + 10; i++) {
    value += (bytes[i] & 0x7f) * scale;
    scale *= 0x80;
    if (bytes[i] < 0x80) return [value, i + 1];
  }
  throw new Error("malformed protobuf varint");
}

function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const part of parts) {
    out.set(part, at);
    at += part.length;
  }
  return out;
}
