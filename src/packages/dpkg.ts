/**
 * Pure readers of what dpkg and apt print: package status, a package's file list (its systemd
 * units and state directories), and apt's failures. Kept apart from the code that runs them so
 * each rule is tested on its own.
 *
 * @module
 */

/** A package as `dpkg-query -W -f='${Status} ${Version}'` reports it. */
export interface PackageStatus {
  /** Unpacked and configured (pending triggers count as installed). */
  installed: boolean;
  /** Installed version; absent when not installed. */
  version?: string;
}

/** The `dpkg-query` format {@link parsePackageStatus} reads. */
export const STATUS_FORMAT = "${Status} ${Version}";

/**
 * Parses the output of `dpkg-query -W -f='${Status} ${Version}' name` (empty output or a
 * failed query means: not installed).
 *
 * @example Usage
 * ```ts
 * import assert from "node:assert/strict";
 * assert.deepEqual(parsePackageStatus("install ok installed 1:0.4.6-4"), {
 *   installed: true,
 *   version: "1:0.4.6-4",
 * });
 * ```
 */
export function parsePackageStatus(output: string): PackageStatus {
  const [_want, _error, state, version] = output.trim().split(/\s+/);
  const installed = state === "installed" || state === "triggers-pending" ||
    state === "triggers-awaited";
  return installed && version ? { installed, version } : { installed: false };
}

/** A systemd unit file a package ships. */
export interface ShippedUnit {
  /** Unit name, e.g. `uptimed.service`. */
  name: string;
  /** Path of the unit file as listed by dpkg. */
  path: string;
}

const UNIT_PATH = /^\/(?:usr\/)?lib\/systemd\/system\/([^/]+\.(?:service|socket|timer|path))$/;

/**
 * The units a package ships, from `dpkg-query -L name`: every `.service` plus the `.socket`,
 * `.timer` and `.path` units that could start one, under `/lib/systemd/system/` or
 * `/usr/lib/systemd/system/` (each name once, whichever directory lists it first).
 *
 * @example Usage
 * ```ts
 * import assert from "node:assert/strict";
 * const units = shippedUnits("/.\n/lib/systemd/system/uptimed.service\n/usr/sbin/uptimed\n");
 * assert.deepEqual(units, [{ name: "uptimed.service", path: "/lib/systemd/system/uptimed.service" }]);
 * ```
 */
export function shippedUnits(fileList: string): ShippedUnit[] {
  const units = new Map<string, ShippedUnit>();
  for (const line of fileList.split("\n")) {
    const m = UNIT_PATH.exec(line.trim());
    if (m && !units.has(m[1])) units.set(m[1], { name: m[1], path: line.trim() });
  }
  return [...units.values()];
}

/** Options of {@link mainService}. */
export interface MainServiceOptions {
  /**
   * The unit named like the package that another package installed (nginx's `nginx.service`
   * comes with nginx-common), when there is one.
   */
  elsewhere?: ShippedUnit;
}

/**
 * The service whose unit file becomes the container's template: the one named like the
 * package — shipped by it, else `elsewhere`, the unit of that name another package installed
 * (nginx's `nginx.service` comes with nginx-common) —, else the only (non-template) service
 * the package ships, else none.
 *
 * @example Usage
 * ```ts
 * import assert from "node:assert/strict";
 * const units = [{ name: "ssh.service", path: "/lib/systemd/system/ssh.service" }];
 * assert.equal(mainService("openssh-server", units)?.name, "ssh.service");
 * ```
 */
export function mainService(
  packageName: string,
  units: readonly ShippedUnit[],
  options: MainServiceOptions = {},
): ShippedUnit | undefined {
  const named = units.find((u) => u.name === `${packageName}.service`) ?? options.elsewhere;
  if (named) return named;
  const services = units.filter((u) => u.name.endsWith(".service") && !u.name.includes("@."));
  return services.length === 1 ? services[0] : undefined;
}

const STATE_DIR = /^\/var\/(?:lib|log|cache|spool)\/[^/]+$/;

/**
 * Paths in a package's file list that may be its state directories (`/var/lib/x`,
 * `/var/log/x`, `/var/cache/x`, `/var/spool/x`). The list does not tell files from
 * directories; the caller checks.
 *
 * @example Usage
 * ```ts
 * import assert from "node:assert/strict";
 * assert.deepEqual(stateDirCandidates("/var\n/var/spool\n/var/spool/uptimed\n"), ["/var/spool/uptimed"]);
 * ```
 */
export function stateDirCandidates(fileList: string): string[] {
  return fileList.split("\n").map((l) => l.trim()).filter((l) => STATE_DIR.test(l));
}

/** Why an apt or dpkg run failed, as far as systemk acts on it. */
export type AptFailure = "lock" | "unknown-package" | "downgrade" | "removal" | "other";

/**
 * Classifies a failed apt-get run by its output: a lock held by someone else (wait and
 * retry), a package or version apt does not know (refresh the lists and retry), a downgrade
 * without `--allow-downgrades` or a removal under `--no-remove` (say which policy refused it),
 * or anything else (report it). Expects the C locale.
 */
export function classifyAptFailure(output: string): AptFailure {
  if (/Packages were downgraded and -y was used without --allow-downgrades/.test(output)) {
    return "downgrade";
  }
  if (/Packages need to be removed but remove is disabled/.test(output)) return "removal";
  if (
    /Could not get lock|Unable to acquire the dpkg frontend lock|Unable to lock (?:the )?(?:administration )?directory|frontend lock (?:is|was) locked/
      .test(output)
  ) return "lock";
  if (
    /Unable to locate package|Version '[^']*' for '[^']*' was not found|has no installation candidate|Couldn't find any package by/
      .test(output)
  ) return "unknown-package";
  return "other";
}

/**
 * The part of apt's output worth showing a user: its `E:` lines (else the last line), joined
 * and cut to `max` characters.
 *
 * @example Usage
 * ```ts
 * import assert from "node:assert/strict";
 * const out = "Reading package lists...\nE: Unable to locate package nope\n";
 * assert.equal(aptErrorSummary(out), "E: Unable to locate package nope");
 * ```
 */
export function aptErrorSummary(output: string, max = 300): string {
  const lines = output.split("\n").map((l) => l.trim()).filter((l) => l !== "");
  const errors = lines.filter((l) => l.startsWith("E: "));
  const text = (errors.length > 0 ? errors : lines.slice(-1)).join("; ");
  return text.length > max ? text.slice(0, max - 1) + "…" : text;
}

/**
 * Reads `Field: value` lines as printed by `dpkg-deb -f file Field...` for several fields
 * (continuation lines ignored).
 */
export function parseControlFields(output: string): Map<string, string> {
  const fields = new Map<string, string>();
  for (const line of output.split("\n")) {
    const m = /^([A-Za-z0-9-]+):\s*(.*)$/.exec(line);
    if (m) fields.set(m[1], m[2].trim());
  }
  return fields;
}

/** `imagePullPolicy` values, as in the pod spec. */
export type PullPolicy = "IfNotPresent" | "Always" | "Never";

/** The wanted version of {@link decideInstall}. */
export interface DecideInstallOptions {
  /** The version the image names; any version will do when undefined. */
  wantedVersion?: string;
  /** Whether the installed version is the wanted one. */
  sameVersion(installed: string, wanted: string): boolean;
}

/**
 * What a pull policy asks for, given what is installed: `install` (run apt), `present`
 * (nothing to do) or `missing` (policy `Never` and the package, or the wanted version, is not
 * there).
 *
 * @example Usage
 * ```ts
 * import assert from "node:assert/strict";
 * const sameVersion = (a: string, b: string) => a === b;
 * const installed = { installed: true, version: "1" };
 * assert.equal(decideInstall("IfNotPresent", installed, { sameVersion }), "present");
 * assert.equal(decideInstall("Always", installed, { sameVersion }), "install");
 * ```
 */
export function decideInstall(
  policy: PullPolicy,
  status: PackageStatus,
  options: DecideInstallOptions,
): "install" | "present" | "missing" {
  const { wantedVersion, sameVersion } = options;
  const satisfied = status.installed &&
    (wantedVersion === undefined || sameVersion(status.version!, wantedVersion));
  if (policy === "Always") return "install";
  if (satisfied) return "present";
  return policy === "Never" ? "missing" : "install";
}
