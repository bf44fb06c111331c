/**
 * The pure planner: a pod (plus its resolved ConfigMaps/Secrets, node facts and package
 * unit files) → the exact unit files and volume files to create.
 *
 * The pod gets a slice of its own (`systemk-pod<uid>.slice` under `systemk.slice`, named by
 * `podSliceName`): every container unit runs in it (`Slice=`), so the pod's CPU and memory are
 * the slice's, and pod-level `spec.resources` are its `CPUQuota=`/`MemoryMax=`/... (the same
 * mapping as a container's). Its `[X-Kubernetes]` section says whose it is.
 *
 * Unit shape, per container (one unit each, named by `unitName`):
 * - Lifecycle: init containers are `Type=oneshot`, `RemainAfterExit=yes`,
 *   `TimeoutStartSec=infinity`, `Restart=no`, each `Requires=`+`After=` the previous one; every
 *   app unit `Requires=`+`After=` the last init unit, so starting the app units pulls the whole
 *   chain in order and a failed init container fails them with `dependency` (the agent retries
 *   per restartPolicy). App units are `Restart=no`, `RemainAfterExit=yes` whatever the
 *   restartPolicy (an exited container keeps reporting its result): the agent restarts them
 *   per restartPolicy with the kubelet's crash-loop back-off (src/pods/crash_loop.ts).
 *   `StartLimitIntervalSec=0` (systemd's start rate limit never leaves a unit dead for good).
 * - Stopping: `KillMode=mixed` — SIGTERM to the main process only (what a container's PID 1
 *   gets), then after `TimeoutStopSec=` (terminationGracePeriodSeconds, default 30, at least
 *   the kubelet's minimum of 2 s since systemd reads 0 as "no timeout") SIGKILL to every
 *   process left in the unit's cgroup; once the main process exits the rest is killed too,
 *   so no process outlives the container.
 * - Sandbox: `ProtectSystem=strict` (the whole filesystem read-only — the seed's
 *   `ReadOnlyPaths=/` — except the API filesystems /dev, /proc, /sys, so /dev/shm keeps
 *   working; those are covered by `ProtectKernelTunables=`/`ProtectControlGroups=`),
 *   `ProtectHome=yes`, `PrivateTmp=yes`, and `TemporaryFileSystem=<stateDir>`, which hides
 *   every pod's volume files; the pod's own volumes come back only as `BindPaths=` (read-write)
 *   / `BindReadOnlyPaths=` at their mountPaths (systemd resolves bind sources on the host, so
 *   the tmpfs does not hide them). /run and /var stay visible (read-only): journald's syslog
 *   socket and resolv.conf live there. Other pods' units are hidden: `InaccessiblePaths=` over
 *   systemd's runtime and transient unit directories and, unless the container runs as root,
 *   the D-Bus system bus (every unit's properties are readable there); `ProtectProc=invisible`
 *   hides other users' processes. Output goes to the journal.
 * - Packaged daemons: their unit's working settings are kept (see exec.ts: Type=, User=,
 *   ExecStartPre=, StateDirectory=-style directories, ReadWritePaths=, Environment= ...), and
 *   `/var/lib/<pkg>`, `/var/cache/<pkg>`, `/var/log/<pkg>`, `/var/spool/<pkg>` are made
 *   writable when they exist (`ReadWritePaths=-…`: no creation, no chown of package files).
 * - Environment: all of it in a root-only `<podDir>/env/<container>.env` (`EnvironmentFile=`),
 *   none in the unit or in systemd's properties; a Secret-derived `$(VAR)` in command/args is
 *   written as `${VAR}`, which systemd fills in from that file at start.
 * - `readOnlyRootFilesystem`: none of those writable directories (the package's included);
 *   only read-write volumes and the private /tmp stay writable.
 * - `privileged`: no ProtectSystem/ProtectHome/ProtectKernelTunables/ProtectControlGroups/
 *   ProtectProc, no capability restriction, no NoNewPrivileges, the system bus: the host as a
 *   root daemon sees it. Other pods' volumes and unit files stay hidden and /tmp private.
 *
 * @module
 */
import { createHash } from "node:crypto";
import type { V1Container } from "@kubernetes/client-node";
import {
  bindPath,
  environmentAssignment,
  escapeSpecifiers,
  metadataSection,
  parseUnit,
  pathValue,
  podMetadataSection,
  podSliceName,
  serializeUnit,
  temporaryFileSystemValue,
  type UnitFile,
  unitName,
  UnitValueError,
  workingDirectoryValue,
} from "../unit/mod.ts";
import { DEFAULT_STATE_DIR, fail, type PodContext, podDirectory } from "./_context.ts";
import { PodError } from "../pod_error.ts";
import { allContainers, type ContainerKind } from "./containers.ts";
import { POD, shapeProblem } from "./_shape.ts";
import {
  containerEnvironment,
  environmentFile,
  type EnvValue,
  expandArguments,
  expandWords,
} from "./env.ts";
import {
  CommandError,
  execStart,
  keptServiceDirectives,
  PACKAGE_CAPABILITY_KEYS,
  packageCommands,
  WRITABLE_KEYS,
} from "./exec.ts";
import type { ServiceSetting } from "./enter.ts";
import { enteredSettings, ephemeralProblem } from "./ephemeral.ts";
import {
  containerResources,
  podResources,
  RESOURCE_KEYS,
  resourceDirectives,
} from "./resources.ts";
import { type EffectiveSecurity, effectiveSecurity, packageAccounts } from "./security.ts";
import {
  type PlannedVolumes,
  planVolumes,
  relativePathProblem,
  simplifiedAbsolutePath,
  subPathPin,
  type VolumeOwner,
} from "./volumes.ts";
import type {
  PackageInfo,
  PlanInput,
  PlannedSlice,
  PlannedUnit,
  PodIds,
  PodPlan,
  TargetContainer,
  UnplannedContainer,
} from "./types.ts";

export { DEFAULT_STATE_DIR, podDirectory };
/** Kubernetes' default `terminationGracePeriodSeconds`. */
export const DEFAULT_GRACE_SECONDS = 30;
/** The kubelet never gives a container less than this to stop (`minimumGracePeriodInSeconds`). */
export const MINIMUM_GRACE_SECONDS = 2;

type Directive = [string, string];

/** Where systemd keeps unit files of its own writing: runtime units (systemk's) and transient. */
const HIDDEN_PATHS = ["/run/systemd/system", "/run/systemd/transient"];
/** The D-Bus system bus, through which any local user reads every unit's properties. */
const SYSTEM_BUS = "/run/dbus/system_bus_socket";

/**
 * Runs a unit-module encoder, turning its UnitValueError into a PodError naming `field`. With
 * `secret` (the value holds Secret data) the encoder's message, which quotes the value, is left
 * out: PodError messages become the pod's status and Events, readable without Secret access.
 */
function encode<T>(
  ctx: PodContext,
  container: string | undefined,
  field: string,
  f: () => T,
  secret = false,
): T {
  try {
    return f();
  } catch (e) {
    if (!(e instanceof UnitValueError)) throw e;
    const why = secret ? "(the reason is withheld: the value holds Secret data)" : e.message;
    throw fail(ctx, {
      container,
      what: `${field} cannot be written into a systemd unit: ${why}`,
      todo: `change ${field}`,
    });
  }
}

function podContext(input: PlanInput): PodContext {
  const pod = input.pod;
  const problem = shapeProblem(pod, POD, { path: "pod" });
  // Only strings name the pod in messages, whatever else is wrong with it.
  const text = (value: unknown) => typeof value === "string" ? value : "";
  const namespace = text(pod.metadata?.namespace) || "default";
  const name = text(pod.metadata?.name);
  const uid = text(pod.metadata?.uid);
  const stateDir = input.stateDir ?? DEFAULT_STATE_DIR;
  const ctx: PodContext = {
    input,
    pod,
    spec: (problem ? undefined : pod.spec) ?? { containers: [] },
    namespace,
    name,
    uid,
    stateDir,
    podDir: podDirectory(stateDir, uid),
  };
  if (problem) throw fail(ctx, { what: problem, todo: "fix the manifest" });
  if (name === "") throw fail(ctx, { what: "metadata.name is empty", todo: "name the pod" });
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(uid)) {
    throw fail(ctx, {
      what: `metadata.uid "${uid}" is missing or not a UID`,
      todo: "plan pods as the API server returns them (with metadata.uid)",
    });
  }
  if (!ctx.spec.containers?.length) {
    throw fail(ctx, { what: "spec.containers is empty", todo: "add a container" });
  }
  const names = new Set<string>();
  for (const { container } of allContainers(ctx.spec)) {
    if (names.has(container.name)) {
      throw fail(ctx, {
        container: container.name,
        what: "container name is used twice",
        todo: "give containers unique names",
      });
    }
    names.add(container.name);
  }
  return ctx;
}

/** Reads the package's unit with `read`; what it cannot read fails the container. */
function fromPackageUnit<T>(
  ctx: PodContext,
  container: string,
  pkg: PackageInfo | undefined,
  read: () => T,
): T {
  try {
    return read();
  } catch (e) {
    throw fail(ctx, {
      container,
      what: `the unit file ${pkg?.unitName ?? ""} of package ${pkg?.name ?? ""} cannot be used: ` +
        (e as Error).message,
      todo: "fix the package or give command and args",
      reason: "CreateContainerError",
    });
  }
}

/** The package unit parsed, or undefined (synthesized unit). */
function packageUnit(ctx: PodContext, container: string, pkg: PackageInfo | undefined) {
  const text = pkg?.unitText;
  if (text === undefined) return undefined;
  return fromPackageUnit(ctx, container, pkg, () => parseUnit(text));
}

/**
 * Why a package image has no unit to take `ExecStart=` from: none named after the package was
 * installed, and what it ships is not one service alone (undefined for a path image).
 */
function missingUnit(pkg: PackageInfo | undefined): string | undefined {
  if (pkg?.name === undefined) return undefined;
  const shipped = pkg.shippedUnits ?? [];
  const found = shipped.length > 0 ? `it ships ${shipped.join(", ")}` : "it ships no unit";
  return `package ${pkg.name} has no unit ${pkg.name}.service to take ExecStart from (${found}), ` +
    "and no command is given";
}

function lastValue(unit: UnitFile | undefined, key: string): string | undefined {
  let value: string | undefined;
  for (const s of unit?.sections ?? []) {
    if (s.name !== "Service") continue;
    for (const l of s.lines) if (l.kind === "directive" && l.key === key) value = l.value;
  }
  return value;
}

/**
 * Volume owner: the user all containers run as, when they agree; root otherwise. `fsGroup`,
 * when set, is the group (as in Kubernetes, where volumes belong to the fsGroup).
 */
function volumeOwner(ctx: PodContext, security: EffectiveSecurity[]): VolumeOwner {
  const [first] = security;
  const same = security.every((s) => s.uid === first.uid && s.gid === first.gid);
  const owner = same ? { uid: first.uid, gid: first.gid } : { uid: 0, gid: 0 };
  const fsGroup = ctx.spec.securityContext?.fsGroup;
  return fsGroup === undefined ? owner : { uid: owner.uid, gid: fsGroup };
}

function mountDirectives(
  ctx: PodContext,
  container: V1Container,
  env: ReadonlyMap<string, EnvValue>,
  volumes: PlannedVolumes,
): Directive[] {
  const out: Directive[] = [];
  const seen = new Set<string>();
  for (const [index, m] of (container.volumeMounts ?? []).entries()) {
    const field = `volumeMounts[${m.name}]`;
    const source = volumes.sources.get(m.name);
    if (!source) {
      throw fail(ctx, {
        container: container.name,
        what: `${field}: no volume named "${m.name}"`,
        todo: "declare it in spec.volumes",
      });
    }
    // Compared as systemd will read it: `/data/` and `/data` are one mount point, `//` is `/`.
    const mountPath = simplifiedAbsolutePath(m.mountPath);
    if (mountPath === undefined || mountPath === "/") {
      throw fail(ctx, {
        container: container.name,
        what: `${field}.mountPath ${JSON.stringify(m.mountPath)} is not an absolute path below / ` +
          "without '..'",
        todo: "use an absolute path such as /data",
      });
    }
    if (seen.has(mountPath)) {
      throw fail(ctx, {
        container: container.name,
        what: `${field}.mountPath ${m.mountPath} is used twice`,
        todo: "mount each path once",
      });
    }
    seen.add(mountPath);
    const expanded = m.subPathExpr !== undefined
      ? expandWords([m.subPathExpr], env)
      : { words: [m.subPath ?? ""], secret: false };
    const [subPath] = expanded.words;
    // Quoted in messages unless it expanded Secret data (messages become status and Events).
    const shown = expanded.secret ? "(expanded from Secret data)" : JSON.stringify(subPath);
    let hostPath = source.hostPath;
    if (subPath !== "") {
      const problem = relativePathProblem(subPath);
      if (problem) {
        throw fail(ctx, {
          container: container.name,
          what: `${field}.subPath ${shown} ${problem}`,
          todo: "use a relative path inside the volume",
        });
      }
      if (source.createsSubPaths) {
        hostPath = volumes.subPathDirectory(source, subPath);
      } else if (source.contents && !source.contents.has(subPath)) {
        throw fail(ctx, {
          container: container.name,
          what: `${field}.subPath ${shown} does not exist in volume ${m.name}`,
          todo: "use a key or item path of the volume",
        });
      } else {
        hostPath = `${source.hostPath}/${subPath}`;
        // The pod may plant a symlink there: checked again on the node, resolved.
        if (source.onHost) volumes.checkHostPath({ volume: m.name, path: hostPath, type: "" });
        // A claim's subPath is made, checked and pinned on the node before the units start.
        const claim = volumes.claimMounts.get(m.name);
        if (claim) {
          const pin = { volume: m.name, container: container.name, index };
          hostPath = subPathPin(ctx.podDir, pin);
          claim.subPaths.push({ path: subPath, mountPoint: hostPath });
        }
      }
    }
    const readOnly = source.readOnly || m.readOnly === true;
    const value = encode(
      ctx,
      container.name,
      `${field}.mountPath`,
      () => bindPath(hostPath, m.mountPath),
      expanded.secret,
    );
    out.push([readOnly ? "BindReadOnlyPaths" : "BindPaths", value]);
  }
  return out;
}

/**
 * The container's whole environment in a root-only `<podDir>/env/<container>.env`, read through
 * `EnvironmentFile=`: unit files and systemd's properties (`Environment`, readable by any local
 * user over D-Bus) then hold none of it. It comes after any `EnvironmentFile=` of the package,
 * so the pod's values win, as in Kubernetes.
 */
function environmentDirectives(
  ctx: PodContext,
  container: string,
  env: ReadonlyMap<string, EnvValue>,
  volumes: PlannedVolumes,
): Directive[] {
  const variables: [string, string][] = [];
  let secret = false;
  for (const [k, v] of env) {
    // Validates name and value with the unit module's rules.
    encode(ctx, container, `env ${k}`, () => environmentAssignment(k, v.value));
    variables.push([k, v.value]);
    secret ||= v.secret;
  }
  if (variables.length === 0) return [];
  const dir = `${ctx.podDir}/env`;
  const path = `${dir}/${container}.env`;
  volumes.add({ kind: "dir", path: dir, mode: 0o700, uid: 0, gid: 0 });
  volumes.add({
    kind: "file",
    path,
    content: new TextEncoder().encode(environmentFile(variables)),
    mode: 0o600,
    uid: 0,
    gid: 0,
    ...(secret ? { secret: true } : {}),
  });
  // EnvironmentFile= takes the rest of the line unquoted, as WorkingDirectory= does.
  return [[
    "EnvironmentFile",
    encode(ctx, container, "stateDir", () => workingDirectoryValue(path)),
  ]];
}

function restartDirectives(ctx: PodContext, kind: ContainerKind): Directive[] {
  if (kind === "init") {
    return [["Restart", "no"], ["RemainAfterExit", "yes"], ["TimeoutStartSec", "infinity"]];
  }
  const policy = ctx.spec.restartPolicy ?? "Always";
  // The agent restarts app containers and sidecars itself, with the kubelet's back-off (systemd
  // 252 has no RestartSteps=): systemd only runs each start and keeps its result visible.
  if (policy === "Always" || policy === "OnFailure" || policy === "Never") {
    return [["Restart", "no"], ["RemainAfterExit", "yes"]];
  }
  throw fail(ctx, {
    what: `restartPolicy "${policy}" is unknown`,
    todo: "use Always, OnFailure or Never",
  });
}

function stopDirectives(ctx: PodContext): Directive[] {
  const grace = ctx.spec.terminationGracePeriodSeconds ?? DEFAULT_GRACE_SECONDS;
  if (!Number.isSafeInteger(grace) || grace < 0) {
    throw fail(ctx, {
      what: `terminationGracePeriodSeconds ${
        JSON.stringify(grace)
      } is not a whole number of seconds`,
      todo: "use an integer of 0 or more",
    });
  }
  return [
    ["TimeoutStopSec", String(Math.max(grace, MINIMUM_GRACE_SECONDS))],
    ["KillMode", "mixed"],
    ["KillSignal", "SIGTERM"],
    ["SendSIGKILL", "yes"],
    ["FinalKillSignal", "SIGKILL"],
  ];
}

function sandboxDirectives(
  ctx: PodContext,
  container: string,
  security: EffectiveSecurity,
  pkg: PackageInfo | undefined,
): Directive[] {
  const out: Directive[] = [];
  const relaxed = security.privileged && !security.readOnlyRootFilesystem;
  if (security.noNewPrivileges) out.push(["NoNewPrivileges", "yes"]);
  if (security.boundingSet !== undefined) out.push(["CapabilityBoundingSet", security.boundingSet]);
  if (!relaxed) out.push(["ProtectSystem", "strict"]);
  if (!security.privileged) {
    out.push(
      ["ProtectHome", "yes"],
      ["ProtectKernelTunables", "yes"],
      ["ProtectControlGroups", "yes"],
      // A /dev of pseudo devices only (null, zero, random, tty, pts, shm): no disk, no /dev/mem,
      // whatever groups the container has; with DevicePolicy=closed, no device node elsewhere.
      ["PrivateDevices", "yes"],
    );
  }
  out.push(["PrivateTmp", "yes"]);
  out.push([
    "TemporaryFileSystem",
    encode(ctx, container, "stateDir", () => temporaryFileSystemValue(ctx.stateDir)),
  ]);
  // Other pods' units: their files (systemd reads them as root), the exec helper's transient
  // units and, for a non-root user, systemd's properties of all units over the system bus
  // (root's packaged daemons may need the bus; root reads all of it anyway). /proc of other
  // users' processes (command lines, environments) is hidden too.
  const hidden = [
    ...HIDDEN_PATHS,
    ...(security.privileged || security.uid === 0 ? [] : [SYSTEM_BUS]),
  ];
  out.push(["InaccessiblePaths", hidden.map((path) => `-${pathValue(path)}`).join(" ")]);
  if (!security.privileged) out.push(["ProtectProc", "invisible"]);
  if (pkg?.name && !security.readOnlyRootFilesystem && !relaxed) {
    const paths = ["lib", "cache", "log", "spool"].map((dir) =>
      "-" + encode(ctx, container, "image", () => pathValue(`/var/${dir}/${pkg.name}`))
    );
    out.push(["ReadWritePaths", paths.join(" ")]);
  }
  return out;
}

/** `%t` → `/run`, `%%` → `%`; undefined for any other specifier (it depends on the unit). */
function runtimePath(value: string): string | undefined {
  let unknown = false;
  const path = value.replace(/%(.?)/gs, (_m, c: string) => {
    if (c === "t") return "/run";
    if (c === "%") return "%";
    unknown = true;
    return "";
  });
  return unknown ? undefined : path;
}

/**
 * The package daemon's `PIDFile=`, made to work in the sandbox: the daemon writes it there,
 * where /run is read-only, and systemd reads it on the host. So a file of the pod's own,
 * writable by the container's user, is bound at the path the daemon writes, and `PIDFile=`
 * names that file: each pod's daemon has its own, and the host's /run stays untouched.
 * Undefined when the package unit has no `PIDFile=` (or one with other specifiers than `%t`).
 */
function pidFileDirectives(
  ctx: PodContext,
  container: string,
  security: EffectiveSecurity,
  kept: Directive[],
  volumes: PlannedVolumes,
): { pidFile: Directive; bind: Directive } | undefined {
  const written = kept.findLast(([k]) => k === "PIDFile")?.[1];
  const path = written === undefined ? undefined : runtimePath(written.trim());
  if (path === undefined || simplifiedAbsolutePath(path) === undefined) return undefined;
  const dir = `${ctx.podDir}/pidfiles`;
  const file = `${dir}/${container}.pid`;
  volumes.add({ kind: "dir", path: dir, mode: 0o700, uid: 0, gid: 0 });
  volumes.add({
    kind: "file",
    path: file,
    content: new Uint8Array(),
    mode: 0o644,
    uid: security.uid,
    gid: security.gid,
    preserve: true,
  });
  return {
    pidFile: ["PIDFile", encode(ctx, container, "stateDir", () => workingDirectoryValue(file))],
    bind: ["BindPaths", encode(ctx, container, "PIDFile", () => bindPath(file, path))],
  };
}

function stableJSON(value: unknown): string {
  return JSON.stringify(
    value,
    (_k, v) =>
      v && typeof v === "object" && !Array.isArray(v) && !(v instanceof Date)
        ? Object.fromEntries(Object.keys(v).sort().map((k) => [k, v[k]]))
        : v,
  );
}

interface ContainerPlanning {
  container: V1Container;
  kind: ContainerKind;
  unitName: string;
  /** The pod's slice, which the unit runs in. */
  slice: string;
  index: number;
  /** The regular init container this one Requires= (and runs After=). */
  requires?: string;
  /** Units this one runs After= besides: the sidecars before it. */
  after: string[];
  security: EffectiveSecurity;
  /** The running container an ephemeral container enters (its `targetContainerName`). */
  target?: TargetContainer;
  unit?: UnitFile;
  pkg?: PackageInfo;
}

/** A kind of container as unit descriptions name it. */
const DESCRIBED: Record<ContainerKind, string> = {
  init: "init container",
  sidecar: "sidecar container",
  app: "container",
  ephemeral: "ephemeral container",
};

/** A raw service setting written into a unit file: its value escaped as systemd reads it. */
function unitSetting(ctx: PodContext, container: string, [key, value]: ServiceSetting): Directive {
  const field = "the target container's settings";
  if (key === "RootDirectory") return [key, encode(ctx, container, field, () => pathValue(value))];
  if (key === "WorkingDirectory" && (value.startsWith("/") || value.startsWith("-/"))) {
    const optional = value.startsWith("-") ? "-" : "";
    return [
      key,
      optional +
      encode(ctx, container, field, () => workingDirectoryValue(value.slice(optional.length))),
    ];
  }
  return [key, escapeSpecifiers(value)];
}

function planContainer(
  ctx: PodContext,
  p: ContainerPlanning,
  volumes: PlannedVolumes,
): PlannedUnit {
  const { container, kind, security, target } = p;
  const name = container.name;
  const init = kind === "init" || kind === "sidecar";
  const env = containerEnvironment(ctx, container);
  const command = expandArguments(container.command ?? [], env);
  const args = expandArguments(container.args ?? [], env);
  const refersToSecrets = [...command, ...args].some((word) => typeof word !== "string");
  const packageUnitFile = p.unit;
  const packaged = packageUnitFile
    ? fromPackageUnit(ctx, name, p.pkg, () => packageCommands(packageUnitFile))
    : undefined;
  let execStarts: string[];
  try {
    execStarts = encode(
      ctx,
      name,
      "command/args",
      () => execStart({ command, args }, packaged),
      refersToSecrets,
    );
  } catch (e) {
    if (!(e instanceof CommandError)) throw e;
    throw fail(ctx, {
      container: name,
      what: packaged ? e.message : (missingUnit(p.pkg) ?? e.message),
      todo: e.todo,
    });
  }

  // Sidecars always restart; app containers as the pod says; ephemeral containers never.
  const restartsAlways = kind === "sidecar" ||
    (kind === "app" && (ctx.spec.restartPolicy ?? "Always") === "Always");
  let type = kind === "init"
    ? "oneshot"
    : (lastValue(p.unit, "Type") ?? (p.unit ? undefined : "exec"));
  // systemd refuses Restart=always for oneshot services; a long-running container is not one.
  if (kind !== "init" && type === "oneshot" && restartsAlways) {
    if (execStarts.length > 1) {
      throw fail(ctx, {
        container: name,
        what: "the package's oneshot unit has several ExecStart lines, which cannot restart always",
        todo: kind === "sidecar"
          ? "give command (a sidecar always restarts)"
          : "use restartPolicy OnFailure or Never, or give command",
      });
    }
    type = "exec";
  }

  // A container entering its target keeps nothing of the package's unit but its command: the
  // package's identity, directories and sandbox would set up a namespace of their own.
  const kept = packageUnitFile && !target
    ? fromPackageUnit(ctx, name, p.pkg, () => keptServiceDirectives(packageUnitFile)).filter((
      [k],
    ) =>
      k !== "Type" &&
      !(security.podSetsUser && k === "User") &&
      !(security.podSetsGroup && k === "Group") &&
      !(security.podSetsUser && k === "SupplementaryGroups") &&
      !(security.podSetsCapabilities && PACKAGE_CAPABILITY_KEYS.has(k)) &&
      !(security.readOnlyRootFilesystem && WRITABLE_KEYS.has(k)) &&
      !(container.workingDir && k === "WorkingDirectory") &&
      !(kind === "init" && k === "TimeoutStartSec")
    )
    : [];

  const pidFile = pidFileDirectives(ctx, name, security, kept, volumes);
  const service: Directive[] = [];
  if (type) service.push(["Type", type]);
  service.push(...kept.filter(([k]) => !pidFile || k !== "PIDFile"));
  if (pidFile) service.push(pidFile.pidFile);
  if (target) {
    service.push(
      ...enteredSettings(container, { security, target }).map((s) => unitSetting(ctx, name, s)),
    );
  } else {
    if (security.user !== undefined) service.push(["User", security.user]);
    if (security.group !== undefined) service.push(["Group", security.group]);
    if (security.supplementaryGroups.length > 0) {
      service.push(["SupplementaryGroups", security.supplementaryGroups.join(" ")]);
    }
  }
  if (container.workingDir) {
    service.push([
      "WorkingDirectory",
      encode(ctx, name, "workingDir", () => workingDirectoryValue(container.workingDir!)),
    ]);
  }
  service.push(...environmentDirectives(ctx, name, env, volumes));
  for (const line of execStarts) service.push(["ExecStart", line]);
  service.push(...restartDirectives(ctx, kind), ...stopDirectives(ctx));
  service.push(["Slice", p.slice]);
  // The target's namespace is the sandbox of a container entering it (see ephemeral.ts).
  if (!target) {
    service.push(...resourceDirectives(containerResources(ctx, container)));
    service.push(...sandboxDirectives(ctx, name, security, p.pkg));
    service.push(...mountDirectives(ctx, container, env, volumes));
    if (pidFile) service.push(pidFile.bind);
  }
  service.push(["StandardOutput", "journal"], ["StandardError", "journal"]);

  const image = container.image ?? "";
  const unitSection: Directive[] = [
    ["Description", escapeSpecifiers(`${ctx.namespace}/${ctx.name} ${DESCRIBED[kind]} ${name}`)],
    ["StartLimitIntervalSec", "0"],
  ];
  if (p.requires) unitSection.push(["Requires", p.requires]);
  for (const unit of [...(p.requires ? [p.requires] : []), ...p.after]) {
    unitSection.push(["After", unit]);
  }

  const body: UnitFile = {
    header: [],
    sections: [toSection("Unit", unitSection), toSection("Service", service)],
  };
  // What the container runs with: its spec, the unit (sandbox, mounts, command) and the
  // resolved environment — except Secret values: a hash of one would let whoever reads the
  // unit (root only, 0600, but also backups and bug reports) test guesses against it; like the
  // kubelet, a changed Secret takes effect when the container next restarts. Its
  // resources are left out (its spec's, the unit's cgroup settings, the variables of
  // resourceFieldRef), as the kubelet's container hash leaves them out: an in-place resize
  // changes them without a new container; the unit records them in `Resources=`.
  const { resources: _resources, resizePolicy: _policy, ...rest } = container;
  const fromResources = new Set(
    (container.env ?? []).filter((e) => e.valueFrom?.resourceFieldRef).map((e) => e.name),
  );
  const publicEnv = [...env].map((
    [k, v],
  ) => [k, v.secret || fromResources.has(k) ? null : v.value]);
  const unresourced: UnitFile = {
    header: [],
    sections: body.sections.map((section) => ({
      ...section,
      lines: section.lines.filter((l) => l.kind !== "directive" || !RESOURCE_KEYS.has(l.key)),
    })),
  };
  const containerHash = createHash("sha256")
    .update(stableJSON(rest))
    .update("\n")
    .update(serialize(ctx, name, unresourced))
    .update("\n")
    .update(JSON.stringify(publicEnv))
    .digest("hex");
  const unit: UnitFile = {
    header: [],
    sections: [
      ...body.sections,
      metadataSection({
        namespace: ctx.namespace,
        podName: ctx.name,
        podUID: ctx.uid,
        containerName: name,
        init,
        image,
        nodeName: ctx.input.node.name,
        containerHash,
        index: p.index,
        resources: JSON.stringify(container.resources ?? {}),
      }),
    ],
  };
  return {
    name: p.unitName,
    container: name,
    init,
    kind,
    unit,
    text: serialize(ctx, name, unit),
  };
}

function toSection(name: string, directives: Directive[]) {
  return {
    name,
    lines: directives.map(([key, value]) => ({ kind: "directive" as const, key, value })),
  };
}

function serialize(ctx: PodContext, container: string | undefined, unit: UnitFile): string {
  return encode(ctx, container, "the pod's names or image", () => serializeUnit(unit));
}

/** The pod's slice: its identity, and the pod-level `spec.resources` as cgroup limits. */
function planSlice(ctx: PodContext): PlannedSlice {
  const name = encode(ctx, undefined, "metadata.uid", () => podSliceName(ctx.uid));
  const limits = resourceDirectives(podResources(ctx));
  const unit: UnitFile = {
    header: [],
    sections: [
      toSection("Unit", [["Description", escapeSpecifiers(`${ctx.namespace}/${ctx.name} pod`)]]),
      ...(limits.length > 0 ? [toSection("Slice", limits)] : []),
      podMetadataSection({
        namespace: ctx.namespace,
        podName: ctx.name,
        podUID: ctx.uid,
        nodeName: ctx.input.node.name,
      }),
    ],
  };
  return { name, unit, text: serialize(ctx, undefined, unit) };
}

/**
 * Plans a pod: its units (init containers in order, then app containers, then ephemeral
 * containers) and volume entries (parents before children).
 *
 * Init containers run in order: each regular one `Requires=`+`After=` the regular one before it,
 * so starting a later unit pulls the chain in; a sidecar (init container with `restartPolicy:
 * Always`) is a long-running service that nothing `Requires=` (restarting it must not stop the
 * others): the runtime starts it, waits until it has started, then starts what comes after it,
 * which runs `After=` it (so that systemd, too, stops sidecars after what follows them). App
 * units require the last regular init container. Ephemeral containers depend on nothing; one
 * that cannot be planned (see ephemeral.ts, or any PodError of its own) is left out and listed
 * in `unplanned`, the rest of the pod unaffected.
 *
 * @throws PodError with a Kubernetes reason (`CreateContainerConfigError`, ...) and a message
 *   naming the pod, the container and what to do.
 */
export function planPod(input: PlanInput): PodPlan {
  const ctx = podContext(input);
  const slice = planSlice(ctx);
  const counters = { init: 0, app: 0, ephemeral: 0 };
  const described = allContainers(ctx.spec).map(({ container, kind }) => ({
    container,
    kind,
    index: counters[kind === "sidecar" ? "init" : kind]++,
  }));
  // A container's package: its unit and the identity that unit gives.
  const packaged = (container: V1Container) => {
    const pkg = input.packages.get(container.name);
    const unit = packageUnit(ctx, container.name, pkg);
    return {
      pkg,
      unit,
      identity: { user: lastValue(unit, "User"), group: lastValue(unit, "Group") },
    };
  };
  const regular = described.filter((c) => c.kind !== "ephemeral")
    .map((c) => ({ ...c, ...packaged(c.container) }));
  // Ephemeral containers come and go after the pod started: the pod's accounts (and volumes'
  // owner) are its other containers', or adding one would change (and restart) them.
  const accounts = packageAccounts(ctx, regular.map((c) => c.identity));
  const prepare = (
    c: { container: V1Container; kind: ContainerKind; index: number } & ReturnType<typeof packaged>,
  ): ContainerPlanning => ({
    container: c.container,
    kind: c.kind,
    unitName: encode(
      ctx,
      c.container.name,
      "the namespace, pod name or container name",
      () => unitName(ctx, c.container.name),
    ),
    slice: slice.name,
    index: c.index,
    after: [],
    security: effectiveSecurity(ctx, c.container, { own: c.identity, pod: accounts }),
    unit: c.unit,
    pkg: c.pkg,
  });
  const planning = regular.map(prepare);
  const volumes = planVolumes(ctx, volumeOwner(ctx, planning.map((p) => p.security)));
  const units: PlannedUnit[] = [];
  let lastInit: string | undefined;
  const sidecars: string[] = [];
  for (const p of planning) {
    units.push(planContainer(ctx, { ...p, requires: lastInit, after: [...sidecars] }, volumes));
    if (p.kind === "init") lastInit = p.unitName;
    if (p.kind === "sidecar") sidecars.push(p.unitName);
  }
  const unplanned: UnplannedContainer[] = [];
  const security = planning.map((p) => p.security);
  for (const c of described.filter((c) => c.kind === "ephemeral")) {
    const problem = ephemeralProblem(ctx, c.container);
    if (problem) {
      unplanned.push(problem);
      continue;
    }
    try {
      const p = prepare({ ...c, ...packaged(c.container) });
      const target = input.targets?.get(c.container.name);
      units.push(planContainer(ctx, { ...p, target }, volumes));
      security.push(p.security);
    } catch (e) {
      if (!(e instanceof PodError)) throw e;
      const { reason, message } = e;
      unplanned.push({ container: c.container.name, reason, message, retry: false });
    }
  }
  return {
    podDir: ctx.podDir,
    slice,
    units,
    unplanned,
    volumes: volumes.entries,
    hostPathChecks: volumes.hostPathChecks,
    claimMounts: [...volumes.claimMounts.values()],
    podIds: podIdsOf(security),
  };
}

/** Every pod id some container runs with, each once, in ascending order. */
function podIdsOf(security: EffectiveSecurity[]): PodIds {
  const union = (lists: number[][]) => [...new Set(lists.flat())].sort((a, b) => a - b);
  return {
    users: union(security.map((s) => s.podIds.users)),
    groups: union(security.map((s) => s.podIds.groups)),
  };
}
