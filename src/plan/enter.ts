/**
 * Entering a running container: the service settings that give a process the container's
 * identity and privilege limits and its view of the files, as systemd itself applies them. Two
 * callers use them: commands in containers (src/exec, as `systemd-run --property=`s) and
 * ephemeral containers with a target (unit directives, src/plan/ephemeral.ts).
 *
 * `RootDirectory=/proc/<main PID>/root`: systemd's own code, running as root, changes the root
 * to the target's (the root of its mount namespace, whose mounts — private /tmp, volumes,
 * hidden state directory, read-only system — path lookups then follow), drops privileges and
 * only then executes the command. `MountAPIVFS=no` keeps systemd from setting up a mount
 * namespace of its own for that.
 *
 * @module
 */
import type { TargetContainer } from "./types.ts";

/** Every capability: systemd's value of an unrestricted `CapabilityBoundingSet`. */
const ALL_CAPABILITIES = 2n ** 64n - 1n;

/** A service setting: its key and its value as systemd takes it (not yet escaped). */
export type ServiceSetting = [key: string, value: string];

/** Capability numbers of a mask, space-separated (systemd takes numbers as names). */
function capabilityList(mask: bigint): string {
  const numbers = [];
  for (let n = 0n; n < 64n; n++) if (mask & (1n << n)) numbers.push(n.toString());
  return numbers.join(" ");
}

/**
 * The target's identity and privilege limits: `User=`, `Group=`, `SupplementaryGroups=` (systemd
 * resolves them on the host, as for the target), `NoNewPrivileges=`, and the capability bounding
 * and ambient sets where they are not systemd's defaults.
 *
 * @param target The container as systemd reports it.
 * @return The settings, in that order.
 *
 * @example Usage
 * ```ts
 * import { identitySettings } from "./enter.ts";
 * import assert from "node:assert/strict";
 * const target = { mainPID: 42, user: "nobody", group: "", supplementaryGroups: [], umask: 0o22,
 *   noNewPrivileges: true, capabilityBoundingSet: 2n ** 64n - 1n, ambientCapabilities: 0n,
 *   workingDirectory: "" };
 * assert.deepEqual(identitySettings(target), [["User", "nobody"], ["NoNewPrivileges", "yes"]]);
 * ```
 */
export function identitySettings(target: TargetContainer): ServiceSetting[] {
  const out: ServiceSetting[] = [];
  if (target.user) out.push(["User", target.user]);
  if (target.group) out.push(["Group", target.group]);
  if (target.supplementaryGroups.length > 0) {
    out.push(["SupplementaryGroups", target.supplementaryGroups.join(" ")]);
  }
  if (target.noNewPrivileges) out.push(["NoNewPrivileges", "yes"]);
  if (target.capabilityBoundingSet !== ALL_CAPABILITIES) {
    out.push(["CapabilityBoundingSet", capabilityList(target.capabilityBoundingSet)]);
  }
  if (target.ambientCapabilities !== 0n) {
    out.push(["AmbientCapabilities", capabilityList(target.ambientCapabilities)]);
  }
  return out;
}

/**
 * Where the entered process lives: the target's `UMask=`, its root (see the module doc) and its
 * working directory (systemd's property marks an optional one with `!`, a setting with `-`).
 *
 * @param target The container as systemd reports it.
 * @return `UMask`, `RootDirectory`, `MountAPIVFS` and, when the target has one,
 *   `WorkingDirectory`.
 *
 * @example Usage
 * ```ts
 * import { rootSettings } from "./enter.ts";
 * import assert from "node:assert/strict";
 * const target = { mainPID: 42, user: "", group: "", supplementaryGroups: [], umask: 0o22,
 *   noNewPrivileges: false, capabilityBoundingSet: 0n, ambientCapabilities: 0n,
 *   workingDirectory: "!/srv" };
 * assert.deepEqual(rootSettings(target).slice(1), [
 *   ["RootDirectory", "/proc/42/root"], ["MountAPIVFS", "no"], ["WorkingDirectory", "-/srv"],
 * ]);
 * ```
 */
export function rootSettings(target: TargetContainer): ServiceSetting[] {
  const out: ServiceSetting[] = [
    ["UMask", target.umask.toString(8).padStart(4, "0")],
    ["RootDirectory", `/proc/${target.mainPID}/root`],
    ["MountAPIVFS", "no"],
  ];
  const directory = target.workingDirectory.replace(/^!/, "-");
  if (directory !== "") out.push(["WorkingDirectory", directory]);
  return out;
}
