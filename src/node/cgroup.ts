/**
 * CPU time of cgroups, read from the kernel where systemd does not report it.
 *
 * systemd reports a unit's `CPUUsageNSec` when it manages the CPU controller: on a cgroup v2
 * host, or v1 with `cpu,cpuacct` mounted together. On a hybrid host whose v1 `cpu` and
 * `cpuacct` hierarchies are mounted apart (the development VMs) it reports none, but every cgroup
 * of the v2 hierarchy beside them (`/sys/fs/cgroup/unified`) still counts its CPU time in
 * `cpu.stat` (`usage_usec`, kept by the cgroup core whatever controllers are enabled). The
 * same file is `/sys/fs/cgroup/<cgroup>/cpu.stat` on a v2 host.
 *
 * Deno opens files under `/sys` only with `--allow-all`, even with `--allow-read` of them, which
 * the shipped permission set does not grant; so the files are read by `grep` (one allowed
 * command), all cgroups of a measurement in one run.
 *
 * @module
 */
import { runCommand } from "../process/mod.ts";

/** Where the v2 hierarchy is mounted: on a hybrid host, then on a v2 host. */
const V2_ROOTS = ["/sys/fs/cgroup/unified", "/sys/fs/cgroup"];

/** The `cpu.stat` files that may hold `cgroup`'s CPU time, one per possible mount. */
export function cpuStatPaths(cgroup: string): string[] {
  return V2_ROOTS.map((root) => `${root}${cgroup}/cpu.stat`);
}

/**
 * CPU time in ns per cgroup from `grep -H '^usage_usec '` output over the files of
 * {@link cpuStatPaths}: lines `<file>:usage_usec <µs>`. A cgroup with no such line is absent.
 *
 * @example Usage
 * ```ts
 * import assert from "node:assert/strict";
 * const out = "/sys/fs/cgroup/unified/systemk.slice/cpu.stat:usage_usec 1500\n";
 * assert.deepEqual(parseCPUUsage(["/systemk.slice"], out), new Map([["/systemk.slice", 1_500_000]]));
 * ```
 */
export function parseCPUUsage(cgroups: readonly string[], output: string): Map<string, number> {
  const byFile = new Map(cgroups.flatMap((cg) => cpuStatPaths(cg).map((file) => [file, cg])));
  const usage = new Map<string, number>();
  for (const line of output.split("\n")) {
    const at = line.lastIndexOf(":usage_usec ");
    const cgroup = byFile.get(line.slice(0, at));
    const usec = line.slice(at + ":usage_usec ".length);
    if (at < 0 || cgroup === undefined || !/^\d+$/.test(usec)) continue;
    usage.set(cgroup, Number(usec) * 1000);
  }
  return usage;
}

/**
 * The CPU time (ns) each of `cgroups` (paths below the root cgroup, as systemd's `ControlGroup`)
 * has used, from the kernel; cgroups it cannot find are left out.
 *
 * @throws Error when `grep` cannot be run.
 */
export async function readCPUUsage(cgroups: readonly string[]): Promise<Map<string, number>> {
  if (cgroups.length === 0) return new Map();
  // -s: a file that does not exist (the other mount) is expected; the exit code is then 2,
  // while the files found are still printed.
  const out = await runCommand([
    "grep",
    "-sH",
    "^usage_usec ",
    "--",
    ...cgroups.flatMap(cpuStatPaths),
  ]);
  return parseCPUUsage(cgroups, out.stdout);
}
