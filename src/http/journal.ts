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
   * The invocation id of the run to show. `current` is systemd's InvocationID of the unit (empty
   * once the unit is gone); the journal is read backwards from the newest entry, only entries
   * since the pod's creation, so a run of an earlier pod with the same name is never chosen.
   *
   * @return the run's id, or undefined when the container has no such run with output.
   */
  async findRun(
    unit: string,
    opts: { current: string; previous: boolean; sinceMicros?: bigint },
  ): Promise<string | undefined> {
    if (opts.current && !opts.previous) return opts.current;
    const args = [
      "--no-pager",
      "--quiet",
      "--reverse",
      "--output=json",
      "--output-fields=_SYSTEMD_INVOCATION_ID",
    ];
    if (opts.sinceMicros !== undefined) args.push(`--since=${journalctlTime(opts.sinceMicros)}`);
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
  read(unit: string, invocationID: string, options: LogOptions): ReadableStream<Uint8Array> {
    const journal = this.#spawn(journalctlArgs({ unit, invocationID }, options));
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
    const child = new Deno.Command(this.#command[0], {
      args: [...this.#command.slice(1), ...args],
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    let killed = false;
    const kill = () => {
      if (killed) return;
      killed = true;
      try {
        child.kill("SIGTERM");
      } catch {
        // Already exited.
      }
    };
    const stderr = new Response(child.stderr).text().catch(() => "");
    const lines = child.stdout
      .pipeThrough(new TextDecoderStream())
      .pipeThrough(splitLines())
      .getReader();
    const entries: AsyncIterator<JournalEntry> = {
      async next() {
        for (;;) {
          const { value, done } = await lines.read().catch((e) => {
            if (killed) return { value: undefined, done: true as const };
            throw e;
          });
          if (done) {
            const status = await child.status;
            if (!killed && !status.success) {
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
        kill();
        lines.cancel().catch(() => {});
      },
    };
  }
}

/**
 * Picks a run from invocation ids in newest-first order. The current run is systemd's `current`
 * or else the newest seen. The previous run is the first other id after the current one; when
 * the current run has written nothing yet (its id never shows), the newest id is the previous.
 */
export async function chooseRun(
  newestFirst: AsyncIterable<{ invocationID?: string }>,
  opts: { current: string; previous: boolean },
): Promise<string | undefined> {
  let current = opts.current;
  let seenCurrent = false;
  let newestOther: string | undefined;
  for await (const { invocationID } of newestFirst) {
    if (!invocationID) continue;
    if (!current) {
      if (!opts.previous) return invocationID;
      current = invocationID;
      seenCurrent = true;
    } else if (invocationID === current) {
      seenCurrent = true;
    } else if (seenCurrent) {
      return opts.previous ? invocationID : current;
    } else {
      newestOther ??= invocationID;
    }
  }
  if (!opts.previous) return current || undefined;
  return seenCurrent ? undefined : newestOther;
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
