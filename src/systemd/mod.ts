/**
 * The D-Bus client for systemd (the only module that talks to systemd) and the unit
 * properties it reports.
 *
 * @module
 */
export {
  BusDisconnectedError,
  type ConnectOptions,
  DEFAULT_UNIT_DIR,
  isNoSuchUnit,
  isSystemkUnitName,
  isTransientBusError,
  type JobOptions,
  type JobResult,
  JobTimeoutError,
  SystemdClient,
  SYSTEMK_UNIT_PATTERN,
  type UnitChangeListener,
  type UnitListEntry,
} from "./client.ts";
export type { CgroupUsage, UnitProperties } from "./types.ts";
