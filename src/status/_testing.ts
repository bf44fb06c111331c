/**
 * Builders for the status tests: unit properties in the states systemd reports, and pods.
 *
 * @module
 */
import type { V1Container, V1Pod } from "@kubernetes/client-node";
import { completeUnitProperties, type UnitProperties } from "../unit/properties.ts";

/** 2026-11-25T10:00:00Z in µs, plus a sub-second part the mapping must drop. */
export const T0 = Date.UTC(2026, 10, 25, 10, 0, 0) * 1000 + 123_456;

/** T0 + `seconds`, in µs. */
export function at(seconds: number): number {
  return T0 + seconds * 1_000_000;
}

/** RFC 3339 (whole seconds) of T0 + `seconds`. */
export function iso(seconds: number): string {
  return new Date(Math.floor(at(seconds) / 1e6) * 1000).toISOString();
}

/** An invocation ID made of one repeated hex digit, for readable tests. */
export function invocation(digit: string): string {
  return digit.repeat(32);
}

/** A loaded unit that has never run. */
export function neverStarted(overrides: Partial<UnitProperties> = {}): UnitProperties {
  return completeUnitProperties({
    LoadState: "loaded",
    ActiveState: "inactive",
    SubState: "dead",
    Result: "success",
    ...overrides,
  });
}

/** `active/running` since T0 + `startedAt` seconds. */
export function running(startedAt = 0, overrides: Partial<UnitProperties> = {}): UnitProperties {
  return neverStarted({
    ActiveState: "active",
    SubState: "running",
    ExecMainStartTimestamp: at(startedAt),
    ActiveEnterTimestamp: at(startedAt),
    MainPID: 4242,
    InvocationID: invocation("a"),
    ...overrides,
  });
}

/** Main process exited with `status` (CLD_EXITED) after running from T0 to T0 + 10 s. */
export function exited(status: number, overrides: Partial<UnitProperties> = {}): UnitProperties {
  return neverStarted({
    ActiveState: status === 0 ? "inactive" : "failed",
    SubState: status === 0 ? "dead" : "failed",
    Result: status === 0 ? "success" : "exit-code",
    ExecMainCode: 1,
    ExecMainStatus: status,
    ExecMainStartTimestamp: at(0),
    ExecMainExitTimestamp: at(10),
    InactiveEnterTimestamp: at(10),
    InvocationID: invocation("a"),
    ...overrides,
  });
}

/** Main process killed by `signal` (CLD_KILLED) after running from T0 to T0 + 10 s. */
export function killed(signal: number, overrides: Partial<UnitProperties> = {}): UnitProperties {
  return exited(0, {
    ActiveState: "failed",
    SubState: "failed",
    Result: "signal",
    ExecMainCode: 2,
    ExecMainStatus: signal,
    ...overrides,
  });
}

/** A pod named `web` in `default` with the given containers (images `/bin/<name>`). */
export function pod(
  spec: {
    containers: (string | V1Container)[];
    initContainers?: (string | V1Container)[];
    restartPolicy?: string;
    readinessGates?: { conditionType: string }[];
  },
  metadata: V1Pod["metadata"] = {},
): V1Pod {
  const container = (c: string | V1Container): V1Container =>
    typeof c === "string" ? { name: c, image: `/bin/${c}` } : { image: `/bin/${c.name}`, ...c };
  return {
    metadata: { name: "web", namespace: "default", uid: "uid-1", ...metadata },
    spec: {
      restartPolicy: spec.restartPolicy,
      readinessGates: spec.readinessGates,
      containers: spec.containers.map(container),
      initContainers: spec.initContainers?.map(container),
    },
  };
}
