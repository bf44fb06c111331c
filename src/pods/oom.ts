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

/**
 * Follows the kernel log from now on and calls listeners with each systemk unit an OOM kill
 * hit. Each read of `/dev/kmsg` returns one record.
 *
 * @throws Deno.errors.NotFound or PermissionDenied when the log cannot be opened.
 */
export async function watchOomKills(path = "/dev/kmsg"): Promise<OomKillWatcher> {
  const file = await Deno.open(path, { read: true });
  // Only what happens from now on: earlier kills belong to runs systemk cannot tell apart.
  await file.seek(0, Deno.SeekMode.End);
  const listeners: ((unit: string) => void)[] = [];
  let closed = false;
  (async () => {
    const buffer = new Uint8Array(8192);
    const decoder = new TextDecoder();
    while (!closed) {
      let n: number | null;
      try {
        n = await file.read(buffer);
      } catch (e) {
        if (closed) return;
        // EPIPE: records were overwritten before this reader got them; the next read goes on.
        if (e instanceof Deno.errors.BrokenPipe) continue;
        console.error(`systemk: reading ${path}: ${(e as Error).message}; OOM kills go unseen`);
        return;
      }
      if (n === null) return;
      const unit = oomKilledUnit(decoder.decode(buffer.subarray(0, n)));
      if (unit) { for (const listener of listeners) listener(unit); }
    }
  })();
  return {
    onKill(listener) {
      listeners.push(listener);
    },
    close() {
      closed = true;
      file.close();
    },
  };
}
