/**
 * The hostPath checks a plan asks for (`PodPlan.hostPathChecks`), made on the node before the
 * pod's units start, as the kubelet makes them before mounting:
 *
 * - the path resolved the way systemd will resolve it when it binds it (every symlink
 *   followed) must still be allowed by `--allowed-host-paths` and stay clear of systemk's state
 *   directory: a pod that writes into one allowed directory could otherwise plant a symlink
 *   there to anywhere (`/etc`, another pod's Secrets) for a hostPath or subPath to follow;
 * - the volume's `type` must hold: `Directory`, `File`, `Socket`, `CharDevice`, `BlockDevice`
 *   must exist as such, `DirectoryOrCreate` (mode 0755) and `FileOrCreate` (empty, 0644) are
 *   created when missing, with the kubelet's messages (`hostPath type check failed: ...`).
 *
 * What remains: the check and systemd's bind at the unit's start are two moments, so a pod
 * racing to swap a path component for a symlink in between is not excluded.
 *
 * @module
 */
import { type HostPathPolicy, hostPathProblem } from "../plan/volumes.ts";
import type { HostPathCheck } from "../plan/types.ts";

/** A hostPath the node refuses or that does not have its type; the message says which. */
export class HostPathError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "HostPathError";
  }
}

/** Options of {@link checkHostPaths}. */
export type HostPathCheckOptions = HostPathPolicy;

/** The kernel's limit on symlinks followed in one lookup (`MAXSYMLINKS`). */
const MAX_SYMLINKS = 40;

/**
 * `path` as a lookup resolves it: component by component, every symlink followed (dangling
 * ones too: a later create would follow them), `..` taken after resolving what precedes it.
 * Below a missing component the rest is appended as written (nothing there can be a link).
 */
async function resolve(path: string): Promise<string> {
  const parts = path.split("/").filter((p) => p !== "" && p !== ".");
  let resolved = "/";
  let links = 0;
  while (parts.length > 0) {
    const part = parts.shift()!;
    if (part === "..") {
      resolved = resolved.slice(0, resolved.lastIndexOf("/")) || "/";
      continue;
    }
    const next = resolved === "/" ? `/${part}` : `${resolved}/${part}`;
    const info = await Deno.lstat(next).catch(() => undefined);
    if (!info?.isSymlink) {
      resolved = next;
      continue;
    }
    if (++links > MAX_SYMLINKS) {
      throw new HostPathError(`hostPath ${path}: too many levels of symbolic links`);
    }
    const target = await Deno.readLink(next);
    parts.unshift(...target.split("/").filter((p) => p !== "" && p !== "."));
    if (target.startsWith("/")) resolved = "/";
  }
  return resolved;
}

async function statOrUndefined(path: string): Promise<Deno.FileInfo | undefined> {
  try {
    return await Deno.stat(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return undefined;
    throw e;
  }
}

/** What a type demands of the file found (undefined = missing), as the kubelet words it. */
function typeProblem(type: string, path: string, info: Deno.FileInfo | undefined) {
  const failed = `hostPath type check failed: ${path}`;
  switch (type) {
    case "Directory":
    case "DirectoryOrCreate":
      return info?.isDirectory ? undefined : `${failed} is not a directory`;
    case "File":
    case "FileOrCreate":
      return info?.isFile ? undefined : `${failed} is not a file`;
    case "Socket":
      return info?.isSocket ? undefined : `${failed} is not a socket file`;
    case "CharDevice":
      return info?.isCharDevice ? undefined : `${failed} is not a character device`;
    case "BlockDevice":
      return info?.isBlockDevice ? undefined : `${failed} is not a block device`;
    default:
      return undefined;
  }
}

/**
 * Makes every check, creating `DirectoryOrCreate` and `FileOrCreate` paths that are missing.
 *
 * @throws {HostPathError} naming the volume, the path (and what it resolves to) and the flag or
 *   type at fault, for the first check that fails.
 */
export async function checkHostPaths(
  checks: readonly HostPathCheck[],
  opts: HostPathCheckOptions,
): Promise<void> {
  // The allowed prefixes count as written and as resolved (an administrator's own symlink).
  const allowed = [...opts.allowedHostPaths];
  for (const prefix of opts.allowedHostPaths) {
    const real = await resolve(prefix);
    if (!allowed.includes(real)) allowed.push(real);
  }
  const policy = { allowedHostPaths: allowed, stateDir: opts.stateDir };
  for (const check of checks) {
    const resolved = await resolve(check.path);
    const problem = hostPathProblem(resolved, policy);
    if (problem) {
      const shown = resolved === check.path ? check.path : `${check.path} resolves to ${resolved}`;
      throw new HostPathError(
        `volume ${check.volume}: hostPath ${shown}, which ${problem}` +
          (problem.startsWith("is not allowed") ? " (--allowed-host-paths)" : ""),
      );
    }
    const wrong = await hostPathTypeProblem(resolved, { type: check.type, shown: check.path });
    if (wrong) throw new HostPathError(`volume ${check.volume}: ${wrong}`);
  }
}

/**
 * Whether the file at `path` has the hostPath `type` (`""` = anything), after creating a missing
 * `DirectoryOrCreate` (0755) or `FileOrCreate` (empty, 0644) path: the kubelet's message when it
 * has not, else undefined. For hostPath volumes and hostPath PersistentVolumes alike.
 *
 * @param options the type, and the path as the user wrote it (for the message; default `path`).
 */
export async function hostPathTypeProblem(
  path: string,
  options: { type: string; shown?: string },
): Promise<string | undefined> {
  const { type, shown = path } = options;
  let info = await statOrUndefined(path);
  if (!info && type === "DirectoryOrCreate") {
    await Deno.mkdir(path, { recursive: true, mode: 0o755 });
    info = await statOrUndefined(path);
  } else if (!info && type === "FileOrCreate") {
    await Deno.writeFile(path, new Uint8Array(), { createNew: true, mode: 0o644 });
    info = await statOrUndefined(path);
  }
  return typeProblem(type, shown, info);
}
