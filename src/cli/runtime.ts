/**
 * The pod runtime's parts on this machine, from the flags: shared by node and standalone mode.
 *
 * @module
 */
import { type Config, imagePolicy, securityPolicy } from "./flags.ts";
import type { NodeFacts } from "../plan/mod.ts";
import type { PodControllerOptions } from "../pods/controller.ts";
import { localRuntimeParts } from "../pods/local.ts";
import type { OomKillWatcher } from "../pods/oom.ts";
import type { EventSink } from "../pods/ports.ts";
import type { SystemdUnits } from "../pods/systemd_units.ts";

/** The runtime's parts, and the OOM watcher to close on exit. */
export interface LocalRuntime {
  runtime: PodControllerOptions["runtime"];
  oomKills?: OomKillWatcher;
}

/** The runtime's parts over `units` for `node`, with the flags' policy. */
export function localRuntime(
  config: Config,
  parts: { units: SystemdUnits; node: NodeFacts; events: EventSink },
): LocalRuntime {
  const { units, node, events } = parts;
  const { images, oomKills, userRecords } = localRuntimeParts(units, events, {
    imagePolicy: imagePolicy(config),
  });
  return {
    runtime: {
      units,
      oomKills,
      node,
      images,
      events,
      stateDir: config.stateDir,
      allowedHostPaths: config.allowedHostPaths,
      policy: securityPolicy(config),
      userRecords,
    },
    oomKills,
  };
}
