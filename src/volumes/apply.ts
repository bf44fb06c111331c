/**
 * Writes a pod's volume files as the planner describes them, and removes them again.
 *
 * Files are replaced atomically (temp file + rename in the same directory) and only when
 * their content, mode or owner differ, so a ConfigMap edit reaches a running pod without a
 * torn read and an unchanged object costs no writes. Directories the plan marks `managed`
 * (ConfigMap, Secret, projected, downward API volumes) lose files the plan no longer lists;
 * emptyDir contents belong to the pod and are never touched, nor is what a container writes
 * into a file the plan marks `preserve` (a daemon's PID file).
 *
 * @module
 */
import { dirname } from "node:path";
import type { VolumeEntry } from "../plan/types.ts";
import { runCommand } from "../process/mod.ts";
import { releaseSubPathPins } from "./claims.ts";

/** What an apply changed, for logs and tests. */
export interface ApplyResult {
  written: string[];
  removed: string[];
}

/** Creates or updates every entry; returns what changed on disk. */
export async function applyVolumes(entries: readonly VolumeEntry[]): Promise<ApplyResult> {
  const result: ApplyResult = { written: [], removed: [] };
  const listed = new Set(entries.map((e) => e.path));
  for (const entry of entries) {
    if (entry.kind === "dir") {
      await ensureDir(entry.path, entry.mode, entry.uid, entry.gid);
    } else if (entry.kind === "tmpfs") {
      await ensureDir(entry.path, entry.mode, entry.uid, entry.gid);
      if (!(await isMountPoint(entry.path))) {
        await mountTmpfs(entry.path, entry);
        result.written.push(entry.path);
      }
    } else if (await writeIfChanged(entry)) {
      result.written.push(entry.path);
    }
  }
  for (const entry of entries) {
    if (entry.kind === "dir" && entry.managed) {
      await prune(entry.path, listed, result.removed);
    }
  }
  return result;
}

/**
 * Why pods' files cannot be written below `stateDir` now, or undefined when they can: the
 * directory is made if missing, and a file is created and removed in it. For a clear message at
 * systemk's start; pods that need files report each failure themselves (`FailedMount`) and
 * start at a retry once the directory is writable again, so systemk goes on either way.
 */
export async function stateDirProblem(stateDir: string): Promise<string | undefined> {
  const probe = `${stateDir}/.systemk-write-check-${crypto.randomUUID()}`;
  try {
    await Deno.mkdir(stateDir, { recursive: true });
    await Deno.writeFile(probe, new Uint8Array(), { createNew: true, mode: 0o600 });
    await Deno.remove(probe);
    return undefined;
  } catch (e) {
    return `the state directory ${stateDir} is not writable (${(e as Error).message}): ` +
      `new pods report FailedMount until it is; running pods go on`;
  }
}

/**
 * Unmounts what the pod mounted under `podDir` and deletes the directory. A claim's subPath pins
 * go first, one by one (claims.ts): they may sit on the device of the state directory, where
 * nothing tells them from directories, and a recursive delete would go through them into the
 * volume's data.
 */
export async function removePodDir(podDir: string): Promise<void> {
  await releaseSubPathPins(podDir);
  for (const mount of (await mountsBelow(podDir)).reverse()) {
    await run(["umount", "--lazy", mount]);
  }
  await Deno.remove(podDir, { recursive: true }).catch((e) => {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  });
}

async function ensureDir(path: string, mode: number, uid: number, gid: number): Promise<void> {
  let info = await Deno.lstat(path).catch(() => undefined);
  if (!info) {
    await Deno.mkdir(path, { recursive: true });
    info = await Deno.lstat(path);
  }
  // lstat, not stat: a symlink planted where a directory belongs must not redirect writes.
  if (!info.isDirectory) throw new Error(`${path} exists and is not a directory`);
  if ((info.mode! & 0o7777) !== mode) await Deno.chmod(path, mode);
  if (info.uid !== uid || info.gid !== gid) await Deno.chown(path, uid, gid);
}

async function writeIfChanged(entry: Extract<VolumeEntry, { kind: "file" }>): Promise<boolean> {
  const current = await Deno.lstat(entry.path).catch(() => undefined);
  if (entry.preserve && current?.isFile) {
    // What the container wrote stays; only who may write it follows the plan.
    if ((current.mode! & 0o7777) !== entry.mode) await Deno.chmod(entry.path, entry.mode);
    if (current.uid !== entry.uid || current.gid !== entry.gid) {
      await Deno.chown(entry.path, entry.uid, entry.gid);
    }
    return false;
  }
  if (
    current?.isFile && (current.mode! & 0o7777) === entry.mode && current.uid === entry.uid &&
    current.gid === entry.gid && current.size === entry.content.length &&
    sameBytes(await Deno.readFile(entry.path), entry.content)
  ) {
    return false;
  }
  const slash = entry.path.lastIndexOf("/");
  const temp = `${entry.path.slice(0, slash)}/.${
    entry.path.slice(slash + 1)
  }.${crypto.randomUUID()}`;
  // Mode and owner are set before the rename, so the file is never visible with looser ones.
  await Deno.writeFile(temp, entry.content, { createNew: true, mode: 0o600 });
  await Deno.chown(temp, entry.uid, entry.gid);
  await Deno.chmod(temp, entry.mode);
  await Deno.rename(temp, entry.path).catch(async (e) => {
    await Deno.remove(temp).catch(() => {});
    throw e;
  });
  return true;
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

async function prune(dir: string, keep: ReadonlySet<string>, removed: string[]): Promise<void> {
  for await (const child of Deno.readDir(dir)) {
    const path = `${dir}/${child.name}`;
    if (keep.has(path)) {
      if (child.isDirectory) await prune(path, keep, removed);
      continue;
    }
    await Deno.remove(path, { recursive: true });
    removed.push(path);
  }
}

async function mountTmpfs(
  path: string,
  entry: Extract<VolumeEntry, { kind: "tmpfs" }>,
): Promise<void> {
  const options = [`mode=${entry.mode.toString(8)}`, `uid=${entry.uid}`, `gid=${entry.gid}`];
  if (entry.sizeBytes !== undefined) options.push(`size=${entry.sizeBytes}`);
  await run(["mount", "-t", "tmpfs", "-o", options.join(","), "systemk-emptydir", path]);
}

/**
 * A directory is a mount point when it lives on another device than its parent. Deno grants
 * /proc (mountinfo) only with --allow-all, which systemk does not run with; the tmpfs mounts
 * systemk makes always differ from their parent's device.
 */
async function isMountPoint(path: string): Promise<boolean> {
  const [self, parent] = await Promise.all([Deno.stat(path), Deno.stat(dirname(path))]);
  return self.dev !== parent.dev;
}

/** Mount points at or below `dir`, parents first; does not look inside a mount point. */
async function mountsBelow(dir: string): Promise<string[]> {
  const info = await Deno.lstat(dir).catch(() => undefined);
  if (!info?.isDirectory) return [];
  if (await isMountPoint(dir)) return [dir];
  const found: string[] = [];
  for await (const entry of Deno.readDir(dir)) {
    if (entry.isDirectory) found.push(...await mountsBelow(`${dir}/${entry.name}`));
  }
  return found;
}

async function run(argv: string[]): Promise<void> {
  const out = await runCommand(argv);
  if (!out.success) throw new Error(`${argv.join(" ")}: ${out.stderr.trim()}`);
}
