/**
 * Pod volumes → the directories, files and tmpfs mounts that back them on the node.
 *
 * Layout: `<stateDir>/<pod-uid>/volumes/<kind>/<volume-name>/…` with kind one of `emptydir`,
 * `configmap`, `secret`, `downwardapi`, `projected` (hostPath and persistentVolumeClaim volumes
 * are used in place). The pod directory and the `volumes/<kind>` levels are root-owned 0700: no
 * other user on the node can reach into them, and units reach their own volumes only through
 * bind mounts systemd sets up as root.
 *
 * Ownership and modes: everything at and below a volume's directory is owned by the pod's user
 * (`uid`, and `fsGroup` or the user's group as `gid`), so the seed's "files made of the same
 * user/group" holds.
 * - emptyDir: directory (or tmpfs for `medium: Memory`, `sizeLimit` → tmpfs size) mode 0777
 *   as the kubelet makes it, so containers of one pod running as different users can share it.
 *   With subPath mounts into it, root owns it and the subPath directories, and the volume and
 *   every directory a subPath passes through are sticky (01777): the pod cannot swap a subPath
 *   directory for a symlink that systemd would follow (the kubelet guards the same way with
 *   bind mounts of its own). The price: in such a volume, one user of a multi-user pod cannot
 *   delete another's files at those levels.
 * - configMap, downwardAPI: directories 0755, files `mode` / `defaultMode` / 0644 (kubelet).
 * - secret, serviceAccountToken, and any projected volume with one of them: directories 0750,
 *   and file modes honour `mode`/`defaultMode` but never keep bits for others (0644 → 0640),
 *   so a secret is readable only by the pod's user and group.
 *
 * @module
 */
import type { V1Container, V1KeyToPath, V1Volume } from "@kubernetes/client-node";
import { fail, type PodContext } from "./_context.ts";
import { lookupObject, objectData, type SourceKind } from "./_objects.ts";
import { fieldRefValue, resourceFieldValue } from "./downward.ts";
import { integerValue, parseQuantity, QuantityError } from "./quantity.ts";
import { containerResources } from "./resources.ts";
import { claimedVolume, isClaimProblem } from "./claims.ts";
import type { ClaimMount, HostPathCheck, VolumeEntry } from "./types.ts";

/** The pod's user, owner of every volume file. */
export interface VolumeOwner {
  uid: number;
  gid: number;
}

/** Where a volume lives on the node and how it may be mounted. */
export interface VolumeSource {
  /** Node path that backs the volume (bind-mount source). */
  hostPath: string;
  /** configMap, secret, downwardAPI and projected volumes are always mounted read-only. */
  readOnly: boolean;
  /** emptyDir: subPath directories are created on demand. */
  createsSubPaths: boolean;
  /** Relative paths the plan creates inside the volume, for checking subPath; undefined = unknown. */
  contents?: Set<string>;
  /** A hostPath volume: a subPath into it is checked on the node too (PodPlan.hostPathChecks). */
  onHost?: boolean;
}

/** All volumes of a pod. */
export interface PlannedVolumes {
  entries: VolumeEntry[];
  sources: Map<string, VolumeSource>;
  hostPathChecks: HostPathCheck[];
  /** The PersistentVolumes of the pod's claims, by volume name. */
  claimMounts: Map<string, ClaimMount>;
  /** Adds (once) the directories of an emptyDir subPath, returning its node path. */
  subPathDirectory(source: VolumeSource, subPath: string): string;
  /** Adds (once) a check of a host path a unit binds. */
  checkHostPath(check: HostPathCheck): void;
  /** Adds an entry that is not a volume (a container's environment file). */
  add(entry: VolumeEntry): void;
}

const HOST_PATH_TYPES = new Set([
  "",
  "DirectoryOrCreate",
  "Directory",
  "FileOrCreate",
  "File",
  "Socket",
  "CharDevice",
  "BlockDevice",
]);

/**
 * Why `path` is not a safe relative path inside a volume, or undefined when it is: no empty,
 * absolute, NUL-containing, `.`/`..`/empty-segment or `..`-prefixed paths (the kubelet reserves
 * `..` names for its own bookkeeping).
 */
export function relativePathProblem(path: string): string | undefined {
  if (path === "") return "is empty";
  if (path.includes("\0")) return "contains a NUL character";
  if (path.startsWith("/")) return "is absolute";
  const segments = path.split("/");
  if (segments.includes("..")) return "contains a '..' segment";
  if (path.startsWith("..")) return "starts with '..'";
  if (segments.some((s) => s === "" || s === ".")) return "contains an empty or '.' segment";
  return undefined;
}

class Entries {
  readonly list: VolumeEntry[] = [];
  readonly #paths = new Set<string>();
  /** Adds an entry unless its path is already planned (directories shared by items). */
  add(entry: VolumeEntry): void {
    if (this.#paths.has(entry.path)) return;
    this.#paths.add(entry.path);
    this.list.push(entry);
  }
  /** The planned entry at `path`. */
  get(path: string): VolumeEntry | undefined {
    return this.#paths.has(path) ? this.list.find((e) => e.path === path) : undefined;
  }
  /** Replaces the entry at `entry.path` where it stands (creation order kept), or adds it. */
  set(entry: VolumeEntry): void {
    const i = this.#paths.has(entry.path) ? this.list.findIndex((e) => e.path === entry.path) : -1;
    if (i < 0) this.add(entry);
    else this.list[i] = entry;
  }
}

interface FileSpec {
  path: string;
  content: Uint8Array;
  mode: number;
  sensitive: boolean;
}

function checkMode(ctx: PodContext, field: string, mode: number | undefined): number | undefined {
  if (mode === undefined) return undefined;
  if (!Number.isInteger(mode) || mode < 0 || mode > 0o777) {
    throw fail(ctx, {
      what: `${field} ${mode} is not a file mode`,
      todo: "use a value between 0 and 0777 (octal) / 511 (decimal)",
    });
  }
  return mode;
}

const encoder = new TextEncoder();

/** A configMap or secret source of volume `volume`, as the API names its fields. */
interface KeySource {
  volume: string;
  kind: SourceKind;
  name?: string;
  items?: V1KeyToPath[];
  optional?: boolean;
  defaultMode: number;
}

/** Files of a configMap/secret source: all keys (sorted) or the given items. */
function keyFiles(ctx: PodContext, source: KeySource): FileSpec[] {
  const { volume, kind, name, items, optional, defaultMode } = source;
  const field = `volume ${volume}`;
  const object = lookupObject(ctx, { kind, name, optional, field });
  if (!object) return [];
  const data = objectData(ctx, object, { kind });
  const sensitive = kind === "secret";
  if (!items || items.length === 0) {
    return [...data.keys()].sort().map((key) => ({
      path: key,
      content: data.get(key)!,
      mode: defaultMode,
      sensitive,
    }));
  }
  const out: FileSpec[] = [];
  for (const item of items) {
    const content = data.get(item.key);
    if (content === undefined) {
      if (optional) continue;
      throw fail(ctx, {
        what: `${field}: key "${item.key}" not found in ${kind} "${name}"`,
        todo: `add the key to the ${kind}, remove the item, or set optional: true`,
      });
    }
    const mode = checkMode(ctx, `${field}: items[${item.key}].mode`, item.mode) ?? defaultMode;
    out.push({ path: item.path, content, mode, sensitive });
  }
  return out;
}

interface DownwardItem {
  path: string;
  mode?: number;
  fieldRef?: { fieldPath: string };
  resourceFieldRef?: { containerName?: string; resource: string; divisor?: string | number };
}

function downwardFiles(
  ctx: PodContext,
  volume: string,
  items: DownwardItem[] | undefined,
  defaultMode: number,
): FileSpec[] {
  return (items ?? []).map((item) => {
    let value: string;
    if (item.fieldRef) value = fieldRefValue(ctx, item.fieldRef.fieldPath, { forVolume: true });
    else if (item.resourceFieldRef) {
      value = resourceFieldValue(ctx, item.resourceFieldRef);
    } else {
      throw fail(ctx, {
        what:
          `volume ${volume}: downwardAPI item "${item.path}" has neither fieldRef nor resourceFieldRef`,
        todo: "set one of them",
      });
    }
    const mode = checkMode(ctx, `volume ${volume}: items[${item.path}].mode`, item.mode);
    return {
      path: item.path,
      content: encoder.encode(value),
      mode: mode ?? defaultMode,
      sensitive: false,
    };
  });
}

/** Key of `PlanInput.serviceAccountTokens`: `<volume>/<path>`. */
export function serviceAccountTokenKey(volume: string, path: string): string {
  return `${volume}/${path}`;
}

function projectedFiles(ctx: PodContext, v: V1Volume): FileSpec[] {
  const p = v.projected!;
  const defaultMode = checkMode(ctx, `volume ${v.name}: defaultMode`, p.defaultMode) ?? 0o644;
  const out: FileSpec[] = [];
  for (const source of p.sources ?? []) {
    if (source.configMap) {
      out.push(
        ...keyFiles(ctx, { ...source.configMap, volume: v.name, kind: "configMap", defaultMode }),
      );
    } else if (source.secret) {
      out.push(...keyFiles(ctx, { ...source.secret, volume: v.name, kind: "secret", defaultMode }));
    } else if (source.downwardAPI) {
      out.push(...downwardFiles(ctx, v.name, source.downwardAPI.items, defaultMode));
    } else if (source.serviceAccountToken) {
      const path = source.serviceAccountToken.path;
      const token = ctx.input.serviceAccountTokens?.get(serviceAccountTokenKey(v.name, path));
      if (token !== undefined) {
        out.push({ path, content: encoder.encode(token), mode: defaultMode, sensitive: true });
      }
    } else {
      throw fail(ctx, {
        what: `volume ${v.name}: projected source ${
          Object.keys(source).join(", ")
        } is not supported`,
        todo: "use configMap, secret, downwardAPI or serviceAccountToken sources",
      });
    }
  }
  return out;
}

/** Shared state while planning the volumes of one pod. */
interface Planning {
  ctx: PodContext;
  entries: Entries;
  own: VolumeOwner;
  /** Creates the root-only `volumes/<kind>` levels; returns the volume's directory. */
  volumeDir(kind: string, name: string): string;
}

const NOT_ALLOWED = "is not allowed on this node";

/**
 * `path` without empty and `.` segments (as systemd simplifies paths); undefined when it is not
 * absolute or holds `..` or NUL.
 */
export function simplifiedAbsolutePath(path: string): string | undefined {
  if (!path.startsWith("/") || path.includes("\0")) return undefined;
  const segments = path.split("/").filter((s) => s !== "" && s !== ".");
  if (segments.includes("..")) return undefined;
  return "/" + segments.join("/");
}

/** Whether simplified absolute `path` is `prefix` or below it (whole segments only). */
function isBelow(path: string, prefix: string): boolean {
  return prefix === "/" || path === prefix || path.startsWith(prefix + "/");
}

/** The node's hostPath policy: see {@link hostPathProblem}. */
export interface HostPathPolicy {
  /** `--allowed-host-paths`: absolute path prefixes; relative entries never match. */
  allowedHostPaths: readonly string[];
  /** systemk's state directory (every pod's Secrets), refused whatever the allow-list says. */
  stateDir: string;
}

/**
 * The node's hostPath policy: why a pod may not mount host `path`, or undefined when it may.
 * A hostPath gives a pod — even one not running as root — the host's files outside its
 * read-only sandbox, so only paths below a prefix the node's administrator allowed
 * (`--allowed-host-paths`; none by default) are mounted. systemk's state directory is refused
 * whatever the allow-list says: it holds every pod's Secrets, so neither it, a path inside it,
 * nor a path containing it (`/`, `/run`) may be mounted. Paths must be absolute without `..`.
 *
 * Pure, on the path as written: a caller that can resolve symlinks on the node should check
 * the resolved path again.
 *
 * @param policy the allowed prefixes and the state directory.
 * @example Usage
 * ```ts
 * const policy = { allowedHostPaths: ["/srv"], stateDir: "/run/systemk" };
 * hostPathProblem("/etc", policy); // "is not allowed on this node"
 * hostPathProblem("/srv/data", policy); // undefined
 * ```
 */
export function hostPathProblem(path: string, policy: HostPathPolicy): string | undefined {
  const { allowedHostPaths: allowed, stateDir } = policy;
  const simplified = simplifiedAbsolutePath(path);
  if (simplified === undefined) {
    return path.startsWith("/") ? "contains '..' or NUL" : "is not absolute";
  }
  const state = simplifiedAbsolutePath(stateDir) ?? stateDir;
  if (isBelow(simplified, state) || isBelow(state, simplified)) {
    return `overlaps systemk's state directory ${state}, which holds every pod's Secrets`;
  }
  const prefixes = allowed.map(simplifiedAbsolutePath).filter((a) => a !== undefined);
  if (!prefixes.some((prefix) => isBelow(simplified, prefix))) {
    return NOT_ALLOWED;
  }
  return undefined;
}

function hostPathVolume(
  p: Planning,
  v: V1Volume,
  check: (c: HostPathCheck) => void,
): VolumeSource {
  const { path, type = "" } = v.hostPath!;
  const field = `volume ${v.name}: hostPath.path ${JSON.stringify(path)}`;
  const problem = hostPathProblem(path, {
    allowedHostPaths: p.ctx.input.allowedHostPaths ?? [],
    stateDir: p.ctx.stateDir,
  });
  if (problem) {
    const todo = problem === NOT_ALLOWED
      ? `allow it with --allowed-host-paths=${
        simplifiedAbsolutePath(path)
      } (comma-separated path ` +
        "prefixes), or use another volume type"
      : "use another path or volume type";
    throw fail(p.ctx, { what: `${field} ${problem}`, todo: todo });
  }
  if (!HOST_PATH_TYPES.has(type)) {
    throw fail(p.ctx, {
      what: `volume ${v.name}: hostPath.type "${type}" is unknown`,
      todo: `use one of ${[...HOST_PATH_TYPES].filter(Boolean).join(", ")}`,
    });
  }
  const hostPath = simplifiedAbsolutePath(path)!;
  check({ volume: v.name, path: hostPath, type });
  return { hostPath, readOnly: false, createsSubPaths: false, onHost: true };
}

/** A pod's memory limit as the kubelet counts it: set only when every container has one. */
function podMemoryLimit(ctx: PodContext): number | undefined {
  const limit = (c: V1Container) => {
    const q = containerResources(ctx, c).limits.get("memory");
    return q === undefined ? undefined : Number(integerValue(q));
  };
  const apps = ctx.spec.containers.map(limit);
  const inits = (ctx.spec.initContainers ?? []).map(limit);
  if ([...apps, ...inits].some((l) => l === undefined)) return undefined;
  const sum = (apps as number[]).reduce((a, b) => a + b, 0);
  return Math.max(sum, ...(inits as number[]));
}

/**
 * The size of a `medium: Memory` emptyDir, as the kubelet sizes it: the node's allocatable
 * memory, else less when the pod's memory limit is less, else less when `sizeLimit` is; a
 * `sizeLimit` of 0 counts as none (a tmpfs of size 0 would have no limit at all). Undefined
 * only when the node's memory is unknown and nothing else bounds it (the kernel's default:
 * half the memory).
 */
function memoryVolumeSize(ctx: PodContext, sizeLimit: number | undefined): number | undefined {
  let size = ctx.input.node.allocatable?.memoryBytes;
  for (const bound of [podMemoryLimit(ctx), sizeLimit]) {
    if (bound !== undefined && bound > 0 && (size === undefined || bound <= size)) size = bound;
  }
  return size;
}

/**
 * Where a pod's claim subPaths are pinned (bind-mounted) before its units bind them:
 * `<podDir>/volume-subpaths/<volume>/<container>/<volumeMounts index>`, as the kubelet lays out
 * its pins.
 */
export function subPathPin(
  podDir: string,
  mount?: { volume: string; container: string; index: number },
): string {
  const dir = `${podDir}/volume-subpaths`;
  return mount ? `${dir}/${mount.volume}/${mount.container}/${mount.index}` : dir;
}

/** Kubernetes reason for a volume that cannot be mounted (the kubelet's event reason). */
const FAILED_MOUNT = "FailedMount";

/**
 * A `persistentVolumeClaim` volume: the path of the PersistentVolume bound to the claim
 * (claims.ts), kept clear of systemk's state directory, used in place like a hostPath; what the
 * node must do before the units start goes to `mounts`. A `local` volume mounted read-write gets
 * the pod's `fsGroup`, as the kubelet's local volume plugin gives it (hostPath ones do not).
 */
function claimVolume(p: Planning, v: V1Volume, mounts: Map<string, ClaimMount>): VolumeSource {
  const { ctx } = p;
  const input = ctx.input;
  const claimed = claimedVolume(v, {
    namespace: ctx.namespace,
    claims: input.persistentVolumeClaims ?? new Map(),
    volumes: input.persistentVolumes ?? new Map(),
    node: { name: input.node.name, labels: input.nodeLabels ?? {} },
  });
  if (isClaimProblem(claimed)) {
    throw fail(ctx, {
      what: `volume ${v.name}: ${claimed.what}`,
      todo: claimed.todo,
      reason: FAILED_MOUNT,
    });
  }
  const field = `volume ${v.name}: PersistentVolume ${claimed.persistentVolume}: ` +
    `${claimed.source}.path ${JSON.stringify(claimed.path)}`;
  const problem = hostPathProblem(claimed.path, {
    allowedHostPaths: ["/"],
    stateDir: ctx.stateDir,
  });
  if (problem) {
    throw fail(ctx, {
      what: `${field} ${problem}`,
      todo: "use another path",
      reason: FAILED_MOUNT,
    });
  }
  if (!HOST_PATH_TYPES.has(claimed.type)) {
    throw fail(ctx, {
      what: `volume ${v.name}: PersistentVolume ${claimed.persistentVolume}: hostPath.type ` +
        `"${claimed.type}" is unknown`,
      todo: `use one of ${[...HOST_PATH_TYPES].filter(Boolean).join(", ")}`,
      reason: FAILED_MOUNT,
    });
  }
  const path = simplifiedAbsolutePath(claimed.path)!;
  const { fsGroup, fsGroupChangePolicy } = ctx.spec.securityContext ?? {};
  const owned = claimed.source === "local" && !claimed.readOnly && fsGroup !== undefined;
  mounts.set(v.name, {
    ...claimed,
    path,
    volume: v.name,
    subPaths: [],
    ...(owned
      ? {
        fsGroup: {
          gid: fsGroup,
          changePolicy: fsGroupChangePolicy === "OnRootMismatch" ? "OnRootMismatch" : "Always",
        },
      }
      : {}),
  });
  return { hostPath: path, readOnly: claimed.readOnly, createsSubPaths: false };
}

function emptyDirVolume(p: Planning, v: V1Volume): VolumeSource {
  const { medium = "", sizeLimit } = v.emptyDir!;
  const path = p.volumeDir("emptydir", v.name);
  if (medium === "Memory") {
    let limit: number | undefined;
    if (sizeLimit !== undefined) {
      try {
        limit = Number(integerValue(parseQuantity(String(sizeLimit))));
      } catch (e) {
        if (!(e instanceof QuantityError)) throw e;
        throw fail(p.ctx, {
          what: `volume ${v.name}: emptyDir.sizeLimit: ${e.message}`,
          todo: "use a quantity such as 64Mi",
        });
      }
    }
    const sizeBytes = memoryVolumeSize(p.ctx, limit);
    p.entries.add({ kind: "tmpfs", path, sizeBytes, mode: 0o777, ...p.own });
  } else if (medium === "") {
    // sizeLimit on disk is enforced by kubelet eviction, which systemk does not do.
    p.entries.add({ kind: "dir", path, mode: 0o777, ...p.own });
  } else {
    throw fail(p.ctx, {
      what: `volume ${v.name}: emptyDir.medium "${medium}" is not supported`,
      todo: 'use "" or "Memory"',
    });
  }
  return { hostPath: path, readOnly: false, createsSubPaths: true };
}

/** configMap, secret, downwardAPI and projected volumes: files systemk writes. */
function fileVolume(p: Planning, v: V1Volume): VolumeSource {
  const { ctx } = p;
  const defaultMode = (mode: number | undefined) =>
    checkMode(ctx, `volume ${v.name}: defaultMode`, mode) ?? 0o644;
  // A configMap or secret volume, with its own defaultMode.
  type Source = Omit<KeySource, "volume" | "kind" | "defaultMode"> & { defaultMode?: number };
  const keys = (kind: SourceKind, source: Source) =>
    keyFiles(ctx, {
      ...source,
      volume: v.name,
      kind,
      defaultMode: defaultMode(source.defaultMode),
    });
  let kind: string;
  let files: FileSpec[];
  if (v.configMap) {
    kind = "configmap";
    files = keys("configMap", v.configMap);
  } else if (v.secret) {
    kind = "secret";
    files = keys("secret", { ...v.secret, name: v.secret.secretName });
  } else if (v.downwardAPI) {
    kind = "downwardapi";
    const d = v.downwardAPI;
    files = downwardFiles(ctx, v.name, d.items as DownwardItem[], defaultMode(d.defaultMode));
  } else if (v.projected) {
    kind = "projected";
    files = projectedFiles(ctx, v);
  } else {
    const type = Object.keys(v).filter((k) => k !== "name").join(", ") || "(none)";
    throw fail(ctx, {
      what: `volume ${v.name}: type ${type} is not supported by systemk`,
      todo: "use emptyDir, configMap, secret, downwardAPI, projected, hostPath or " +
        "persistentVolumeClaim",
    });
  }
  const dirMode = kind === "secret" || files.some((f) => f.sensitive) ? 0o750 : 0o755;
  const path = p.volumeDir(kind, v.name);
  // Managed: a key gone from the ConfigMap or Secret is a file gone from the volume.
  p.entries.add({ kind: "dir", path, mode: dirMode, ...p.own, managed: true });
  const fileSet = new Set<string>();
  const dirSet = new Set<string>();
  for (const f of files) {
    const problem = relativePathProblem(f.path);
    if (problem) {
      throw fail(ctx, {
        what: `volume ${v.name}: path "${f.path}" ${problem}`,
        todo: "use a relative path without '..'",
      });
    }
    const segments = f.path.split("/");
    for (let i = 1; i < segments.length; i++) {
      const dir = segments.slice(0, i).join("/");
      if (fileSet.has(dir)) throw clash(ctx, v.name, dir);
      dirSet.add(dir);
      p.entries.add({ kind: "dir", path: `${path}/${dir}`, mode: dirMode, ...p.own });
    }
    if (fileSet.has(f.path) || dirSet.has(f.path)) throw clash(ctx, v.name, f.path);
    fileSet.add(f.path);
    p.entries.add({
      kind: "file",
      path: `${path}/${f.path}`,
      content: f.content,
      mode: f.sensitive ? f.mode & 0o770 : f.mode,
      ...p.own,
      ...(f.sensitive ? { secret: true } : {}),
    });
  }
  return {
    hostPath: path,
    readOnly: true,
    createsSubPaths: false,
    contents: new Set([...dirSet, ...fileSet]),
  };
}

/**
 * Plans every volume of the pod.
 *
 * @throws PodError for unsupported volume types, missing required objects or keys, and
 *   unsafe names or paths.
 */
export function planVolumes(ctx: PodContext, owner: VolumeOwner): PlannedVolumes {
  const entries = new Entries();
  const rootOnly = (path: string) =>
    entries.add({ kind: "dir", path, mode: 0o700, uid: 0, gid: 0 });
  const p: Planning = {
    ctx,
    entries,
    own: { uid: owner.uid, gid: owner.gid },
    volumeDir(kind, name) {
      rootOnly(`${ctx.podDir}/volumes`);
      rootOnly(`${ctx.podDir}/volumes/${kind}`);
      return `${ctx.podDir}/volumes/${kind}/${name}`;
    },
  };
  const sources = new Map<string, VolumeSource>();
  const hostPathChecks: HostPathCheck[] = [];
  const claimMounts = new Map<string, ClaimMount>();
  const checkHostPath = (check: HostPathCheck) => {
    if (!hostPathChecks.some((c) => c.path === check.path && c.type === check.type)) {
      hostPathChecks.push(check);
    }
  };
  rootOnly(ctx.podDir);

  for (const v of ctx.spec.volumes ?? []) {
    const problem = relativePathProblem(v.name ?? "") ??
      (v.name.includes("/") ? "contains '/'" : undefined);
    if (problem) {
      throw fail(ctx, {
        what: `volume name "${v.name}" ${problem}`,
        todo: "use a DNS label as name",
      });
    }
    if (sources.has(v.name)) {
      throw fail(ctx, {
        what: `volume ${v.name} is declared twice`,
        todo: "give volumes unique names",
      });
    }
    const source = v.hostPath
      ? hostPathVolume(p, v, checkHostPath)
      : v.persistentVolumeClaim
      ? claimVolume(p, v, claimMounts)
      : v.emptyDir
      ? emptyDirVolume(p, v)
      : fileVolume(p, v);
    sources.set(v.name, source);
  }

  return {
    entries: entries.list,
    sources,
    hostPathChecks,
    claimMounts,
    add: (entry) => entries.add(entry),
    checkHostPath,
    subPathDirectory(source, subPath) {
      // The pod writes its emptyDir, so it could replace a subPath directory by a symlink,
      // which systemd follows when it binds the subPath at the unit's next start: to anywhere
      // on the host. So root owns the volume and its subPath directories, and the ones a
      // subPath passes through are sticky, like /tmp: a non-root pod can neither rename nor
      // remove them, and still writes everywhere (mode 0777).
      const guard = { uid: 0, gid: p.own.gid };
      const volume = entries.get(source.hostPath)!;
      entries.set({ ...volume, ...guard, mode: 0o1777 });
      const segments = subPath.split("/");
      for (let i = 1; i <= segments.length; i++) {
        const path = `${source.hostPath}/${segments.slice(0, i).join("/")}`;
        if (i < segments.length) entries.set({ kind: "dir", path, mode: 0o1777, ...guard });
        else entries.add({ kind: "dir", path, mode: 0o777, ...guard });
      }
      return `${source.hostPath}/${subPath}`;
    },
  };
}

function clash(ctx: PodContext, volume: string, path: string) {
  return fail(ctx, {
    what: `volume ${volume}: path "${path}" is produced twice (or as both file and directory)`,
    todo: "give the items distinct paths",
  });
}
