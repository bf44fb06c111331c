/**
 * Memory-limit kills of systemk's units, heard from the kernel log (through `dmesg`).
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
import { log } from "../log/mod.ts";
import { spawnProcess } from "../process/mod.ts";

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
 * Follows the kernel log for OOM kills of systemk units, from now on. Reads it through
 * `dmesg --follow-new` (util-linux): Deno opens `/dev/kmsg` itself only with `--allow-all`,
 * which the shipped permission set does not grant, while `dmesg` is one allowed command.
 *
 * @throws Error when `dmesg` cannot be started.
 */
export function watchOomKills(): OomKillWatcher {
  const stop = new AbortController();
  const child = spawnProcess(["dmesg", "--follow-new", "--notime", "--nopager"], {
    stderr: "null",
    signal: stop.signal,
  });
  const listeners: ((unit: string) => void)[] = [];
  void (async () => {
    let rest = "";
    for await (const chunk of child.stdout.pipeThrough(new TextDecoderStream())) {
      const lines = (rest + chunk).split("\n");
      rest = lines.pop() ?? "";
      for (const line of lines) {
        const unit = oomKilledUnit(line);
        if (unit) { for (const listener of listeners) listener(unit); }
      }
    }
  })().catch((e) => log.warn(`reading the kernel log: ${e}; OOM kills go unseen`));
  return {
    onKill(listener) {
      listeners.push(listener);
    },
    close() {
      stop.abort();
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
    log.warn(
      `not reading the kernel log (${(e as Error).message}): OOM kills show as SIGKILLs`,
    );
    return undefined;
  }
}
