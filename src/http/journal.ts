/**
 * Reading container logs from journald with `journalctl`: finding the run (invocation) to show
 * and streaming its entries as kubelet-style log lines, with backpressure, and with
 * `journalctl` killed as soon as the reader goes away or `limitBytes` is reached.
 *
 * @module
 */
import {
  formatLogLine,
  journalctlArgs,
  journalctlTime,
  type JournalEntry,
  type LogOptions,
  parseJournalLine,
} from "./logs.ts";
import { spawnProcess } from "../process/mod.ts";

/** How `journalctl` is run: the command line before its arguments. */
export interface JournalOptions {
  /** Default `["journalctl"]`; tests run it inside a booted test systemd through `nsenter`. */
  command?: readonly string[];
}

/** Entries of a running `journalctl --output=json`, and a way to stop it early. */
interface JournalProcess {
  entries: AsyncIterator<JournalEntry>;
  kill(): void;
}

/** Reads container logs from journald; see the module doc. */
export class Journal {
  readonly #command: readonly string[];

  constructor(options: JournalOptions = {}) {
    this.#command = options.command ?? ["journalctl"];
  }

  /**
   * The run to show: the current one (the stream of the entries since systemd's
   * `ExecMainStartTimestamp` of the unit, `startedMicros`), or the one before it. Only entries
   * since the pod's creation are read, newest first, so a run of an earlier pod with the same
   * name is never chosen.
   *
   * @return the run's stream id; `null` for a current run that has written nothing yet;
   *   undefined when there is no such run.
   */
  async findRun(
    unit: string,
    opts: { startedMicros: bigint; previous: boolean; sinceMicros?: bigint },
  ): Promise<string | null | undefined> {
    const args = [
      "--no-pager",
      "--quiet",
      "--reverse",
      "--output=json",
      "--output-fields=_STREAM_ID",
    ];
    if (opts.sinceMicros !== undefined) args.push(`--since=${journalctlTime(opts.sinceMicros)}`);
    if (opts.previous && opts.startedMicros > 0n) {
      // Skips the current run's entries, however many: the newest entry left is the previous run's.
      args.push(`--until=${journalctlTime(opts.startedMicros - 1n)}`);
    }
    args.push(`_SYSTEMD_UNIT=${unit}`);
    const journal = this.#spawn(args);
    try {
      return await chooseRun(iterable(journal.entries), opts);
    } finally {
      journal.kill();
    }
  }

  /**
   * The log of one run as a byte stream of kubelet-style lines. Lines are produced only as the
   * consumer reads (a slow client slows `journalctl` down instead of filling memory), and
   * cancelling the stream kills `journalctl` (a `follow` ends when the client goes away).
   */
  read(unit: string, streamID: string, options: LogOptions): ReadableStream<Uint8Array> {
    const journal = this.#spawn(journalctlArgs({ unit, streamID }, options));
    let left = options.limitBytes ?? Infinity;
    return new ReadableStream<Uint8Array>({
      async pull(controller) {
        const next = await journal.entries.next();
        if (next.done) {
          controller.close();
          return;
        }
        const line = formatLogLine(next.value, options.timestamps);
        const chunk = line.length > left ? line.subarray(0, left) : line;
        left -= chunk.length;
        controller.enqueue(chunk);
        if (left <= 0) {
          journal.kill();
          controller.close();
        }
      },
      cancel() {
        journal.kill();
      },
    }, { highWaterMark: 0 });
  }

  #spawn(args: string[]): JournalProcess {
    const stop = new AbortController();
    const child = spawnProcess([...this.#command, ...args], { signal: stop.signal });
    const stderr = new Response(child.stderr).text().catch(() => "");
    const lines = child.stdout
      .pipeThrough(new TextDecoderStream())
      .pipeThrough(splitLines())
      .getReader();
    const entries: AsyncIterator<JournalEntry> = {
      async next() {
        for (;;) {
          const { value, done } = await lines.read().catch((e) => {
            if (stop.signal.aborted) return { value: undefined, done: true as const };
            throw e;
          });
          if (done) {
            const status = await child.status;
            if (!stop.signal.aborted && !status.success) {
              throw new Error(`journalctl failed (exit ${status.code}): ${(await stderr).trim()}`);
            }
            return { value: undefined, done: true };
          }
          const entry = parseJournalLine(value);
          if (entry) return { value: entry, done: false };
        }
      },
    };
    return {
      entries,
      kill() {
        stop.abort();
        lines.cancel().catch(() => {});
      },
    };
  }
}

/**
 * Picks a run from the unit's entries, newest first. The current run's entries are those at or
 * after `startedMicros` (when systemd knows it: 0 means unknown, and then the newest run is the
 * current one). The previous run is the newest other run before that.
 *
 * @return the stream id; `null` when the current run has no entries yet; undefined when the
 *   asked-for run does not exist.
 */
export async function chooseRun(
  newestFirst: AsyncIterable<Pick<JournalEntry, "realtimeMicros" | "streamID">>,
  opts: { startedMicros: bigint; previous: boolean },
): Promise<string | null | undefined> {
  const known = opts.startedMicros > 0n;
  let current: string | undefined;
  for await (const { realtimeMicros, streamID } of newestFirst) {
    if (!streamID) continue;
    const ofCurrentRun = known ? realtimeMicros >= opts.startedMicros : current === undefined;
    if (ofCurrentRun) {
      if (!opts.previous) return streamID;
      current = streamID;
    } else if (streamID !== current) {
      return opts.previous ? streamID : null;
    }
  }
  if (opts.previous) return undefined;
  return known ? null : undefined;
}

function iterable<T>(iterator: AsyncIterator<T>): AsyncIterable<T> {
  return { [Symbol.asyncIterator]: () => iterator };
}

/** Splits text into lines (without the newline); a last line without newline is kept. */
function splitLines(): TransformStream<string, string> {
  let rest = "";
  return new TransformStream({
    transform(chunk, controller) {
      const parts = (rest + chunk).split("\n");
      rest = parts.pop()!;
      for (const part of parts) controller.enqueue(part);
    },
    flush(controller) {
      if (rest) controller.enqueue(rest);
    },
  });
}

/** Options of {@link followUntilRunEnds}. */
export interface FollowEndOptions {
  /** How often to ask whether the run is over (ms); default 1 s. */
  pollMs?: number;
  /** Once it is over, how long a read may wait for the last lines before the end (ms); default 1 s. */
  idleMs?: number;
}

/**
 * Ends a followed log once its run is over, as the kubelet ends `logs -f` when the container
 * exits: `journalctl --follow` would wait forever for a stream that is closed. After `ended()`
 * says so, lines still arriving are passed on; the first read that waits longer than `idleMs`
 * ends the body and cancels `body` (which stops `journalctl`).
 */
export function followUntilRunEnds(
  body: ReadableStream<Uint8Array>,
  ended: () => Promise<boolean>,
  options: FollowEndOptions = {},
): ReadableStream<Uint8Array> {
  const reader = body.getReader();
  let over = false;
  let stopped = false;
  const poller = setInterval(async () => {
    if (!over && await ended().catch(() => false)) over = true;
  }, options.pollMs ?? 1000);
  const finish = () => {
    stopped = true;
    clearInterval(poller);
    reader.cancel().catch(() => {});
  };
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      const next = reader.read();
      for (;;) {
        let timer: ReturnType<typeof setTimeout> | undefined;
        const idle = new Promise<"idle">((resolve) => {
          timer = setTimeout(() => resolve("idle"), options.idleMs ?? 1000);
        });
        const result = await Promise.race([next, idle]);
        clearTimeout(timer);
        if (result !== "idle") {
          if (result.done) {
            finish();
            controller.close();
          } else {
            controller.enqueue(result.value);
          }
          return;
        }
        if (over && !stopped) {
          finish();
          controller.close();
          return;
        }
      }
    },
    cancel() {
      finish();
    },
  }, { highWaterMark: 0 });
}

/** Options of {@link whenRunWrites}. */
export interface WhenRunWritesOptions {
  /** Whether the run is over. */
  ended(): Promise<boolean>;
  /** How often to ask `find` (ms); default 250. */
  pollMs?: number;
}

/**
 * The followed log of a run that has written nothing yet: waits for its first line (asking
 * `find` every `pollMs`), then streams it with `read`. Ends empty when `ended()` says the run
 * is over and it still wrote nothing.
 */
export function whenRunWrites(
  find: () => Promise<string | null | undefined>,
  read: (stream: string) => ReadableStream<Uint8Array>,
  options: WhenRunWritesOptions,
): ReadableStream<Uint8Array> {
  const { ended, pollMs = 250 } = options;
  let inner: ReadableStreamDefaultReader<Uint8Array> | undefined;
  let cancelled = false;
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      while (!inner) {
        if (cancelled) return;
        const over = await ended();
        // Asked after `ended`, so lines written just before the end are still found.
        const stream = await find();
        if (typeof stream === "string") {
          inner = read(stream).getReader();
        } else if (over) {
          controller.close();
          return;
        } else {
          await new Promise((resolve) => setTimeout(resolve, pollMs));
        }
      }
      const { value, done } = await inner.read();
      if (done) controller.close();
      else controller.enqueue(value);
    },
    cancel() {
      cancelled = true;
      inner?.cancel().catch(() => {});
    },
  }, { highWaterMark: 0 });
}
