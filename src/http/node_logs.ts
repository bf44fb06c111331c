/**
 * The kubelet API's `/logs/`, as the kubelet serves it: the node's log directory (`/var/log`)
 * as files and directory listings, and with `--enable-system-log-query` the node log query,
 * `/logs/?query=<unit>&sinceTime=&untilTime=&tailLines=&boot=&pattern=`, answered from
 * journald by `journalctl` (a unit without journal entries falls back to
 * `/var/log/<unit>[.log]`), or `?query=<path>` for one file. Without the flag the query
 * parameters are ignored, as by the kubelet's plain file server.
 *
 * Nothing outside the log directory is ever read: `..` is refused, every path is resolved and
 * must stay inside the directory (a symlink out is refused), and the file opened must be the
 * file checked.
 *
 * @module
 */
import {
  directoryListing,
  hasOptions,
  logPathSegments,
  logsToJournal,
  nodeLogJournalctlArgs,
  type NodeLogQuery,
  NodeLogQueryError,
  parseNodeLogQuery,
  serviceLogFiles,
  sniffContentType,
} from "./node_log_query.ts";
import { TEXT, text } from "./responses.ts";
import { runCommand, spawnProcess } from "../process/mod.ts";

/** Options of {@link NodeLogs}. */
export interface NodeLogsOptions {
  /**
   * `--enable-system-log-query`: answer `?query=` from the journal. Without it `/logs/` only
   * serves files and ignores query parameters.
   */
  query: boolean;
  /** The directory served; default `/var/log`. */
  logDir?: string;
  /** How `journalctl` is run: the command line before its arguments; default `journalctl`. */
  journalctl?: readonly string[];
}

/** A path under the log directory, resolved and checked. */
interface Resolved {
  /** The path as the user sees it: `/var/log/<segments>`. */
  shown: string;
  real: string;
  info: Deno.FileInfo;
}

/** Serves `/logs/`; see the module doc. */
export class NodeLogs {
  readonly #query: boolean;
  readonly #dir: string;
  readonly #command: readonly string[];

  /** @param options whether to answer queries; the directory and `journalctl` to use. */
  constructor(options: NodeLogsOptions) {
    this.#query = options.query;
    this.#dir = (options.logDir ?? "/var/log").replace(/\/+$/, "");
    this.#command = options.journalctl ?? ["journalctl"];
  }

  /**
   * Answers a request for `/logs<path>`.
   *
   * @param path the URL path after `/logs`, still percent-encoded (`/`, `/apt/history.log`).
   * @param params the query parameters.
   */
  async serve(path: string, params: URLSearchParams): Promise<Response> {
    let decoded: string;
    try {
      decoded = decodeURIComponent(path);
    } catch {
      return text(400, `invalid URL path /logs${path}`);
    }
    let query: NodeLogQuery | undefined;
    try {
      query = this.#query ? parseNodeLogQuery(params) : undefined;
    } catch (e) {
      if (e instanceof NodeLogQueryError) return text(400, e.message);
      throw e;
    }
    if (!query) return await this.#files(decoded, false);
    if (decoded !== "" && decoded !== "/") {
      return text(400, `path not allowed in query mode: /logs${decoded} (ask /logs/?query=...)`);
    }
    if (query.services.length > 0) return await this.#services(query);
    return await this.#files(query.files[0], true);
  }

  /** A file or directory listing; `fromQuery`: named by `?query=`, which must name a file. */
  async #files(path: string, fromQuery: boolean): Promise<Response> {
    let segments: string[];
    try {
      segments = logPathSegments(path);
    } catch (e) {
      if (e instanceof NodeLogQueryError) return text(400, e.message);
      throw e;
    }
    const resolved = await this.#resolve(segments);
    if (resolved instanceof Response) return resolved;
    const { shown, real, info } = resolved;
    if (info.isDirectory) {
      if (fromQuery) {
        return text(400, `query: ${shown} is a directory; /logs/${segments.join("/")}/ lists it`);
      }
      // Relative links in the listing need the trailing slash (Go's FileServer redirects too).
      if (!path.endsWith("/")) {
        return new Response(null, {
          status: 301,
          headers: { location: `${segments.at(-1) ?? "logs"}/` },
        });
      }
      const entries = [];
      for await (const e of Deno.readDir(real)) {
        entries.push({ name: e.name, isDirectory: e.isDirectory });
      }
      return new Response(directoryListing(entries), {
        headers: { "content-type": "text/html; charset=utf-8" },
      });
    }
    const file = await this.#open(resolved);
    if (file instanceof Response) return file;
    const head = new Uint8Array(512);
    const n = await file.read(head) ?? 0;
    return new Response(prepend(head.subarray(0, n), file), {
      headers: { "content-type": sniffContentType(head.subarray(0, n)) },
    });
  }

  /**
   * Resolves `segments` under the log directory, following symlinks, and checks the result is
   * still inside it.
   *
   * @return the path and what it is; or the answer when it does not exist or leads outside.
   */
  async #resolve(segments: string[]): Promise<Resolved | Response> {
    const shown = [this.#dir, ...segments].join("/");
    const root = await Deno.realPath(this.#dir);
    let real: string;
    try {
      real = await Deno.realPath(shown);
    } catch (e) {
      if (e instanceof Deno.errors.NotFound) return text(404, `${shown}: no such file`);
      throw e;
    }
    if (real !== root && !real.startsWith(`${root}/`)) {
      return text(403, `refusing ${shown}: it leads outside ${this.#dir} (a symlink)`);
    }
    return { shown, real, info: await Deno.stat(real) };
  }

  /**
   * Opens a resolved regular file, and makes sure the file opened is the one checked: had a
   * directory on the way been swapped for a symlink meanwhile, the inode would differ.
   */
  async #open({ shown, real, info }: Resolved): Promise<Deno.FsFile | Response> {
    if (!info.isFile) return text(403, `refusing ${shown}: not a regular file`);
    const file = await Deno.open(real, { read: true });
    const opened = await file.stat();
    if (opened.ino !== info.ino || opened.dev !== info.dev) {
      file.close();
      return text(403, `refusing ${shown}: it changed while being opened`);
    }
    return file;
  }

  /**
   * The logs of the query's units: from the journal for units it has entries of, then the
   * log files of the others (the kubelet's fallback).
   */
  async #services(q: NodeLogQuery): Promise<Response> {
    const units = await this.#journalUnits();
    const native = q.services.filter((s) => logsToJournal(s, units));
    const others = q.services.filter((s) => !native.includes(s));
    if (others.length > 0 && hasOptions(q)) {
      return text(
        400,
        `query resolved to log files for [${others.join(" ")}] (the journal has no entries of ` +
          `${others.length > 1 ? "these units" : "this unit"}): sinceTime, untilTime, ` +
          `tailLines, boot and pattern apply to journal entries only; try without them`,
      );
    }
    const files = await Promise.all(others.map((s) => this.#serviceFile(s)));
    if (native.length === 0 && files.every((f) => f === undefined)) {
      return text(
        404,
        `no journal entries of ${q.services.join(", ")}, and no log file for ` +
          `${q.services.length > 1 ? "them" : "it"} under ${this.#dir}`,
      );
    }
    const parts: (() => Promise<ReadableStream<Uint8Array>>)[] = [];
    if (native.length > 0) {
      const journal = await this.#runJournalctl(nodeLogJournalctlArgs(q, native));
      if (journal instanceof Response) return journal;
      parts.push(() => Promise.resolve(journal));
    }
    others.forEach((service, i) => {
      const found = files[i];
      parts.push(async () => {
        const file = found && await this.#open(found);
        if (file && !(file instanceof Response)) return file.readable;
        return bytes(`\nlog not found for ${service}\n`);
      });
    });
    return new Response(concat(parts), { headers: { "content-type": TEXT } });
  }

  /** The first of a unit's log files that exists: `<s>`, `<s>.log`, `<s>/<s>.log`. */
  async #serviceFile(service: string): Promise<Resolved | undefined> {
    for (const segments of serviceLogFiles(service)) {
      const resolved = await this.#resolve(segments);
      if (!(resolved instanceof Response) && resolved.info.isFile) return resolved;
    }
    return undefined;
  }

  /** The units the journal has entries of. */
  async #journalUnits(): Promise<Set<string>> {
    const out = await runCommand([...this.#command, "--field=_SYSTEMD_UNIT"]);
    if (!out.success) throw new Error(`journalctl --field=_SYSTEMD_UNIT: ${out.stderr}`);
    return new Set(out.stdout.split("\n").filter((u) => u !== ""));
  }

  /**
   * Runs `journalctl` and streams its output, killing it when the client goes away. When it
   * fails before printing anything (a pattern PCRE2 refuses, a boot the journal does not
   * have), the answer is 400 with its message.
   */
  async #runJournalctl(args: string[]): Promise<ReadableStream<Uint8Array> | Response> {
    const stop = new AbortController();
    const child = spawnProcess([...this.#command, ...args], { signal: stop.signal });
    const stderr = new Response(child.stderr).text().catch(() => "");
    const reader = child.stdout.getReader();
    const first = await reader.read();
    if (first.done) {
      const status = await child.status;
      if (!status.success) return text(400, `journalctl: ${(await stderr).trim()}`);
      return bytes("");
    }
    return new ReadableStream<Uint8Array>({
      start(controller) {
        controller.enqueue(first.value);
      },
      async pull(controller) {
        const next = await reader.read();
        if (!next.done) {
          controller.enqueue(next.value);
          return;
        }
        // Failing midway, journalctl's message ends the answer, as the kubelet shows it.
        if (!(await child.status).success) {
          const message = (await stderr).trim();
          if (message) controller.enqueue(new TextEncoder().encode(`\n${message}\n`));
        }
        controller.close();
      },
      cancel() {
        stop.abort();
        reader.cancel().catch(() => {});
      },
    }, { highWaterMark: 0 });
  }
}

function bytes(s: string): ReadableStream<Uint8Array> {
  return new Response(s).body!;
}

/** `head`, then the rest of `file`; the file is closed when read to the end or cancelled. */
function prepend(head: Uint8Array, file: Deno.FsFile): ReadableStream<Uint8Array> {
  const rest = file.readable.getReader();
  let sent = false;
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      if (!sent) {
        sent = true;
        if (head.length > 0) {
          controller.enqueue(head);
          return;
        }
      }
      const { value, done } = await rest.read();
      if (done) controller.close();
      else controller.enqueue(value);
    },
    cancel() {
      rest.cancel().catch(() => {});
    },
  }, { highWaterMark: 0 });
}

/** The streams `parts` make, one after the other; each is made when the one before has ended. */
function concat(parts: (() => Promise<ReadableStream<Uint8Array>>)[]): ReadableStream<Uint8Array> {
  let index = 0;
  let current: ReadableStreamDefaultReader<Uint8Array> | undefined;
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      for (;;) {
        if (!current) {
          if (index >= parts.length) {
            controller.close();
            return;
          }
          current = (await parts[index++]()).getReader();
        }
        const { value, done } = await current.read();
        if (!done) {
          controller.enqueue(value);
          return;
        }
        current = undefined;
      }
    },
    cancel() {
      current?.cancel().catch(() => {});
    },
  }, { highWaterMark: 0 });
}
