/**
 * Reading {@link UnitProperties} out of what systemd sends over D-Bus (`GetAll` replies and
 * `PropertiesChanged` signals), after the variants are unwrapped. Pure.
 *
 * @module
 */
import type { CgroupUsage, UnitProperties } from "./types.ts";

/** D-Bus interface of every unit object. */
export const UNIT_INTERFACE = "org.freedesktop.systemd1.Unit";
/** D-Bus interface of service unit objects. */
export const SERVICE_INTERFACE = "org.freedesktop.systemd1.Service";

type Kind = "string" | "number" | "accounting" | "id128";

/** Each tracked property, how it is encoded, and (by position) which interface carries it. */
const UNIT_PROPERTIES: Record<string, Kind> = {
  LoadState: "string",
  ActiveState: "string",
  SubState: "string",
  ActiveEnterTimestamp: "number",
  InactiveEnterTimestamp: "number",
  InvocationID: "id128",
};
const SERVICE_PROPERTIES: Record<string, Kind> = {
  Result: "string",
  ExecMainStatus: "number",
  ExecMainCode: "number",
  ExecMainStartTimestamp: "number",
  ExecMainExitTimestamp: "number",
  NRestarts: "number",
  MainPID: "number",
  MemoryCurrent: "accounting",
  CPUUsageNSec: "accounting",
};

/** Properties systemd never announces in `PropertiesChanged`: they are read on request only. */
export const POLLED_PROPERTIES: readonly (keyof UnitProperties)[] = [
  "MemoryCurrent",
  "CPUUsageNSec",
];

/** systemd's "not set" for uint64 accounting values. */
const UINT64_MAX = 2n ** 64n - 1n;

/** An accounting value (uint64): undefined when systemd says "not set". */
function accountingValue(value: unknown): number | undefined {
  if (typeof value === "bigint") return value === UINT64_MAX ? undefined : Number(value);
  return typeof value === "number" ? value : undefined;
}

/**
 * `ControlGroup`, `MemoryCurrent` and `CPUUsageNSec` among the unwrapped values of a Service or
 * Slice interface's `GetAll`.
 *
 * @example Usage
 * ```ts
 * import assert from "node:assert/strict";
 * assert.deepEqual(
 *   cgroupUsageFrom({ ControlGroup: "/systemk.slice", MemoryCurrent: 4096n, CPUUsageNSec: 2n ** 64n - 1n }),
 *   { controlGroup: "/systemk.slice", memoryBytes: 4096, cpuNanos: undefined },
 * );
 * ```
 */
export function cgroupUsageFrom(values: Record<string, unknown>): CgroupUsage {
  const cgroup = values.ControlGroup;
  return {
    controlGroup: typeof cgroup === "string" && cgroup !== "" ? cgroup : undefined,
    memoryBytes: accountingValue(values.MemoryCurrent),
    cpuNanos: accountingValue(values.CPUUsageNSec),
  };
}

function decode(kind: Kind, value: unknown): string | number | undefined {
  switch (kind) {
    case "string":
      return typeof value === "string" ? value : undefined;
    case "number":
      return typeof value === "bigint" || typeof value === "number" ? Number(value) : undefined;
    case "accounting":
      return accountingValue(value);
    case "id128":
      return value instanceof Uint8Array
        ? Array.from(value, (b) => b.toString(16).padStart(2, "0")).join("")
        : undefined;
  }
}

/** Whether `iface` is one whose properties this module reads. */
export function isTrackedInterface(iface: string): boolean {
  return iface === UNIT_INTERFACE || iface === SERVICE_INTERFACE;
}

/** Whether `property` of `iface` is part of {@link UnitProperties}. */
export function isTrackedProperty(iface: string, property: string): boolean {
  const table = iface === UNIT_INTERFACE ? UNIT_PROPERTIES : SERVICE_PROPERTIES;
  return isTrackedInterface(iface) && Object.hasOwn(table, property);
}

/**
 * The tracked properties among `values` (property name → unwrapped variant value) of
 * interface `iface`; others are ignored, and so are values of an unexpected type.
 *
 * @example Usage
 * ```ts
 * import assert from "node:assert/strict";
 * assert.deepEqual(
 *   unitPropertiesFrom(SERVICE_INTERFACE, { ExecMainStatus: 3, Result: "exit-code", Type: "simple" }),
 *   { ExecMainStatus: 3, Result: "exit-code" },
 * );
 * ```
 */
export function unitPropertiesFrom(
  iface: string,
  values: Record<string, unknown>,
): Partial<UnitProperties> {
  const table = iface === UNIT_INTERFACE
    ? UNIT_PROPERTIES
    : iface === SERVICE_INTERFACE
    ? SERVICE_PROPERTIES
    : {};
  const out: Record<string, string | number | undefined> = {};
  for (const [name, kind] of Object.entries(table)) {
    if (!Object.hasOwn(values, name)) continue;
    const value = decode(kind, values[name]);
    // An accounting value that is "not set" is reported as such, not skipped.
    if (value !== undefined || kind === "accounting") out[name] = value;
  }
  return out as Partial<UnitProperties>;
}

/** A full snapshot from partial knowledge: what systemd reports for a unit never started. */
export function completeUnitProperties(partial: Partial<UnitProperties>): UnitProperties {
  return {
    LoadState: "",
    ActiveState: "",
    SubState: "",
    Result: "",
    ExecMainStatus: 0,
    ExecMainCode: 0,
    ExecMainStartTimestamp: 0,
    ExecMainExitTimestamp: 0,
    ActiveEnterTimestamp: 0,
    InactiveEnterTimestamp: 0,
    NRestarts: 0,
    MainPID: 0,
    InvocationID: "",
    ...partial,
  };
}
