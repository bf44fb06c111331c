/**
 * The node's part of a pod's persistentVolumeClaim volumes (`PodPlan.claimMounts`), done before
 * the pod's units start, as the kubelet's volume manager mounts volumes before it starts
 * containers:
 *
 * - the path: a `local` volume's must exist (the local plugin bind-mounts it); a `hostPath`
 *   volume's `type` must hold, as for hostPath volumes (host_paths.ts);
 * - `fsGroup`: a `local` volume mounted read-write gets the pod's group, recursively, as the
 *   kubelet's `SetVolumeOwnership` gives it (group set, `ug+rw` added, and `ug+x` and setgid on
 *   directories; nothing when `fsGroupChangePolicy: OnRootMismatch` finds the root right);
 * - subPaths: each is pinned, as the kubelet pins it under `volume-subpaths`: its path inside
 *   the volume is walked without following a symlink (a missing directory is made, with the mode
 *   of the volume's root), bind-mounted onto a mount point below the pod's root-only directory,
 *   and the mount is kept only if it holds the very directory (device and inode) the walk found.
 *   The units bind that mount point, which the pod cannot touch, so a symlink the pod plants in
 *   the volume later (before a restart of the container, say) leads nowhere.
 *
 * What is written inside the volume (the group walk, missing subPath directories) runs as a
 * transient unit of its own in which the whole file system is read-only except the volume
 * (`ProtectSystem=strict`, `ReadWritePaths=`, private `/dev` and `/tmp`): the pod owns what is in
 * the volume, and a symlink it planted there, or swapped in while the work runs, can only lead
 * the `chgrp`/`chmod`/`mkdir` to read-only files.
 *
 * The volume's data is never deleted: the pins are unmounted one by one before the pod's
 * directory goes, and a mount point that still holds anything stops the removal.
 *
 * @module
 */
import type { ClaimMount } from "../plan/types.ts";
import { subPathPin } from "../plan/volumes.ts";
import { pathValue } from "../unit/mod.ts";
import { runCommand } from "../process/mod.ts";
import { hostPathTypeProblem } from "./host_paths.ts";

/** A claim's volume that cannot be set up on this node; the message says which and why. */
export class ClaimMountError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "ClaimMountError";
  }
}

/** Options of {@link setUpClaimMounts}. */
export interface ClaimSetupOptions {
  /**
   * Change the group of `fsGroup` volumes: once per pod, when its volumes are first set up (the
   * kubelet does it when it mounts the volume for the pod, not at every sync).
   */
  ownership: boolean;
}

/**
 * Sets up every claim's volume (see the module doc).
 *
 * @throws {ClaimMountError} naming the volume, the path and what is wrong, at the first failure.
 */
export async function setUpClaimMounts(
  mounts: readonly ClaimMount[],
  options: ClaimSetupOptions,
): Promise<void> {
  for (const mount of mounts) {
    const where = `volume ${mount.volume} (PersistentVolume ${mount.persistentVolume})`;
    const problem = await pathProblem(mount);
    if (problem) throw new ClaimMountError(`${where}: ${problem}`);
    if (options.ownership && mount.fsGroup) {
      await changeOwnership(mount.path, mount.fsGroup).catch((e) => {
        throw new ClaimMountError(`${where}: setting fsGroup ${mount.fsGroup!.gid}: ${e.message}`);
      });
    }
    for (const { path, mountPoint } of mount.subPaths) {
      await pinSubPath(mount.path, path, mountPoint).catch((e) => {
        throw new ClaimMountError(`${where}: subPath ${JSON.stringify(path)}: ${e.message}`);
      });
    }
  }
}

/** What keeps the volume's path from being mounted, or undefined. */
async function pathProblem(mount: ClaimMount): Promise<string | undefined> {
  if (mount.source === "hostPath") return await hostPathTypeProblem(mount.path, mount);
  const found = await Deno.stat(mount.path).catch((e) => {
    if (e instanceof Deno.errors.NotFound) return undefined;
    throw e;
  });
  return found ? undefined : `the local path ${mount.path} does not exist`;
}

/** The kubelet's `rwMask` (0660) and, for directories, `execMask` (0110). */
const FILE_BITS = 0o660;
const DIRECTORY_BITS = 0o770;

/**
 * Runs a shell script (its arguments as `$1`, `$2`, ...) as root in a transient unit in which
 * the whole file system is read-only except the volume at `volume` (and a private /dev and
 * /tmp): whatever symlink the pod planted in its volume, the script can change nothing else.
 */
async function runInVolume(volume: string, script: string, args: string[]): Promise<void> {
  const yes = [
    "PrivateDevices",
    "PrivateTmp",
    "PrivateNetwork",
    "ProtectKernelTunables",
    "ProtectKernelModules",
    "ProtectControlGroups",
    "NoNewPrivileges",
  ];
  const out = await runCommand([
    "systemd-run",
    "--quiet",
    "--wait",
    "--pipe",
    "--collect",
    "--service-type=exec",
    "--description=systemk: volume set-up",
    "-p",
    "ProtectSystem=strict",
    "-p",
    `ReadWritePaths=${pathValue(volume)}`,
    ...yes.flatMap((p) => ["-p", `${p}=yes`]),
    "--",
    "/bin/sh",
    "-c",
    script,
    "sh",
    ...args,
  ]);
  if (!out.success) throw new Error(out.stderr.trim() || `systemd-run exited with ${out.code}`);
}

/**
 * Gives the volume to the pod's group (see the module doc); with `OnRootMismatch`, only when
 * the root's group or its `ug+rwx` bits are not right yet.
 */
async function changeOwnership(
  path: string,
  fsGroup: NonNullable<ClaimMount["fsGroup"]>,
): Promise<void> {
  if (fsGroup.changePolicy === "OnRootMismatch") {
    const root = await Deno.stat(path);
    const bits = root.isDirectory ? DIRECTORY_BITS : FILE_BITS;
    if (root.gid === fsGroup.gid && ((root.mode ?? 0) & bits) === bits) return;
  }
  await runInVolume(
    path,
    'chgrp -R -h -- "$1" "$2" && find "$2" -type d -exec chmod ug+rwx,g+s -- {} + && ' +
      'find "$2" ! -type d ! -type l -exec chmod ug+rw -- {} +',
    [String(fsGroup.gid), path],
  );
}

/** Bits of a mode systemk copies onto subPath directories it makes: permissions and setgid. */
const MODE_BITS = 0o2777;

/**
 * The file at `subPath` of the volume at `root`, reached without following a symlink, and the
 * paths of the directories missing on the way (from the first missing one).
 */
async function walk(
  root: string,
  subPath: string,
): Promise<{ info?: Deno.FileInfo; missing: string[] }> {
  let info: Deno.FileInfo | undefined = await Deno.stat(root);
  let path = root;
  const missing: string[] = [];
  for (const segment of subPath.split("/")) {
    path = `${path}/${segment}`;
    info = missing.length ? undefined : await Deno.lstat(path).catch((e) => {
      if (e instanceof Deno.errors.NotFound) return undefined;
      throw e;
    });
    if (info?.isSymlink) {
      throw new Error(`${path} is a symbolic link, which systemk does not follow out of a volume`);
    }
    if (!info) missing.push(path);
  }
  return { info, missing };
}

/**
 * Pins `subPath` of the volume at `root` on `mountPoint` (see the module doc); a pin already
 * there (same device and inode) is kept.
 */
async function pinSubPath(root: string, subPath: string, mountPoint: string): Promise<void> {
  let { info, missing } = await walk(root, subPath);
  if (missing.length) {
    // The kubelet makes a missing subPath directory with the mode of the volume's root.
    const mode = ((await Deno.stat(root)).mode ?? 0o755) & MODE_BITS;
    await runInVolume(
      root,
      'mode=$1; shift; for d; do [ -d "$d" ] || mkdir -m "$mode" -- "$d" || exit 1; done',
      [mode.toString(8), ...missing],
    );
    ({ info, missing } = await walk(root, subPath));
  }
  if (!info || missing.length) throw new Error(`${root}/${subPath} could not be made`);
  const pinned = await Deno.lstat(mountPoint).catch(() => undefined);
  if (pinned && sameFile(pinned, info)) return;
  if (!pinned) {
    await Deno.mkdir(mountPoint.slice(0, mountPoint.lastIndexOf("/")), {
      recursive: true,
      mode: 0o700,
    });
    if (info.isDirectory) await Deno.mkdir(mountPoint, { mode: 0o700 });
    else await Deno.writeFile(mountPoint, new Uint8Array(), { mode: 0o600 });
  }
  const source = `${root}/${subPath}`;
  await mount(["--bind", source, mountPoint]);
  if (!sameFile(await Deno.stat(mountPoint), info)) {
    await mount(["--lazy", mountPoint], "umount");
    throw new Error(`${source} changed while it was mounted; systemk retries`);
  }
}

function sameFile(a: Deno.FileInfo, b: Deno.FileInfo): boolean {
  return a.dev === b.dev && a.ino === b.ino;
}

async function mount(args: string[], program = "mount"): Promise<void> {
  const out = await runCommand([program, ...args]);
  if (!out.success) throw new Error(`${program} ${args.join(" ")}: ${out.stderr.trim()}`);
}

/**
 * Unmounts a pod's subPath pins and removes their mount points, one by one: a mount point that
 * still holds something after its unmount is not removed, and the error stops the removal of
 * the pod's directory, so no data of a volume is deleted through a pin.
 */
export async function releaseSubPathPins(podDir: string): Promise<void> {
  const dir = subPathPin(podDir);
  for (const mountPoint of await entriesBelow(dir, 3)) {
    const out = await runCommand(["umount", "--lazy", mountPoint]);
    if (!out.success && !/not mounted/.test(out.stderr)) {
      throw new Error(`umount ${mountPoint}: ${out.stderr.trim()}`);
    }
    // Not recursive: an empty directory or file is all a released pin leaves.
    await Deno.remove(mountPoint);
  }
}

/** Paths exactly `depth` levels below `dir` (volume/container/index), none when it is missing. */
async function entriesBelow(dir: string, depth: number): Promise<string[]> {
  const found: string[] = [];
  try {
    for await (const entry of Deno.readDir(dir)) {
      const path = `${dir}/${entry.name}`;
      if (depth === 1) found.push(path);
      else if (entry.isDirectory) found.push(...await entriesBelow(path, depth - 1));
    }
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  }
  return found;
}
