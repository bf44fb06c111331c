/**
 * What both modes plug into the runtime on this machine: the package manager behind the image
 * resolver (masking and stopping package units through systemd, under the node's image
 * policy), the userdb records of pod ids, and the kernel-log watcher that tells memory-limit
 * kills apart on cgroup v1 hosts.
 *
 * @module
 */
import { PackageManager } from "../packages/apt.ts";
import type { ImagePolicy } from "../packages/policy.ts";
import { UserRecords } from "../node/user_records.ts";
import { packageImageResolver } from "./images.ts";
import { type OomKillWatcher, watchOomKillsOrWarn } from "./oom.ts";
import type { EventSink, ImageResolver } from "./ports.ts";
import type { SystemdUnits } from "./systemd_units.ts";

/** The machine-bound parts of a runtime; close `oomKills` on exit. */
export interface LocalRuntimeParts {
  images: ImageResolver;
  userRecords: UserRecords;
  oomKills?: OomKillWatcher;
}

/** Options of {@link localRuntimeParts}. */
export interface LocalRuntimeOptions {
  /** Which images may be installed (the `--allowed-image-url-prefixes` flags). */
  imagePolicy: ImagePolicy;
}

/** Builds the image resolver, user records and OOM watcher for a runtime using `units`. */
export function localRuntimeParts(
  units: SystemdUnits,
  events: EventSink,
  options: LocalRuntimeOptions,
): LocalRuntimeParts {
  const packages = new PackageManager({
    maskUnits: (names) => units.client.maskRuntime(names),
    stopUnits: (names) => Promise.all(names.map((n) => units.stop(n))).then(() => {}),
    policy: options.imagePolicy,
  });
  return {
    images: packageImageResolver(packages, events),
    userRecords: new UserRecords(),
    oomKills: watchOomKillsOrWarn(),
  };
}
