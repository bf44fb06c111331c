/**
 * Gathers the facts about this machine that go into the Node object: CPUs, memory, the root
 * filesystem, task counts and identity (machine id, boot id, kernel, OS image). Reads only
 * small files under /proc, /sys and /etc, so it is cheap enough to run every few seconds.
 *
 * @module
 */
import { statfsSync } from "node:fs";
import { kubernetesArch, type MachineFacts } from "./node.ts";
import { runCommand } from "../process/mod.ts";

/**
 * PRETTY_NAME from the text of /etc/os-release (shell-style quoting removed).
 *
 * @param text file content.
 * @return the pretty name, or `Linux` when absent.
 * @example Usage
 * ```ts
 * import assert from "node:assert/strict";
 * assert.equal(parseOsReleasePrettyName('PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\n'),
 *   "Debian GNU/Linux 12 (bookworm)");
 * ```
 */
export function parseOsReleasePrettyName(text: string): string {
  for (const line of text.split("\n")) {
    const m = /^PRETTY_NAME=(.*)$/.exec(line.trim());
    if (!m) continue;
    const raw = m[1].trim();
    const quoted = /^(["'])(.*)\1$/.exec(raw);
    return quoted ? quoted[2].replace(/\\(["$`\\])/g, "$1") : raw;
  }
  return "Linux";
}

/**
 * The number of tasks (threads) that exist, from /proc/loadavg's fourth field
 * (`running/total`).
 *
 * @param text content of /proc/loadavg, e.g. `0.00 0.01 0.05 1/123 4567`.
 * @return the total, or 0 when the text does not parse.
 */
export function parseLoadavgTasks(text: string): number {
  const m = /^\S+\s+\S+\s+\S+\s+\d+\/(\d+)/.exec(text.trim());
  return m ? Number(m[1]) : 0;
}

/**
 * A boot id made from the machine id and the moment systemd (PID 1) started: constant for one
 * boot, different for the next, in the kernel's UUID format. Stands in for
 * /proc/sys/kernel/random/boot_id where /proc is closed to systemk (Deno opens /proc only to
 * --allow-all, which systemk does not run with).
 *
 * @param machineID /etc/machine-id.
 * @param systemdStart PID 1's start as `systemctl show -p UserspaceTimestamp,...` prints it.
 * @return a lowercase UUID.
 */
export async function derivedBootID(machineID: string, systemdStart: string): Promise<string> {
  const digest = await crypto.subtle.digest(
    "SHA-256",
    new TextEncoder().encode(`${machineID}\n${systemdStart}`),
  );
  const hex = [...new Uint8Array(digest).slice(0, 16)]
    .map((b) => b.toString(16).padStart(2, "0")).join("");
  const part = (from: number, to: number) => hex.slice(from, to);
  return `${part(0, 8)}-${part(8, 12)}-${part(12, 16)}-${part(16, 20)}-${part(20, 32)}`;
}

let bootIDPromise: Promise<string> | undefined;

/** The kernel's boot id, or {@linkcode derivedBootID} when /proc cannot be read; asked once. */
function bootID(machineID: string): Promise<string> {
  bootIDPromise ??= (async () => {
    const kernel = await readTrimmed("/proc/sys/kernel/random/boot_id");
    if (kernel) return kernel;
    const out = await runCommand([
      "systemctl",
      ...["show", "--value", "-p", "UserspaceTimestamp", "-p", "UserspaceTimestampMonotonic"],
    ]).catch(() => undefined);
    const start = out?.success ? out.stdout.trim() : "";
    return start ? await derivedBootID(machineID, start) : "";
  })();
  return bootIDPromise;
}

async function readTrimmed(path: string): Promise<string> {
  try {
    return (await Deno.readTextFile(path)).trim();
  } catch {
    return "";
  }
}

/**
 * Reads the machine's facts. Missing files give empty strings (e.g. no DMI product UUID in
 * a VM or without root) rather than errors: a Node is still worth registering.
 *
 * @param rootPath the filesystem whose space counts as ephemeral storage; default `/`.
 */
export async function gatherMachineFacts(rootPath = "/"): Promise<MachineFacts> {
  const memory = Deno.systemMemoryInfo();
  const fs = statfsSync(rootPath);
  const [machineID, systemUUID, osRelease, loadavg, pidMax, threadsMax] = await Promise
    .all([
      readTrimmed("/etc/machine-id"),
      readTrimmed("/sys/class/dmi/id/product_uuid"),
      readTrimmed("/etc/os-release"),
      readTrimmed("/proc/loadavg"),
      readTrimmed("/proc/sys/kernel/pid_max"),
      readTrimmed("/proc/sys/kernel/threads-max"),
    ]);
  const limits = [Number(pidMax), Number(threadsMax)].filter((n) => n > 0);
  return {
    arch: kubernetesArch(Deno.build.arch),
    cpus: navigator.hardwareConcurrency || 1,
    memoryTotalBytes: memory.total,
    memoryAvailableBytes: memory.available,
    fsTotalBytes: fs.blocks * fs.bsize,
    fsAvailableBytes: fs.bavail * fs.bsize,
    fsInodes: fs.files,
    fsInodesFree: fs.ffree,
    processes: parseLoadavgTasks(loadavg),
    processLimit: limits.length ? Math.min(...limits) : 32768,
    machineID,
    systemUUID: systemUUID.toLowerCase(),
    bootID: await bootID(machineID),
    kernelVersion: Deno.osRelease(),
    osImage: parseOsReleasePrettyName(osRelease),
  };
}
