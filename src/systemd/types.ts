/**
 * What systemk reads of a unit from systemd, shared by the D-Bus client and the pure status
 * mapping.
 *
 * @module
 */

/** A snapshot of the unit and service properties systemk uses. Timestamps are µs since epoch (0 = never). */
export interface UnitProperties {
  /** `loaded`, `not-found`, `masked`, `error`, ... */
  LoadState: string;
  /** `active`, `activating`, `deactivating`, `inactive`, `failed`, `reloading`. */
  ActiveState: string;
  /** Service sub-state: `running`, `exited`, `dead`, `failed`, `auto-restart`, `start`, ... */
  SubState: string;
  /** `success`, `exit-code`, `signal`, `core-dump`, `timeout`, `oom-kill`, `resources`, ... */
  Result: string;
  /** Exit status, or the signal number when ExecMainCode is CLD_KILLED/CLD_DUMPED. */
  ExecMainStatus: number;
  /** CLD_EXITED = 1, CLD_KILLED = 2, CLD_DUMPED = 3; 0 = not exited yet. */
  ExecMainCode: number;
  ExecMainStartTimestamp: number;
  ExecMainExitTimestamp: number;
  /** Entered "active" (for oneshot: after it finished). */
  ActiveEnterTimestamp: number;
  InactiveEnterTimestamp: number;
  NRestarts: number;
  MainPID: number;
  /** 32 hex characters, new for each start; empty before the first start. */
  InvocationID: string;
  /** Bytes, or undefined when not accounted. */
  MemoryCurrent?: number;
  /** Nanoseconds, or undefined when not accounted. */
  CPUUsageNSec?: number;
}

/** A unit's cgroup and what systemd accounts for it (a service's or a slice's). */
export interface CgroupUsage {
  /** The cgroup path below systemd's root (`/systemk.slice/…`); undefined when it has none. */
  controlGroup?: string;
  /** Bytes, or undefined when not accounted. */
  memoryBytes?: number;
  /** Nanoseconds, or undefined when not accounted (e.g. a v1/v2 hybrid hierarchy). */
  cpuNanos?: number;
}
