/**
 * What a process costs, read from `/proc/<pid>/{status,stat}`: resident memory and CPU time.
 *
 * @module
 */

/** `VmRSS` of a `/proc/<pid>/status` text, in KiB. */
export function parseRssKiB(statusText: string): number {
  const m = /^VmRSS:\s+(\d+) kB$/m.exec(statusText);
  if (!m) throw new Error("no VmRSS in /proc/<pid>/status (process gone?)");
  return Number(m[1]);
}

/**
 * `utime + stime` of a `/proc/<pid>/stat` text, in clock ticks. Fields are counted after the
 * command name's closing parenthesis, since the name itself may contain spaces.
 */
export function parseCpuTicks(statText: string): number {
  const fields = statText.slice(statText.lastIndexOf(")") + 2).split(" ");
  // After the name: field 3 (state) is index 0, so utime (14) and stime (15) are 11 and 12.
  return Number(fields[11]) + Number(fields[12]);
}

/** Clock ticks per second (`getconf CLK_TCK`), for converting CPU ticks. */
export async function clockTicks(): Promise<number> {
  const out = await new Deno.Command("getconf", { args: ["CLK_TCK"], stdout: "piped" }).output();
  return Number(new TextDecoder().decode(out.stdout).trim()) || 100;
}

/** Memory and CPU of a process over a window. */
export interface Footprint {
  /** Mean resident set size over the window's samples, MiB. */
  rssMiB: number;
  /** Largest sample, MiB. */
  rssMaxMiB: number;
  /** CPU time used during the window as a percentage of one core. */
  cpuPercent: number;
  windowS: number;
}

/**
 * Samples `procDir` (a `/proc/<pid>` directory, possibly seen through another mount namespace's
 * root) once a second for `windowMs` and returns its mean RSS and CPU use.
 */
export async function measureFootprint(procDir: string, windowMs: number): Promise<Footprint> {
  const ticksPerS = await clockTicks();
  const read = (f: string) => Deno.readTextFile(`${procDir}/${f}`);
  const t0 = performance.now();
  const cpu0 = parseCpuTicks(await read("stat"));
  const rss: number[] = [];
  while (performance.now() - t0 < windowMs) {
    rss.push(parseRssKiB(await read("status")));
    await new Promise((r) => setTimeout(r, Math.min(1000, windowMs / 5)));
  }
  const cpu1 = parseCpuTicks(await read("stat"));
  const elapsedS = (performance.now() - t0) / 1000;
  return {
    rssMiB: rss.reduce((a, b) => a + b, 0) / rss.length / 1024,
    rssMaxMiB: Math.max(...rss) / 1024,
    cpuPercent: ((cpu1 - cpu0) / ticksPerS) / elapsedS * 100,
    windowS: elapsedS,
  };
}
