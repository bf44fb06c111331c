/**
 * Memory-limit kills of systemk's units, heard from the kernel log (`/dev/kmsg`).
 *
 * systemd reports a kill by the kernel's OOM killer itself (`Result=oom-kill`) only where the
 * memory controller is on cgroup v2. On cgroup v1 and hybrid hosts it says `Result=signal`,
 * SIGKILL — indistinguishable from any other SIGKILL — and the unit cgroup's
 * `memory.oom_control` counter is gone with the cgroup by the time systemd reports the exit.
 * The kernel, however, logs every memory-cgroup OOM kill with the killed task's cgroup:
 *
 * ```
 * oom-kill:constraint=CONSTRAINT_MEMCG,...,task_memcg=/system.slice/systemk.default.web.app.service,task=perl,pid=4242,uid=0
 * ```
 *
 * The last component of `task_memcg` is the unit. That line is logged while the task is being
 * killed, before systemd sees the exit, so the unit's current run is the one killed.
 *
 * Limits: kills while systemk is not running are not heard (the log is read from the moment
 * systemk starts); the path is the kernel's full cgroup path, so units of the same name in
 * another systemd sharing the kernel (containers, test systems) are not told apart.
 *
 * @module
 */
import fs from "node:fs";
import { isSystemkUnitName } from "../systemd/mod.ts";
import type { OomKills } from "./ports.ts";

/** A source of OOM kills that reads until closed. */
export interface OomKillWatcher extends OomKills {
  close(): void;
}

/**
 * The systemk unit whose task a kernel log record says the OOM killer killed, if any.
 *
 * @param record One `/dev/kmsg` record (`<prefix>;<message>` plus continuation lines) or a
 *   bare message line.
 */
export function oomKilledUnit(record: string): string | undefined {
  const message = record.slice(record.indexOf(";") + 1).split("\n")[0];
  if (!message.startsWith("oom-kill:")) return undefined;
  const cgroup = message.match(/[:,]task_memcg=([^,]*)/)?.[1];
  const unit = cgroup?.slice(cgroup.lastIndexOf("/") + 1);
  return unit !== undefined && isSystemkUnitName(unit) ? unit : undefined;
}

/** How often the kernel log is read: a kill is reported at most this late. */
const POLL_MS = 200;

/**
 * Follows the kernel log from now on and calls listeners with each systemk unit an OOM kill
 * hit. Each read of `/dev/kmsg` returns one record.
 *
 * The log is read without blocking, every {@link POLL_MS} ms: a blocking read of `/dev/kmsg`
 * holds a thread until the next kernel message, whatever `close()` does, and with it the
 * process's exit. `Deno.open` takes no `O_NONBLOCK`; `node:fs` does.
 *
 * @throws Error (ENOENT, EACCES) when the log cannot be opened.
 */
export function watchOomKills(path = "/dev/kmsg"): OomKillWatcher {
  const fd = fs.openSync(path, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK);
  const listeners: ((unit: string) => void)[] = [];
  const buffer = new Uint8Array(8192);
  const decoder = new TextDecoder();
  /** Reads every record logged since the last call, passing OOM kills on when `deliver`. */
  const drain = (deliver: boolean) => {
    for (;;) {
      let n: number;
      try {
        n = fs.readSync(fd, buffer, 0, buffer.length, null);
      } catch (e) {
        const code = (e as { code?: string }).code;
        if (code === "EAGAIN") return;
        // Records were overwritten before this reader got them; the next read goes on.
        if (code === "EPIPE") continue;
        throw e;
      }
      if (n === 0) return;
      const unit = deliver ? oomKilledUnit(decoder.decode(buffer.subarray(0, n))) : undefined;
      if (unit) { for (const listener of listeners) listener(unit); }
    }
  };
  // Only what happens from now on: earlier kills belong to runs systemk cannot tell apart.
  drain(false);
  const timer = setInterval(() => {
    try {
      drain(true);
    } catch (e) {
      clearInterval(timer);
      console.error(`systemk: reading ${path}: ${(e as Error).message}; OOM kills go unseen`);
    }
  }, POLL_MS);
  return {
    onKill(listener) {
      listeners.push(listener);
    },
    close() {
      clearInterval(timer);
      fs.closeSync(fd);
    },
  };
}

/**
 * {@link watchOomKills} for the modes: undefined, with a warning, when the kernel log cannot be
 * read — memory-limit kills then still show, as errors (exit 137) instead of OOMKilled.
 */
export function watchOomKillsOrWarn(): OomKillWatcher | undefined {
  try {
    return watchOomKills();
  } catch (e) {
    console.error(
      `systemk: not reading the kernel log (${(e as Error).message}): OOM kills show as SIGKILLs`,
    );
    return undefined;
  }
}
