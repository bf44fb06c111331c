/**
 * Container logs the way the kubelet serves them (`/containerLogs/{ns}/{pod}/{container}`), read
 * from journald: the query parameters of `kubectl logs`, the `journalctl` command line that
 * selects exactly one run of one container, and the formatting of its JSON entries.
 *
 * Everything here is pure; {@link ../http/journal.ts} runs `journalctl`.
 *
 * @module
 */

/** What `kubectl logs` asks for (the query parameters of v1.PodLogOptions). */
export interface LogOptions {
  /** Follow the log as it grows (`follow=true`). */
  follow: boolean;
  /** The container's previous run instead of its current one (`previous=true`). */
  previous: boolean;
  /** Prefix each line with its RFC 3339 time, nanosecond precision (`timestamps=true`). */
  timestamps: boolean;
  /** Only the last N lines (`tailLines`). */
  tailLines?: number;
  /** Only lines at or after this time, in µs since the epoch (`sinceSeconds` or `sinceTime`). */
  sinceMicros?: bigint;
  /** Stop after this many bytes (`limitBytes`). */
  limitBytes?: number;
}

/** A query the kubelet would refuse with 400 Bad Request; the message says which parameter. */
export class LogOptionsError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "LogOptionsError";
  }
}

/**
 * Parses the query of a `/containerLogs` request.
 *
 * @param query the request's query parameters.
 * @param nowMicros the current time in µs since the epoch (for `sinceSeconds`).
 * @return the options.
 * @throws {LogOptionsError} on a malformed value, or `sinceSeconds` together with `sinceTime`.
 * @example Usage
 * ```ts
 * import assert from "node:assert/strict";
 * const o = parseLogOptions(new URLSearchParams("tailLines=5&follow=true"), 0n);
 * assert.equal(o.tailLines, 5);
 * assert.equal(o.follow, true);
 * ```
 */
export function parseLogOptions(query: URLSearchParams, nowMicros: bigint): LogOptions {
  const options: LogOptions = {
    follow: flag(query, "follow"),
    previous: flag(query, "previous"),
    timestamps: flag(query, "timestamps"),
    tailLines: count(query, "tailLines", 0),
    limitBytes: count(query, "limitBytes", 1),
  };
  const sinceSeconds = count(query, "sinceSeconds", 1);
  const sinceTime = query.get("sinceTime");
  if (sinceSeconds !== undefined && sinceTime !== null) {
    throw new LogOptionsError("at most one of sinceSeconds or sinceTime may be specified");
  }
  if (sinceSeconds !== undefined) {
    options.sinceMicros = nowMicros - BigInt(sinceSeconds) * 1_000_000n;
  } else if (sinceTime !== null) {
    options.sinceMicros = parseRFC3339Micros(sinceTime);
  }
  return options;
}

function flag(query: URLSearchParams, name: string): boolean {
  const value = query.get(name);
  if (value === null || value === "" || value === "false" || value === "0") return false;
  if (value === "true" || value === "1") return true;
  throw new LogOptionsError(`${name} must be true or false, not "${value}"`);
}

function count(query: URLSearchParams, name: string, min: number): number | undefined {
  const value = query.get(name);
  if (value === null) return undefined;
  const n = Number(value);
  if (!/^\d+$/.test(value) || !Number.isSafeInteger(n) || n < min) {
    throw new LogOptionsError(`${name} must be an integer of at least ${min}, not "${value}"`);
  }
  return n;
}

const RFC3339 = /^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(?:\.(\d{1,9}))?(Z|[+-]\d{2}:\d{2})$/i;

/**
 * An RFC 3339 time (fractions up to nanoseconds) as µs since the epoch; sub-µs digits are cut.
 *
 * @param text the time.
 * @param parameter the query parameter it came from, for the error (default `sinceTime`).
 * @throws {LogOptionsError} when `text` is not RFC 3339.
 */
export function parseRFC3339Micros(text: string, parameter = "sinceTime"): bigint {
  const m = RFC3339.exec(text);
  const ms = m ? Date.parse(`${m[1]}${m[3].toUpperCase()}`) : NaN;
  if (!m || Number.isNaN(ms)) {
    throw new LogOptionsError(`${parameter} must be an RFC 3339 time, not "${text}"`);
  }
  const micros = BigInt((m[2] ?? "").padEnd(6, "0").slice(0, 6));
  return BigInt(ms) * 1000n + micros;
}

/**
 * RFC 3339 with exactly nine fraction digits in UTC, as the kubelet prefixes log lines
 * (`2026-11-25T11:00:00.123456000Z`); journald keeps µs, so the last three digits are zero.
 */
export function formatTimestamp(micros: bigint): string {
  const seconds = micros / 1_000_000n;
  const date = new Date(Number(seconds) * 1000).toISOString().slice(0, 19);
  return `${date}.${(micros % 1_000_000n).toString().padStart(6, "0")}000Z`;
}

/** Which journal entries make up one run of one container. */
export interface JournalSelection {
  /** The container's unit (`systemk.<ns>.<pod>.<container>.service`). */
  unit: string;
  /**
   * The run: journald's `_STREAM_ID` of the run's stdout/stderr stream. Each start of the unit
   * opens a new stream, and unlike `_SYSTEMD_INVOCATION_ID` it is on every entry: journald
   * reads the invocation id from the process's cgroup, which a process that exits at once no
   * longer has (measured: a crash-looping container's lines then carry no invocation id).
   */
  streamID: string;
}

/** Seconds since the epoch with µs fraction, in the `@` form `journalctl --since` accepts. */
export function journalctlTime(micros: bigint): string {
  const frac = (micros % 1_000_000n).toString().padStart(6, "0");
  return `@${micros / 1_000_000n}.${frac}`;
}

/**
 * The `journalctl` arguments that print one run's entries as JSON lines. Only the container's
 * own output is selected (`_SYSTEMD_UNIT=`, not `-u`, which would add systemd's messages about
 * the unit), and only this run (`_STREAM_ID=`), so an earlier pod of the same name, whose unit
 * had the same name, never shows.
 *
 * @example Usage
 * ```ts
 * import assert from "node:assert/strict";
 * const args = journalctlArgs({ unit: "u.service", streamID: "ab" }, {
 *   follow: false, previous: false, timestamps: false, tailLines: 3,
 * });
 * assert.ok(args.includes("--lines=3"));
 * ```
 */
export function journalctlArgs(selection: JournalSelection, options: LogOptions): string[] {
  const args = [
    "--no-pager",
    "--quiet",
    "--all",
    "--output=json",
    "--output-fields=MESSAGE",
    // Without it `--follow` starts with the last 10 entries.
    `--lines=${options.tailLines ?? "all"}`,
  ];
  if (options.follow) args.push("--follow");
  // journalctl rejects RFC 3339 ("Failed to parse timestamp"); "@<seconds>" is its own form.
  if (options.sinceMicros !== undefined) {
    args.push(`--since=${journalctlTime(options.sinceMicros)}`);
  }
  args.push(`_SYSTEMD_UNIT=${selection.unit}`, `_STREAM_ID=${selection.streamID}`);
  return args;
}

/** One journal entry as `journalctl --output=json` prints it (the fields systemk asks for). */
export interface JournalEntry {
  /** µs since the epoch. */
  realtimeMicros: bigint;
  /** The message bytes (journald stores non-UTF-8 output as a byte array). */
  message: Uint8Array;
  /** journald's id of the stdout stream (the run) that wrote it, when asked for. */
  streamID?: string;
}

const encoder = new TextEncoder();

/**
 * Parses one line of `journalctl --output=json`.
 *
 * @return the entry, or undefined for a line that is not an entry.
 */
export function parseJournalLine(line: string): JournalEntry | undefined {
  if (!line.startsWith("{")) return undefined;
  const raw = JSON.parse(line) as Record<string, unknown>;
  const realtime = raw.__REALTIME_TIMESTAMP;
  if (typeof realtime !== "string") return undefined;
  const message = raw.MESSAGE;
  const stream = raw._STREAM_ID;
  return {
    realtimeMicros: BigInt(realtime),
    message: typeof message === "string"
      ? encoder.encode(message)
      : Array.isArray(message)
      ? Uint8Array.from(message as number[])
      : new Uint8Array(),
    streamID: typeof stream === "string" ? stream : undefined,
  };
}

/** One log line as the kubelet sends it: optional timestamp, the message, a newline. */
export function formatLogLine(entry: JournalEntry, timestamps: boolean): Uint8Array {
  const prefix = timestamps ? encoder.encode(`${formatTimestamp(entry.realtimeMicros)} `) : [];
  const line = new Uint8Array(prefix.length + entry.message.length + 1);
  line.set(prefix);
  line.set(entry.message, prefix.length);
  line[line.length - 1] = 0x0a;
  return line;
}
