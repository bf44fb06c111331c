/**
 * What one systemd service unit says about its container: never ran, running, terminated,
 * or terminated and waiting for systemd's automatic restart.
 *
 * @module
 */
import type { V1ContainerStateTerminated } from "@kubernetes/client-node";
import type { UnitProperties } from "../unit/properties.ts";
import type { ContainerUnit } from "./types.ts";

/** The state of a container as read from its unit alone (no history, no agent knowledge). */
export type UnitObservation =
  /** No run on record: no unit, or a unit whose main process has not been started yet. */
  | { kind: "absent"; error?: { reason: string; message: string } }
  | { kind: "running"; containerID?: string; startedAt?: Date }
  | { kind: "terminated"; terminated: V1ContainerStateTerminated };

/** `ExecMainCode` values (`si_code` of the main process' exit, from `<signal.h>`). */
const CLD_EXITED = 1;
const CLD_KILLED = 2;
const CLD_DUMPED = 3;

/** Exit code the kubelet (via containerd) reports for a container that never started. */
const START_ERROR_EXIT_CODE = 128;

/**
 * systemd's own exit statuses for a failure while setting up the process, before `execve()`
 * of the command (systemd.exec(5), "Process Exit Codes"). They mean the container never
 * started, which Kubernetes calls `StartError`.
 */
const SYSTEMD_EXIT_STATUSES: Record<number, string> = {
  200: "CHDIR",
  201: "NICE",
  202: "FDS",
  203: "EXEC",
  204: "MEMORY",
  205: "LIMITS",
  206: "OOM_ADJUST",
  207: "SIGNAL_MASK",
  208: "STDIN",
  209: "STDOUT",
  210: "CHROOT",
  211: "IOPRIO",
  212: "TIMERSLACK",
  213: "SECUREBITS",
  214: "SETSCHEDULER",
  215: "CPUAFFINITY",
  216: "GROUP",
  217: "USER",
  218: "CAPABILITIES",
  219: "CGROUP",
  220: "SETSID",
  221: "CONFIRM",
  222: "STDERR",
  224: "PAM",
  225: "NETWORK",
  226: "NAMESPACE",
  227: "NO_NEW_PRIVILEGES",
  228: "SECCOMP",
  229: "SELINUX_CONTEXT",
  230: "PERSONALITY",
  231: "APPARMOR_PROFILE",
  232: "ADDRESS_FAMILIES",
  233: "RUNTIME_DIRECTORY",
  235: "CHOWN",
  236: "SMACK_PROCESS_LABEL",
  237: "KEYRING",
  238: "STATE_DIRECTORY",
  239: "CACHE_DIRECTORY",
  240: "LOGS_DIRECTORY",
  241: "CONFIGURATION_DIRECTORY",
  242: "NUMA_POLICY",
  243: "CREDENTIALS",
  245: "BPF",
};

/** Unit results that say nothing beyond the exit code or signal already reported. */
const PLAIN_RESULTS = new Set(["success", "exit-code", "signal", "core-dump", "oom-kill"]);

/** States in which the unit's processes may still exist. */
const LIVE_STATES = new Set(["active", "activating", "deactivating", "reloading"]);

/**
 * The container ID systemk reports: `systemd://<InvocationID>`. systemd draws a new
 * invocation ID for every start, automatic restarts included, so it names one run of the
 * container exactly as a runtime's container ID does, and it is what the journal records
 * (`_SYSTEMD_INVOCATION_ID=`), so logs of a given run (`kubectl logs --previous`) can be found.
 *
 * @param invocationID The unit's `InvocationID` (32 hex characters).
 * @return The container ID, or undefined before the first start.
 *
 * @example Usage
 * ```ts
 * import { containerID } from "./unit_state.ts";
 * import assert from "node:assert/strict";
 * assert.equal(containerID("0123456789abcdef0123456789abcdef"), "systemd://0123456789abcdef0123456789abcdef");
 * ```
 */
export function containerID(invocationID: string): string | undefined {
  return invocationID ? `systemd://${invocationID}` : undefined;
}

/**
 * Converts a systemd timestamp to the second precision of Kubernetes' `metav1.Time`, so a
 * status read back from the API compares equal to a freshly computed one.
 *
 * @param microseconds µs since the epoch, 0 meaning "never".
 * @return The time truncated to whole seconds, or undefined for 0.
 *
 * @example Usage
 * ```ts
 * import { timestamp } from "./unit_state.ts";
 * import assert from "node:assert/strict";
 * assert.equal(timestamp(1_700_000_000_999_999)?.toISOString(), "2023-11-14T22:13:20.000Z");
 * ```
 */
export function timestamp(microseconds: number): Date | undefined {
  return microseconds > 0 ? new Date(Math.floor(microseconds / 1e6) * 1000) : undefined;
}

/**
 * Reads a container's state from its unit's properties.
 *
 * - `LoadState` other than `loaded`, with nothing running → absent with a
 *   `CreateContainerError` (systemd rejected or cannot find the unit file).
 * - main process exited (`ExecMainCode` set) → terminated; this covers `active/exited` of
 *   `RemainAfterExit=` units, `inactive`, `failed`, and `deactivating` while `ExecStopPost=`
 *   runs.
 * - main process started and not exited → running (`activating/start` of `Type=oneshot`
 *   and `Type=notify` included: the kubelet calls a container running once its process runs).
 * - `failed` without a main process run (e.g. `ExecStartPre=` failed, start limit hit) →
 *   terminated `StartError`.
 * - anything else (`inactive` never started, `start-pre`, `condition`) → absent.
 *
 * A run ends `OOMKilled` when systemd says `Result=oom-kill` or the caller says `oomKilled`.
 *
 * @param unit The unit's name (for messages), properties and OOM knowledge.
 * @return What the unit says.
 *
 * @example Usage
 * ```ts
 * import { observeUnit } from "./unit_state.ts";
 * import assert from "node:assert/strict";
 * const props = {
 *   LoadState: "loaded", ActiveState: "active", SubState: "running", Result: "success",
 *   ExecMainStatus: 0, ExecMainCode: 0, ExecMainStartTimestamp: 1_700_000_000_000_000,
 *   ExecMainExitTimestamp: 0, ActiveEnterTimestamp: 1_700_000_000_000_000,
 *   InactiveEnterTimestamp: 0, MainPID: 42,
 *   InvocationID: "0123456789abcdef0123456789abcdef",
 * };
 * assert.equal(observeUnit({ unitName: "systemk.default.web.app.service", props }).kind, "running");
 * ```
 */
export function observeUnit(unit: ContainerUnit): UnitObservation {
  const { props, unitName } = unit;
  const live = LIVE_STATES.has(props.ActiveState);
  if (props.LoadState !== "loaded" && !live) {
    return {
      kind: "absent",
      error: {
        reason: "CreateContainerError",
        message: `systemd cannot load unit ${unitName}: LoadState=${props.LoadState}`,
      },
    };
  }
  if (props.ExecMainCode !== 0) return { kind: "terminated", terminated: terminated(unit) };
  if (live && props.ExecMainStartTimestamp > 0) {
    return {
      kind: "running",
      containerID: containerID(props.InvocationID),
      startedAt: timestamp(props.ExecMainStartTimestamp),
    };
  }
  if (props.ActiveState === "failed") return { kind: "terminated", terminated: terminated(unit) };
  return { kind: "absent" };
}

/** The terminated state of the unit's last run (or of its failed attempt to run). */
function terminated({ props, oomKilled }: ContainerUnit): V1ContainerStateTerminated {
  const exit = exitOf(props);
  const messages: string[] = [];
  if (exit.setupFailure) {
    messages.push(`systemd could not start the process: status=${exit.setupFailure}`);
  }
  if (props.ExecMainCode === 0) {
    messages.push(`the unit failed before its main process ran (Result=${props.Result})`);
  } else if (!PLAIN_RESULTS.has(props.Result)) {
    messages.push(`systemd unit result: ${props.Result}`);
  }
  return {
    containerID: containerID(props.InvocationID),
    exitCode: exit.exitCode,
    signal: exit.signal,
    reason: props.Result === "oom-kill" || oomKilled
      ? "OOMKilled"
      : props.ExecMainCode === 0 || exit.setupFailure
      ? "StartError"
      : exit.exitCode === 0
      ? "Completed"
      : "Error",
    message: messages.length > 0 ? messages.join("; ") : undefined,
    startedAt: timestamp(props.ExecMainStartTimestamp),
    finishedAt: timestamp(props.ExecMainExitTimestamp || props.InactiveEnterTimestamp),
  };
}

/**
 * Exit code and signal the way container runtimes report them (killed by signal N → exit
 * code 128 + N), and systemd's name for a setup failure status such as `203/EXEC`.
 */
function exitOf(props: UnitProperties): {
  exitCode: number;
  signal?: number;
  setupFailure?: string;
} {
  switch (props.ExecMainCode) {
    case CLD_EXITED: {
      const name = SYSTEMD_EXIT_STATUSES[props.ExecMainStatus];
      return {
        exitCode: props.ExecMainStatus,
        setupFailure: name ? `${props.ExecMainStatus}/${name}` : undefined,
      };
    }
    case CLD_KILLED:
    case CLD_DUMPED:
      return { exitCode: 128 + props.ExecMainStatus, signal: props.ExecMainStatus };
    default:
      return { exitCode: START_ERROR_EXIT_CODE };
  }
}
