/**
 * What a request to the kubelet API's `/logs/` asks for, checked the way the kubelet checks it
 * (`pkg/kubelet/kubelet_server_journal.go`): the node log query's parameters (`query`,
 * `sinceTime`, `untilTime`, `tailLines`, `boot`, `pattern`), the `journalctl` command line it
 * becomes, the files a unit without journal entries may log to, paths under the log directory
 * (no `..`), and the shape of the file server's answers (directory listing, media type).
 *
 * Everything here is pure; {@link ./node_logs.ts} runs `journalctl` and reads the files.
 *
 * @module
 */
import { journalctlTime, LogOptionsError, parseRFC3339Micros } from "./logs.ts";

/** A node log query: which units or file, and the options that narrow the journal's answer. */
export interface NodeLogQuery {
  /** Units (`query=` values without `/`): `journalctl --unit=` each, at most four. */
  services: string[];
  /** A file under the log directory (`query=` values with `/`): at most one, without options. */
  files: string[];
  /** Only entries at or after this time, µs since the epoch (`sinceTime`, RFC 3339). */
  sinceMicros?: bigint;
  /** Only entries at or before this time, µs since the epoch (`untilTime`, RFC 3339). */
  untilMicros?: bigint;
  /** Only the last N entries, 0 to 100000 (`tailLines`). */
  tailLines?: number;
  /** Entries of this boot: 0 the current one, -1 the one before, ... (`boot`). */
  boot?: number;
  /** Only entries whose message matches this PCRE2 regular expression (`pattern`). */
  pattern?: string;
}

/** A `/logs/` request the kubelet would refuse; the message names the parameter and the rule. */
export class NodeLogQueryError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "NodeLogQueryError";
  }
}

/** Most lines `tailLines` may ask for. */
export const MAX_TAIL_LINES = 100_000;
/** Most units one query may name. */
export const MAX_SERVICES = 4;
/** Longest unit name accepted. */
export const MAX_SERVICE_LENGTH = 256;

/**
 * The characters a unit name may have (the kubelet's list): enough for `ssh`,
 * `getty@tty1.service` or `systemk.default.web.app.service`, and none that `journalctl` could
 * read as anything but a name.
 */
const SERVICE_NAME = /^[a-zA-Z0-9\-_.:@]+$/;

/** The parameters that narrow a journal query; none may come with a file. */
const OPTIONS = ["sinceTime", "untilTime", "tailLines", "boot", "pattern"] as const;

function invalid(field: string, value: unknown, why: string): string {
  return `${field}: Invalid value: ${JSON.stringify(value)}: ${why}`;
}

/** Go's `strconv.Atoi`: an optional sign and decimal digits, within a safe integer. */
function integer(text: string): number | undefined {
  const n = Number(text);
  return /^[+-]?\d+$/.test(text) && Number.isSafeInteger(n) ? n : undefined;
}

/**
 * Parses and checks the query of a `/logs/` request.
 *
 * @param query the request's query parameters.
 * @return the node log query; undefined when the request has none of its parameters (then
 *   `/logs/` serves the log directory's files).
 * @throws {NodeLogQueryError} listing every problem: an empty `query`, options without
 *   `query`, a unit name with other characters than letters, digits and `-_.:@` or longer than
 *   256, more than four units, units and a file together, more than one file, a file with
 *   options, a time that is not RFC 3339 or `untilTime` before `sinceTime`, `tailLines` outside
 *   0–100000, `boot` above 0, a NUL in `pattern`.
 * @example Usage
 * ```ts
 * import assert from "node:assert/strict";
 * const q = parseNodeLogQuery(new URLSearchParams("query=ssh&tailLines=5"));
 * assert.deepEqual(q?.services, ["ssh"]);
 * assert.equal(q?.tailLines, 5);
 * assert.equal(parseNodeLogQuery(new URLSearchParams("")), undefined);
 * ```
 */
export function parseNodeLogQuery(query: URLSearchParams): NodeLogQuery | undefined {
  const errors: string[] = [];
  const q: NodeLogQuery = { services: [], files: [] };
  const queries = query.getAll("query");
  for (const value of queries) {
    // A slash says a file is meant (the kubelet's hint); anything else names a unit.
    if (/[/\\]/.test(value)) q.files.push(value);
    else if (value.trim() !== "") q.services.push(value);
  }
  if (query.has("query") && q.files.length + q.services.length === 0) {
    errors.push(invalid("query", queries, "query cannot be empty"));
  }
  const time = (name: "sinceTime" | "untilTime") => {
    const value = query.get(name);
    if (!value) return undefined;
    try {
      return parseRFC3339Micros(value, name);
    } catch (e) {
      if (!(e instanceof LogOptionsError)) throw e;
      errors.push(invalid(name, value, "invalid time format, expected RFC 3339"));
    }
  };
  q.sinceMicros = time("sinceTime");
  q.untilMicros = time("untilTime");
  for (const name of ["tailLines", "boot"] as const) {
    const value = query.get(name);
    if (!value) continue;
    const n = integer(value);
    if (n === undefined) errors.push(invalid(name, value, "must be an integer"));
    else q[name] = n;
  }
  const pattern = query.get("pattern");
  if (pattern) q.pattern = pattern;
  if (errors.length === 0 && !query.has("query") && !OPTIONS.some((o) => query.get(o))) {
    return undefined;
  }
  // As in the kubelet: what does not parse is reported alone, before the rules between values.
  if (errors.length === 0) errors.push(...validate(q));
  if (errors.length === 1) throw new NodeLogQueryError(errors[0]);
  if (errors.length > 1) throw new NodeLogQueryError(`[${errors.join(", ")}]`);
  return q;
}

/** Whether the query narrows the journal: sinceTime, untilTime, tailLines, boot or pattern. */
export function hasOptions(q: NodeLogQuery): boolean {
  return q.sinceMicros !== undefined || q.untilMicros !== undefined ||
    q.tailLines !== undefined || q.boot !== undefined || q.pattern !== undefined;
}

function validate(q: NodeLogQuery): string[] {
  const errors: string[] = [];
  for (const s of q.services) {
    if (s.length > MAX_SERVICE_LENGTH) {
      errors.push(invalid("query", s, `must be no more than ${MAX_SERVICE_LENGTH} characters`));
    } else if (!SERVICE_NAME.test(s)) {
      errors.push(
        invalid("query", s, "a unit name may only have letters, digits and the characters -_.:@"),
      );
    }
  }
  if (q.services.length > MAX_SERVICES) {
    errors.push(`query: Too many: ${q.services.length}: must have at most ${MAX_SERVICES} items`);
  }
  if (q.files.length === 0 && q.services.length === 0) {
    errors.push("query: Required value: cannot be empty with options");
  } else if (q.files.length > 0 && q.services.length > 0) {
    errors.push(invalid("query", [...q.files, ...q.services], "cannot specify a file and service"));
  } else if (q.files.length > 1) {
    errors.push(invalid("query", q.files, "cannot specify more than one file"));
  } else if (q.files.length === 1 && hasOptions(q)) {
    errors.push(invalid("query", q.files, "cannot specify file with options"));
  } else if (q.files.length === 1) {
    try {
      logPathSegments(q.files[0]);
    } catch (e) {
      if (!(e instanceof NodeLogQueryError)) throw e;
      errors.push(invalid("query", q.files, e.message));
    }
  }
  if (
    q.sinceMicros !== undefined && q.untilMicros !== undefined && q.sinceMicros > q.untilMicros
  ) {
    errors.push("untilTime: Invalid value: must be after `sinceTime`");
  }
  if (q.boot !== undefined && q.boot > 0) {
    errors.push(invalid("boot", q.boot, "must be less than 1"));
  }
  if (q.tailLines !== undefined && (q.tailLines < 0 || q.tailLines > MAX_TAIL_LINES)) {
    errors.push(
      invalid("tailLines", q.tailLines, `must be between 0 and ${MAX_TAIL_LINES}, inclusive`),
    );
  }
  if (q.pattern?.includes("\0")) errors.push(invalid("pattern", q.pattern, "must not contain NUL"));
  return errors;
}

/**
 * The `journalctl` arguments of a query for `services`: the kubelet's command line (UTC,
 * `short-precise` output), with the times in journalctl's exact `@seconds` form and every value
 * attached to its option, so none can be read as an option of its own.
 *
 * @example Usage
 * ```ts
 * import assert from "node:assert/strict";
 * const args = nodeLogJournalctlArgs({ services: ["ssh"], files: [], tailLines: 5 }, ["ssh"]);
 * assert.deepEqual(args.slice(-3), ["--lines=5", "--unit=ssh", "--output=short-precise"]);
 * ```
 */
export function nodeLogJournalctlArgs(q: NodeLogQuery, services: readonly string[]): string[] {
  const args = ["--utc", "--no-pager"];
  if (q.sinceMicros !== undefined) args.push(`--since=${journalctlTime(q.sinceMicros)}`);
  if (q.untilMicros !== undefined) args.push(`--until=${journalctlTime(q.untilMicros)}`);
  if (q.tailLines !== undefined) args.push("--pager-end", `--lines=${q.tailLines}`);
  for (const service of services) args.push(`--unit=${service}`);
  if (q.pattern !== undefined) args.push(`--grep=${q.pattern}`);
  if (q.boot !== undefined) args.push(`--boot=${q.boot}`);
  args.push("--output=short-precise");
  return args;
}

/**
 * Whether the journal has entries of `service`, given the unit names it has entries of
 * (`journalctl --field=_SYSTEMD_UNIT`); `--unit=ssh` means `ssh.service`.
 */
export function logsToJournal(service: string, journalUnits: ReadonlySet<string>): boolean {
  return journalUnits.has(service) || journalUnits.has(`${service}.service`);
}

/**
 * Where a unit without journal entries may log under the log directory, in the kubelet's
 * order: `<service>`, `<service>.log`, `<service>/<service>.log`.
 */
export function serviceLogFiles(service: string): string[][] {
  return [[service], [`${service}.log`], [service, `${service}.log`]];
}

/**
 * The path segments of `path` below the log directory: a `/logs/<path>` URL path (decoded) or
 * a `query=` file. Empty segments and `.` are dropped; `..` is refused rather than resolved,
 * so no spelling of a path leaves the directory (symlinks are the reader's to check).
 *
 * @throws {NodeLogQueryError} on a `..` segment or a NUL character.
 * @example Usage
 * ```ts
 * import assert from "node:assert/strict";
 * assert.deepEqual(logPathSegments("/apt//history.log"), ["apt", "history.log"]);
 * assert.throws(() => logPathSegments("apt/../../etc/shadow"));
 * ```
 */
export function logPathSegments(path: string): string[] {
  if (path.includes("\0")) throw new NodeLogQueryError(`path ${JSON.stringify(path)} has a NUL`);
  const segments = path.split("/").filter((s) => s !== "" && s !== ".");
  if (segments.includes("..")) {
    throw new NodeLogQueryError(
      `path ${
        JSON.stringify(path)
      } has a ".." segment; only paths under the log directory are served`,
    );
  }
  return segments;
}

/** One entry of a directory listing. */
export interface ListingEntry {
  name: string;
  isDirectory: boolean;
}

const HTML_ESCAPES: Record<string, string> = {
  "&": "&amp;",
  "<": "&lt;",
  ">": "&gt;",
  '"': "&#34;",
  "'": "&#39;",
};

/**
 * The directory listing the kubelet's `/logs/` file server (Go's `http.FileServer`) answers:
 * entries sorted by name, directories with a trailing `/`, relative links.
 */
export function directoryListing(entries: readonly ListingEntry[]): string {
  const lines = [...entries].sort((a, b) => a.name < b.name ? -1 : a.name > b.name ? 1 : 0)
    .map(({ name, isDirectory }) => {
      const shown = isDirectory ? `${name}/` : name;
      const href = encodeURIComponent(name) + (isDirectory ? "/" : "");
      return `<a href="${href}">${shown.replace(/[&<>"']/g, (c) => HTML_ESCAPES[c])}</a>\n`;
    });
  return `<!doctype html>\n<meta name="viewport" content="width=device-width">\n<pre>\n` +
    `${lines.join("")}</pre>\n`;
}

/**
 * The media type of a file from its first bytes: text (UTF-8, no NUL) or binary, as Go's
 * content sniffing tells log files from journal files and `wtmp`.
 */
export function sniffContentType(head: Uint8Array): string {
  if (head.includes(0)) return "application/octet-stream";
  try {
    // A multi-byte character cut at the end of the sample is still text.
    new TextDecoder("utf-8", { fatal: true }).decode(head, { stream: true });
    return "text/plain; charset=utf-8";
  } catch {
    return "application/octet-stream";
  }
}
