/**
 * What both modes plug into the runtime on this machine: the package manager behind the image
 * resolver (masking and stopping package units through systemd), and the kernel-log watcher
 * that tells memory-limit kills apart on cgroup v1 hosts.
 *
 * @module
 */
import { PackageManager } from "../packages/apt.ts";
import { packageImageResolver } from "./images.ts";
import { type OomKillWatcher, watchOomKillsOrWarn } from "./oom.ts";
import type { EventSink, ImageResolver } from "./ports.ts";
import type { SystemdUnits } from "./systemd_units.ts";

/** The machine-bound parts of a runtime; close `oomKills` on exit. */
export interface LocalRuntimeParts {
  images: ImageResolver;
  oomKills?: OomKillWatcher;
}

/** Builds the image resolver and OOM watcher for a runtime using `units`. */
export function localRuntimeParts(units: SystemdUnits, events: EventSink): LocalRuntimeParts {
  const packages = new PackageManager({
    maskUnits: (names) => units.client.maskRuntime(names),
    stopUnits: (names) => Promise.all(names.map((n) => units.stop(n))).then(() => {}),
  });
  return { images: packageImageResolver(packages, events), oomKills: watchOomKillsOrWarn() };
}
