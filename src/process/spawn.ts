/**
 * Starting a program whose output streams while it runs: `journalctl --follow`,
 * `dmesg --follow-new`, commands in containers. The caller reads standard output (and error)
 * as streams and ends the program by aborting a signal.
 *
 * @module
 */

/** Options of {@link spawnProcess}. */
export interface SpawnOptions {
  /**
   * `"piped"`: standard input is {@link SpawnedProcess.stdin}, for the caller to write and
   * close; `"null"` (default): none.
   */
  stdin?: "piped" | "null";
  /** `"piped"` (default): standard error is {@link SpawnedProcess.stderr}; `"null"`: dropped. */
  stderr?: "piped" | "null";
  /** Environment variables added to systemk's own. */
  env?: Record<string, string>;
  /**
   * Aborting it ends the program with SIGTERM (nothing happens once it has exited). Whoever
   * stops reading before the end aborts it: a pipe no one reads would hold the program forever.
   */
  signal?: AbortSignal;
}

/** A running program. */
export interface SpawnedProcess {
  /** Its process id (e.g. to find it in what another program reports about it). */
  pid: number;
  /** Its standard input, when spawned with `stdin: "piped"`. */
  stdin: WritableStream<Uint8Array>;
  stdout: ReadableStream<Uint8Array>;
  /** Its standard error, when spawned with `stderr: "piped"` (the default). */
  stderr: ReadableStream<Uint8Array>;
  /** How it ended. */
  status: Promise<Deno.CommandStatus>;
}

/**
 * Starts `argv` (the program, then its arguments).
 *
 * @throws when the program cannot be started (not found, not permitted).
 *
 * @example Usage
 * ```ts ignore
 * import { spawnProcess } from "./spawn.ts";
 * const stop = new AbortController();
 * const dmesg = spawnProcess(["dmesg", "--follow-new"], { signal: stop.signal });
 * for await (const chunk of dmesg.stdout) if (seen(chunk)) break;
 * stop.abort();
 * ```
 */
export function spawnProcess(
  argv: readonly string[],
  options: SpawnOptions = {},
): SpawnedProcess {
  const child = new Deno.Command(argv[0], {
    args: argv.slice(1),
    env: options.env,
    stdin: options.stdin ?? "null",
    stdout: "piped",
    stderr: options.stderr ?? "piped",
  }).spawn();
  const signal = options.signal;
  if (signal) {
    let exited = false;
    const terminate = () => {
      if (exited) return;
      try {
        child.kill("SIGTERM");
      } catch {
        // It exited between its end and `status` settling.
      }
    };
    if (signal.aborted) terminate();
    else signal.addEventListener("abort", terminate, { once: true });
    child.status.finally(() => {
      exited = true;
      signal.removeEventListener("abort", terminate);
    });
  }
  return child;
}
