/**
 * SPDY/3.1 frames: their binary layout, encoded and decoded, nothing else. Header blocks stay
 * compressed here (see {@link ./compression.ts}): they can only be decompressed in order, with
 * the connection's one compression context, which is the session's business.
 *
 * Every frame has an 8-byte header. A control frame: the control bit, a 15-bit version (3),
 * a 16-bit type, 8 bits of flags and a 24-bit length. A data frame: a 31-bit stream id after a
 * clear control bit, 8 bits of flags and a 24-bit length. All numbers are big-endian.
 *
 * @module
 */

/** The SPDY version this module speaks. */
export const SPDY_VERSION = 3;

/** Control frame types (SPDY/3 §2.6). */
export const FrameType = {
  SYN_STREAM: 1,
  SYN_REPLY: 2,
  RST_STREAM: 3,
  SETTINGS: 4,
  PING: 6,
  GOAWAY: 7,
  HEADERS: 8,
  WINDOW_UPDATE: 9,
} as const;

/** RST_STREAM status codes (SPDY/3 §2.6.3). */
export const RstStatus = {
  PROTOCOL_ERROR: 1,
  INVALID_STREAM: 2,
  REFUSED_STREAM: 3,
  UNSUPPORTED_VERSION: 4,
  CANCEL: 5,
  INTERNAL_ERROR: 6,
  FLOW_CONTROL_ERROR: 7,
  STREAM_IN_USE: 8,
  STREAM_ALREADY_CLOSED: 9,
  FRAME_TOO_LARGE: 11,
} as const;

/** GOAWAY status codes (SPDY/3 §2.6.6). */
export const GoAwayStatus = {
  OK: 0,
  PROTOCOL_ERROR: 1,
  INTERNAL_ERROR: 2,
} as const;

/** The largest payload a frame's 24-bit length can carry. */
export const MAX_FRAME_LENGTH = 0xffffff;

const FLAG_FIN = 0x01;
const FLAG_UNIDIRECTIONAL = 0x02;
const FLAG_CLEAR_SETTINGS = 0x01;

/** One setting of a SETTINGS frame. */
export interface Setting {
  flags: number;
  id: number;
  value: number;
}

/** A decoded frame. `headerBlock` is the compressed name/value block as sent. */
export type Frame =
  | { type: "data"; streamId: number; fin: boolean; data: Uint8Array }
  | {
    type: "synStream";
    streamId: number;
    associatedTo: number;
    priority: number;
    fin: boolean;
    unidirectional: boolean;
    headerBlock: Uint8Array;
  }
  | { type: "synReply"; streamId: number; fin: boolean; headerBlock: Uint8Array }
  | { type: "rstStream"; streamId: number; status: number }
  | { type: "settings"; clear: boolean; settings: Setting[] }
  | { type: "ping"; id: number }
  | { type: "goAway"; lastGoodStreamId: number; status: number }
  | { type: "headers"; streamId: number; fin: boolean; headerBlock: Uint8Array }
  | { type: "windowUpdate"; streamId: number; delta: number }
  /** A control frame of a type SPDY/3.1 does not define (CREDENTIAL, ...): ignored by peers. */
  | { type: "unknown"; frameType: number; flags: number; payload: Uint8Array };

/** A frame that breaks the protocol: the connection cannot go on. */
export class FrameError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "FrameError";
  }
}

/**
 * Encodes one frame.
 *
 * @throws {FrameError} when the payload is longer than a frame can carry.
 * @example Usage
 * ```ts
 * import assert from "node:assert/strict";
 * const bytes = encodeFrame({ type: "ping", id: 1 });
 * assert.deepEqual(decodeFrame(bytes)?.frame, { type: "ping", id: 1 });
 * ```
 */
export function encodeFrame(frame: Frame): Uint8Array {
  switch (frame.type) {
    case "data": {
      const out = header(frame.data.length);
      new DataView(out.buffer).setUint32(0, frame.streamId & 0x7fffffff);
      out[4] = frame.fin ? FLAG_FIN : 0;
      out.set(frame.data, 8);
      return out;
    }
    case "synStream": {
      const flags = (frame.fin ? FLAG_FIN : 0) | (frame.unidirectional ? FLAG_UNIDIRECTIONAL : 0);
      const out = control(FrameType.SYN_STREAM, flags, 10 + frame.headerBlock.length);
      const view = new DataView(out.buffer);
      view.setUint32(8, frame.streamId & 0x7fffffff);
      view.setUint32(12, frame.associatedTo & 0x7fffffff);
      out[16] = (frame.priority & 0x7) << 5;
      out.set(frame.headerBlock, 18);
      return out;
    }
    case "synReply":
    case "headers": {
      const type = frame.type === "synReply" ? FrameType.SYN_REPLY : FrameType.HEADERS;
      const out = control(type, frame.fin ? FLAG_FIN : 0, 4 + frame.headerBlock.length);
      new DataView(out.buffer).setUint32(8, frame.streamId & 0x7fffffff);
      out.set(frame.headerBlock, 12);
      return out;
    }
    case "rstStream":
      return words(control(FrameType.RST_STREAM, 0, 8), frame.streamId & 0x7fffffff, frame.status);
    case "settings": {
      const out = control(
        FrameType.SETTINGS,
        frame.clear ? FLAG_CLEAR_SETTINGS : 0,
        4 + 8 * frame.settings.length,
      );
      const view = new DataView(out.buffer);
      view.setUint32(8, frame.settings.length);
      frame.settings.forEach((s, i) => {
        view.setUint32(12 + 8 * i, ((s.flags & 0xff) << 24 | (s.id & 0xffffff)) >>> 0);
        view.setUint32(16 + 8 * i, s.value >>> 0);
      });
      return out;
    }
    case "ping":
      return words(control(FrameType.PING, 0, 4), frame.id >>> 0);
    case "goAway":
      return words(
        control(FrameType.GOAWAY, 0, 8),
        frame.lastGoodStreamId & 0x7fffffff,
        frame.status,
      );
    case "windowUpdate":
      return words(
        control(FrameType.WINDOW_UPDATE, 0, 8),
        frame.streamId & 0x7fffffff,
        frame.delta & 0x7fffffff,
      );
    case "unknown": {
      const out = control(frame.frameType, frame.flags, frame.payload.length);
      out.set(frame.payload, 8);
      return out;
    }
  }
}

/** Options of {@link decodeFrame}. */
export interface DecodeFrameOptions {
  /**
   * The longest control frame payload accepted (default: any a frame can carry). Checked as
   * soon as the frame's header is there, so a longer one is refused before it is buffered.
   */
  maxControlFrameLength?: number;
}

/**
 * The whole size (header and payload) of the frame starting `bytes`, or undefined while its
 * 8-byte header is incomplete.
 */
export function frameSize(bytes: Uint8Array): number | undefined {
  if (bytes.length < 8) return undefined;
  return 8 + (new DataView(bytes.buffer, bytes.byteOffset, 8).getUint32(4) & 0xffffff);
}

/**
 * Decodes the frame at the start of `bytes`.
 *
 * @return the frame and how many bytes it took, or undefined when `bytes` does not hold a whole
 *   frame yet.
 * @throws {FrameError} on a frame no SPDY/3 peer may send (another version, a truncated
 *   control frame), or a control frame longer than `options.maxControlFrameLength`.
 */
export function decodeFrame(
  bytes: Uint8Array,
  options: DecodeFrameOptions = {},
): { frame: Frame; size: number } | undefined {
  const size = frameSize(bytes);
  if (size === undefined) return undefined;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const length = size - 8;
  const isControl = (bytes[0] & 0x80) !== 0;
  const maxControl = options.maxControlFrameLength ?? MAX_FRAME_LENGTH;
  if (isControl && length > maxControl) {
    throw new FrameError(`control frame of ${length} bytes; at most ${maxControl} are accepted`);
  }
  if (bytes.length < size) return undefined;
  const flags = bytes[4];
  const first = view.getUint32(0);
  const payload = bytes.slice(8, size);
  if ((first & 0x80000000) === 0) {
    return {
      frame: { type: "data", streamId: first, fin: (flags & FLAG_FIN) !== 0, data: payload },
      size,
    };
  }
  const version = (first >>> 16) & 0x7fff;
  if (version !== SPDY_VERSION) throw new FrameError(`unsupported SPDY version ${version}`);
  const type = first & 0xffff;
  const p = new DataView(payload.buffer, payload.byteOffset, payload.byteLength);
  const need = (n: number) => {
    if (length < n) throw new FrameError(`control frame ${type} too short: ${length} bytes`);
  };
  const id = (offset: number) => p.getUint32(offset) & 0x7fffffff;
  const fin = (flags & FLAG_FIN) !== 0;
  switch (type) {
    case FrameType.SYN_STREAM:
      need(10);
      return {
        frame: {
          type: "synStream",
          streamId: id(0),
          associatedTo: id(4),
          priority: payload[8] >>> 5,
          fin,
          unidirectional: (flags & FLAG_UNIDIRECTIONAL) !== 0,
          headerBlock: payload.subarray(10),
        },
        size,
      };
    case FrameType.SYN_REPLY:
    case FrameType.HEADERS:
      need(4);
      return {
        frame: {
          type: type === FrameType.SYN_REPLY ? "synReply" : "headers",
          streamId: id(0),
          fin,
          headerBlock: payload.subarray(4),
        },
        size,
      };
    case FrameType.RST_STREAM:
      need(8);
      return { frame: { type: "rstStream", streamId: id(0), status: p.getUint32(4) }, size };
    case FrameType.SETTINGS: {
      need(4);
      const count = p.getUint32(0);
      need(4 + 8 * count);
      const settings = Array.from({ length: count }, (_, i) => {
        const word = p.getUint32(4 + 8 * i);
        return { flags: word >>> 24, id: word & 0xffffff, value: p.getUint32(8 + 8 * i) };
      });
      return {
        frame: { type: "settings", clear: (flags & FLAG_CLEAR_SETTINGS) !== 0, settings },
        size,
      };
    }
    case FrameType.PING:
      need(4);
      return { frame: { type: "ping", id: p.getUint32(0) }, size };
    case FrameType.GOAWAY:
      need(8);
      return {
        frame: { type: "goAway", lastGoodStreamId: id(0), status: p.getUint32(4) },
        size,
      };
    case FrameType.WINDOW_UPDATE:
      need(8);
      return { frame: { type: "windowUpdate", streamId: id(0), delta: id(4) }, size };
    default:
      return { frame: { type: "unknown", frameType: type, flags, payload }, size };
  }
}

function header(length: number): Uint8Array {
  if (length > MAX_FRAME_LENGTH) {
    throw new FrameError(`frame payload of ${length} bytes exceeds ${MAX_FRAME_LENGTH}`);
  }
  const out = new Uint8Array(8 + length);
  new DataView(out.buffer).setUint32(4, length);
  return out;
}

function control(type: number, flags: number, length: number): Uint8Array {
  const out = header(length);
  const view = new DataView(out.buffer);
  view.setUint32(0, (0x80000000 | (SPDY_VERSION << 16) | type) >>> 0);
  out[4] = flags;
  return out;
}

/** Writes 32-bit words after the frame header. */
function words(out: Uint8Array, ...values: number[]): Uint8Array {
  const view = new DataView(out.buffer);
  values.forEach((v, i) => view.setUint32(8 + 4 * i, v >>> 0));
  return out;
}
