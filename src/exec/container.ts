/**
 * Running a command inside a running container, as `kubectl exec` and `exec` probes and hooks
 * need: with the container's user, groups, environment, working directory, view of the files
 * (its private /tmp, its hidden state directory, its volume mounts) and privilege limits.
 *
 * How (systemd 252, util-linux 2.38; no FFI, so no setns/pty of systemk's own):
 * - The container's settings are read from systemd over D-Bus (its `Service` properties), the
 *   authority on what the container runs with, package unit settings included.
 * - The command runs as the main process of its own transient service,
 *   `systemd-run --pipe --wait --unit=systemk-exec-<uuid>`: stopping that unit kills everything
 *   the command started, `RuntimeMaxSec=` enforces the timeout even should systemk die, and
 *   `KillSignal=SIGKILL` kills what the command leaves behind once it exits. The name is
 *   outside systemk's `systemk.*` pattern, so adoption and change following never see it.
 * - Nothing of the container's runs, and nothing of its files is read, while privileged:
 *   systemd itself gives the transient unit the container's `User=`, `Group=` and
 *   `SupplementaryGroups=` (resolved on the host, by the very code that resolved them for the
 *   container), its capability sets, `UMask=` and `NoNewPrivileges=` (also where systemd only
 *   implies it for the container), and `RootDirectory=/proc/<main PID>/root`: systemd's own
 *   code, already running as root, changes the root to the container's (the root of its mount
 *   namespace, whose mounts — private /tmp, volumes, hidden state directory, read-only
 *   system — path lookups then follow), drops privileges and only then executes the command.
 *   `MountAPIVFS=no` keeps systemd from setting up a mount namespace of its own for that.
 *   These settings come from src/plan/enter.ts, which ephemeral containers with a target use too.
 * - systemd hands the container's `Environment=` (`--setenv`, taken literally) and
 *   `EnvironmentFile=` (read by systemd itself, as for the container: Secret values never appear
 *   on a command line) to the command alone: no privileged process sees them. The command is
 *   looked up in the container's `PATH` by its `/bin/sh`, already as the container's user.
 * - A TTY comes from util-linux `script` (the container's, as its user), which runs the rest on
 *   a pseudo-terminal. Its size is set with `stty` on the terminal before the command starts;
 *   the terminal's path is reported on the unit's standard error (unused otherwise: the
 *   command's output all goes to the terminal), and a resize is one more short transient unit,
 *   with the same identity, running `stty -F <tty>`: the kernel then sends SIGWINCH to the
 *   terminal's foreground process group.
 * - Every word systemd receives as the command has `$` doubled: systemd 252 expands `$VAR` in
 *   the command lines of transient units too (`systemd-run --expand-environment=` came later).
 *
 * @module
 */
import { identitySettings, rootSettings, type ServiceSetting } from "../plan/enter.ts";
import type { TargetContainer } from "../plan/types.ts";
import { isNoSuchUnit } from "../systemd/client.ts";
import type { SystemdClient } from "../systemd/client.ts";
import { runCommand, spawnProcess } from "../process/mod.ts";

/** What to run, and how. */
export interface ExecOptions {
  command: string[];
  /**
   * Absent: /dev/null; with a tty, a terminal that never delivers input (as a container's
   * terminal without stdin: /dev/null would make `script` send end-of-file to the command).
   */
  stdin?: ReadableStream<Uint8Array>;
  /** Allocate a pseudo-terminal of this size. */
  tty?: TerminalSize;
  /** Enforced: everything the command started is killed once it is over. */
  timeoutMs?: number;
}

/** A terminal size. */
export interface TerminalSize {
  rows: number;
  columns: number;
}

/** How a command ended. */
export interface ExecStatus {
  /** The exit code; null when killed by a signal. */
  exitCode: number | null;
  /** The signal that killed it (`SIGKILL`), or null. */
  signal: string | null;
  /** It ran longer than `timeoutMs` and was killed. */
  timedOut: boolean;
}

/** A command running in a container. */
export interface ExecProcess {
  stdout: ReadableStream<Uint8Array>;
  /** Empty when tty. */
  stderr: ReadableStream<Uint8Array>;
  /** Resizes the terminal; a no-op without tty or once the command ended. */
  resize(size: TerminalSize): Promise<void>;
  /** Kills the command and everything it started. */
  kill(): Promise<void>;
  status: Promise<ExecStatus>;
}

/** Runs a command in one given container: {@link execInContainer} with its unit bound. */
export type ContainerExec = (options: ExecOptions) => Promise<ExecProcess>;

/** The container cannot take a command (not running, unknown). */
export class ExecError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "ExecError";
  }
}

/** What {@link execInContainer} needs from the world. */
export interface ExecContext {
  systemd: Pick<SystemdClient, "getServiceSettings" | "getProperties" | "stop" | "resetFailed">;
  /**
   * How `systemd-run` is run: the command line before its arguments. Default
   * `["systemd-run"]`; tests run it inside a booted test systemd through `nsenter`.
   */
  systemdRun?: readonly string[];
}

/**
 * What a command in a container runs with, as systemd reports it for the container: what any
 * process entering it needs (its main PID, identity, privilege limits, working directory), and
 * the environment the command gets.
 */
export interface ContainerSettings extends TargetContainer {
  /** The container's unit. */
  unit: string;
  /** `Environment=` assignments (`NAME=value`), in order. */
  environment: string[];
  /** `EnvironmentFile=` paths, `-` first when a missing file is fine. */
  environmentFiles: string[];
  /** `UnsetEnvironment=` entries. */
  unsetEnvironment: string[];
}

const ALL_CAPABILITIES = 2n ** 64n - 1n;
const CAP_SYS_ADMIN = 21n;
/** Every namespace type `RestrictNamespaces=` knows in systemd 252 (clone flags). */
const ALL_NAMESPACES = 0x7e020000n;

/**
 * Whether systemd 252 implies `NoNewPrivileges=` for the unit, which its `NoNewPrivileges`
 * property does not show (`context_has_no_new_privileges()`): any of the settings below implies
 * it unless the process still holds CAP_SYS_ADMIN once its user is set, i.e. unless it runs as
 * root or has CAP_SYS_ADMIN among its ambient capabilities. Any other name of uid 0 is taken
 * for a user: the command then gets `NoNewPrivileges=` where the container may not, stricter.
 */
function impliesNoNewPrivileges(props: Record<string, unknown>): boolean {
  const user = typeof props.User === "string" ? props.User : "";
  const ambient = typeof props.AmbientCapabilities === "bigint" ? props.AmbientCapabilities : 0n;
  if (user === "" || user === "root" || user === "0") return false;
  if (ambient & (1n << CAP_SYS_ADMIN)) return false;
  const flags = [
    "PrivateDevices",
    "ProtectKernelTunables",
    "ProtectKernelModules",
    "ProtectKernelLogs",
    "ProtectClock",
    "MemoryDenyWriteExecute",
    "RestrictRealtime",
    "RestrictSUIDSGID",
    "DynamicUser",
    "LockPersonality",
  ];
  if (flags.some((name) => props[name] === true)) return true;
  // (bas) lists: a filter is set when its list is not empty (or it is a deny-list of nothing).
  const listed = (v: unknown) => Array.isArray(v) && Array.isArray(v[1]) && v[1].length > 0;
  if (listed(props.SystemCallFilter) || listed(props.RestrictAddressFamilies)) return true;
  if (Array.isArray(props.SystemCallArchitectures) && props.SystemCallArchitectures.length > 0) {
    return true;
  }
  const namespaces = props.RestrictNamespaces;
  return typeof namespaces === "bigint" && (namespaces & ALL_NAMESPACES) !== ALL_NAMESPACES;
}

/**
 * The settings an exec needs, out of the container unit's `Service` properties.
 *
 * @param unit The container's unit.
 * @param props The unwrapped `Service` properties (`SystemdClient.getServiceSettings`).
 * @return The settings.
 *
 * @example Usage
 * ```ts
 * import { containerSettings } from "./container.ts";
 * import assert from "node:assert/strict";
 * const settings = containerSettings("a.service", {
 *   MainPID: 42,
 *   User: "nobody",
 *   ProtectKernelTunables: true,
 * });
 * assert.equal(settings.user, "nobody");
 * assert.equal(settings.noNewPrivileges, true); // implied for a non-root user
 * ```
 */
export function containerSettings(
  unit: string,
  props: Record<string, unknown>,
): ContainerSettings {
  const text = (v: unknown) => typeof v === "string" ? v : "";
  const strings = (v: unknown) => Array.isArray(v) ? v.filter((s) => typeof s === "string") : [];
  const mask = (v: unknown) => typeof v === "bigint" ? v : ALL_CAPABILITIES;
  const files = Array.isArray(props.EnvironmentFiles) ? props.EnvironmentFiles : [];
  return {
    unit,
    mainPID: Number(props.MainPID ?? 0),
    user: text(props.User),
    group: text(props.Group),
    supplementaryGroups: strings(props.SupplementaryGroups),
    environment: strings(props.Environment),
    environmentFiles: files.map(([path, optional]: [string, boolean]) =>
      `${optional ? "-" : ""}${path}`
    ),
    unsetEnvironment: strings(props.UnsetEnvironment),
    workingDirectory: text(props.WorkingDirectory),
    umask: Number(props.UMask ?? 0o022),
    noNewPrivileges: props.NoNewPrivileges === true || impliesNoNewPrivileges(props),
    capabilityBoundingSet: mask(props.CapabilityBoundingSet),
    ambientCapabilities: typeof props.AmbientCapabilities === "bigint"
      ? props.AmbientCapabilities
      : 0n,
  };
}

/** Service settings as `systemd-run` options (taken literally: no specifiers over D-Bus). */
function propertyOptions(settings: ServiceSetting[]): string[] {
  return settings.map(([key, value]) => `--property=${key}=${value}`);
}

/** `stty` arguments setting a terminal's size. */
function sttySize(size: TerminalSize): string[] {
  const whole = (n: number) => String(Math.max(0, Math.trunc(n)));
  return ["rows", whole(size.rows), "cols", whole(size.columns)];
}

/**
 * Runs `script` with `SHELL=/bin/sh` (it runs its command with `$SHELL`, which systemd may have
 * set to the user's `nologin`), the original `SHELL` kept aside for the command.
 */
const TERMINAL =
  '[ -n "${SHELL+set}" ] && export SYSTEMK_EXEC_SHELL="$SHELL"; export SHELL=/bin/sh; ' +
  'exec script --quiet --return --command "$1" /dev/null 3>&2';

/**
 * `script` runs this on the terminal: size it, report it on fd 3, give `SHELL` back, run the
 * command.
 */
function terminalScript(size: TerminalSize, command: readonly string[]): string {
  return `stty ${sttySize(size).join(" ")} && tty >&3 && exec 3>&- && ` +
    'if [ -n "${SYSTEMK_EXEC_SHELL+set}" ]; then SHELL=$SYSTEMK_EXEC_SHELL; ' +
    "unset SYSTEMK_EXEC_SHELL; else unset SHELL; fi && " +
    `exec ${command.map(shellQuote).join(" ")}`;
}

/** Quotes one word for POSIX sh. */
function shellQuote(word: string): string {
  return `'${word.replaceAll("'", `'\\''`)}'`;
}

/** Doubles every `$`: systemd expands `$VAR` in a transient unit's command line. */
function literal(word: string): string {
  return word.replaceAll("$", "$$$$");
}

/**
 * The `systemd-run` arguments that run `options.command` in the container.
 *
 * @param settings The container's settings.
 * @param execUnit The transient unit's name.
 * @param options What to run.
 * @return The arguments after `systemd-run`.
 *
 * @example Usage
 * ```ts
 * import { containerSettings, systemdRunArguments } from "./container.ts";
 * import assert from "node:assert/strict";
 * const settings = containerSettings("a.service", { MainPID: 42 });
 * const args = systemdRunArguments(settings, "systemk-exec-1.service",
 *   { command: ["echo", "$HOME"] });
 * assert.ok(args.includes("--property=RootDirectory=/proc/42/root"));
 * assert.deepEqual(args.slice(-2), ["echo", "$$HOME"]);
 * ```
 */
export function systemdRunArguments(
  settings: ContainerSettings,
  execUnit: string,
  options: ExecOptions,
): string[] {
  const args = [
    "--pipe",
    "--wait",
    "--quiet",
    `--unit=${execUnit}`,
    `--description=systemk exec in ${settings.unit}`,
    "--property=KillSignal=SIGKILL",
    ...propertyOptions(identitySettings(settings)),
    ...propertyOptions(rootSettings(settings)),
  ];
  if (options.timeoutMs !== undefined) {
    args.push(`--property=RuntimeMaxSec=${Math.max(1, Math.ceil(options.timeoutMs))}ms`);
  }
  // kubelet exec sessions with a terminal have TERM set (the container's own value wins).
  if (options.tty) args.push("--setenv=TERM=xterm");
  for (const assignment of settings.environment) args.push(`--setenv=${assignment}`);
  for (const file of settings.environmentFiles) args.push(`--property=EnvironmentFile=${file}`);
  if (settings.unsetEnvironment.length > 0) {
    args.push(`--property=UnsetEnvironment=${settings.unsetEnvironment.join(" ")}`);
  }
  const command = options.tty
    ? ["/bin/sh", "-c", TERMINAL, "systemk-exec", terminalScript(options.tty, options.command)]
    : ["/bin/sh", "-c", 'exec "$@"', "systemk-exec", ...options.command];
  return [...args, "--", ...command.map(literal)];
}

/** Linux signal names by number, for {@link ExecStatus.signal}. */
const SIGNALS = [
  "",
  "SIGHUP",
  "SIGINT",
  "SIGQUIT",
  "SIGILL",
  "SIGTRAP",
  "SIGABRT",
  "SIGBUS",
  "SIGFPE",
  "SIGKILL",
  "SIGUSR1",
  "SIGSEGV",
  "SIGUSR2",
  "SIGPIPE",
  "SIGALRM",
  "SIGTERM",
  "SIGSTKFLT",
  "SIGCHLD",
  "SIGCONT",
  "SIGSTOP",
  "SIGTSTP",
  "SIGTTIN",
  "SIGTTOU",
  "SIGURG",
  "SIGXCPU",
  "SIGXFSZ",
  "SIGVTALRM",
  "SIGPROF",
  "SIGWINCH",
  "SIGIO",
  "SIGPWR",
  "SIGSYS",
];

/**
 * How the transient unit's command ended, from systemd-run's exit code and, when that is not
 * 0, the unit's own account (systemd-run says 2 for any signal and 1 for a timeout).
 */
function execStatus(
  runExitCode: number,
  unit?: { Result: string; ExecMainCode: number; ExecMainStatus: number },
): ExecStatus {
  const timedOut = unit?.Result === "timeout";
  if (runExitCode === 0 || !unit || unit.ExecMainCode === 0) {
    return { exitCode: runExitCode, signal: null, timedOut };
  }
  if (unit.ExecMainCode === 1) return { exitCode: unit.ExecMainStatus, signal: null, timedOut };
  const signal = SIGNALS[unit.ExecMainStatus] ?? `SIG${unit.ExecMainStatus}`;
  return { exitCode: null, signal, timedOut };
}

/** Reads the first line of `stream` (the tty path), then passes the rest on. */
async function splitFirstLine(
  stream: ReadableStream<Uint8Array>,
): Promise<{ line: string | undefined; rest: ReadableStream<Uint8Array> }> {
  const reader = stream.getReader();
  let buffered = new Uint8Array();
  while (true) {
    const newline = buffered.indexOf(10);
    if (newline >= 0) {
      const line = new TextDecoder().decode(buffered.subarray(0, newline));
      const head = buffered.subarray(newline + 1);
      const rest = new ReadableStream<Uint8Array>({
        start(controller) {
          if (head.length > 0) controller.enqueue(head);
        },
        async pull(controller) {
          const { done, value } = await reader.read();
          if (done) controller.close();
          else controller.enqueue(value);
        },
        cancel: (reason) => reader.cancel(reason),
      });
      return { line, rest };
    }
    const { done, value } = await reader.read();
    if (done) {
      const rest = new ReadableStream<Uint8Array>({
        start(controller) {
          if (buffered.length > 0) controller.enqueue(buffered);
          controller.close();
        },
      });
      return { line: undefined, rest };
    }
    const joined = new Uint8Array(buffered.length + value.length);
    joined.set(buffered);
    joined.set(value, buffered.length);
    buffered = joined;
  }
}

/** How often kill() repeats its stop while systemd-run has not created the unit yet. */
const KILL_RETRY_MS = 200;

/**
 * Runs a command in the context of the running container whose systemd service is `unit`.
 *
 * @param context The systemd client and how to run `systemd-run`.
 * @param unit The container's unit.
 * @param options What to run.
 * @return The running command; resolves once it started (with a tty: once the terminal is
 *   sized, so that `resize` works).
 * @throws {ExecError} When the container is not running.
 *
 * @example Usage
 * ```ts ignore
 * import { execInContainer } from "./container.ts";
 * const process = await execInContainer({ systemd }, "systemk.default.web.nginx.service", {
 *   command: ["cat", "/etc/nginx/nginx.conf"],
 * });
 * console.log(await new Response(process.stdout).text(), await process.status);
 * ```
 */
export async function execInContainer(
  context: ExecContext,
  unit: string,
  options: ExecOptions,
): Promise<ExecProcess> {
  if (options.command.length === 0) throw new ExecError("no command given");
  const systemd = context.systemd;
  const settings = containerSettings(unit, await systemd.getServiceSettings(unit));
  // A main process is all that is needed (its namespace is entered): a oneshot package unit
  // still activating, or a container running its preStop hook, takes commands too.
  if (settings.mainPID <= 0) {
    throw new ExecError(`container ${unit} is not running (it has no main process)`);
  }
  const execUnit = `systemk-exec-${crypto.randomUUID()}.service`;
  const systemdRun = context.systemdRun ?? ["systemd-run"];
  const child = spawnProcess([...systemdRun, ...systemdRunArguments(settings, execUnit, options)], {
    stdin: options.stdin || options.tty ? "piped" : "null",
  });
  if (options.stdin) {
    options.stdin.pipeTo(child.stdin).catch(() => {});
  } else if (options.tty) {
    // Held open and never written until the command ends (see ExecOptions.stdin).
    child.status.finally(() => child.stdin.close().catch(() => {}));
  }

  let settled = false;
  const status = child.status.then(async ({ code }) => {
    if (code === 0) return execStatus(0);
    // Without --collect the failed unit stays loaded to be asked; then it is let go.
    const ended = await systemd.getProperties(execUnit).catch(() => undefined);
    await systemd.resetFailed(execUnit).catch(() => {});
    return execStatus(code, ended);
  }).finally(() => settled = true);

  let stderr: ReadableStream<Uint8Array> = child.stderr;
  let tty: string | undefined;
  if (options.tty) {
    const first = await splitFirstLine(child.stderr);
    stderr = first.rest;
    if (first.line && /^\/dev\/pts\/\d+$/.test(first.line)) tty = first.line;
  }

  return {
    stdout: child.stdout,
    stderr,
    status,
    async resize(size) {
      // The terminal's number is free for reuse once the command ended.
      if (!tty || settled) return;
      // The path came from the command's side: opened as its user, it reaches no one else's.
      await runCommand([
        ...systemdRun,
        "--wait",
        "--quiet",
        "--collect",
        "--description=systemk exec resize",
        ...propertyOptions(identitySettings(settings)),
        "--",
        "stty",
        "-F",
        tty,
        ...sttySize(size),
      ]);
    },
    async kill() {
      // Stopping before systemd-run created the unit stops nothing: repeat until it is over.
      while (!settled) {
        await systemd.stop(execUnit).catch((e) => {
          if (!isNoSuchUnit(e)) throw e;
        });
        let timer: ReturnType<typeof setTimeout> | undefined;
        await Promise.race([status, new Promise((r) => timer = setTimeout(r, KILL_RETRY_MS))]);
        clearTimeout(timer);
      }
    },
  };
}

/** What {@link runToCompletion} gives: how the command ended and the start of its output. */
export interface ExecOutcome extends ExecStatus {
  /** Standard output then standard error, at most `limitBytes` of each, decoded. */
  output: string;
}

/**
 * Reads a command's output to its end and waits for it: for `exec` probes and hooks, which
 * report the output (the kubelet keeps 10 KiB). Output beyond the limit is read and dropped,
 * so a talkative command never blocks on a full pipe.
 *
 * @param process The running command.
 * @param limitBytes How much of each stream to keep.
 * @return Its status and output.
 *
 * @example Usage
 * ```ts ignore
 * import { execInContainer, runToCompletion } from "./container.ts";
 * const outcome = await runToCompletion(await execInContainer(context, unit, { command }));
 * ```
 */
export async function runToCompletion(
  process: ExecProcess,
  limitBytes = 10 * 1024,
): Promise<ExecOutcome> {
  const keep = async (stream: ReadableStream<Uint8Array>) => {
    const kept = new Uint8Array(limitBytes);
    let size = 0;
    for await (const chunk of stream) {
      const taken = chunk.subarray(0, Math.max(0, limitBytes - size));
      kept.set(taken, size);
      size += taken.length;
    }
    return new TextDecoder().decode(kept.subarray(0, size));
  };
  const [stdout, stderr, status] = await Promise.all([
    keep(process.stdout),
    keep(process.stderr),
    process.status,
  ]);
  return { ...status, output: stdout + stderr };
}
