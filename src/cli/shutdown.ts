/**
 * Graceful node shutdown from the flags (`--shutdown-grace-period`,
 * `--shutdown-grace-period-critical-pods`): the node shutdown manager over logind, for both
 * modes.
 *
 * @module
 */
import type { Config } from "./flags.ts";
import { log } from "../log/mod.ts";
import type { PodController } from "../pods/controller.ts";
import { NodeShutdownManager, type NodeShutdownOptions } from "../pods/node_shutdown.ts";
import { LogindClient } from "../systemd/logind.ts";

/** The lock's `who` and `why`, as `systemd-inhibit --list` shows them. */
const WHO = "systemk";
const WHY = "systemk stops the node's pods (preStop hooks, grace periods) before shutdown";

/** A node shutdown manager and what it holds. */
export interface NodeShutdown {
  manager: NodeShutdownManager;
  /** Takes logind's lock; a failure turns graceful shutdown off, with an error in the log. */
  start(): Promise<void>;
  /** Releases the lock and disconnects. */
  stop(): Promise<void>;
}

/**
 * The node shutdown manager for `pods()` (built before them: the runtime asks it to admit
 * pods), or undefined when `--shutdown-grace-period` is 0.
 *
 * @param config the flags.
 * @param wiring the pods, and what happens when a shutdown starts or is cancelled.
 */
export function nodeShutdown(
  config: Config,
  wiring: { pods(): PodController } & Pick<NodeShutdownOptions, "onChange">,
): NodeShutdown | undefined {
  if (config.shutdownGracePeriod === 0) return undefined;
  let logind: LogindClient | undefined;
  const manager = new NodeShutdownManager({
    periods: {
      gracePeriodSeconds: config.shutdownGracePeriod,
      criticalPodsSeconds: config.shutdownGracePeriodCriticalPods,
    },
    pods: () => wiring.pods().runtime.activePods(),
    terminate: (pod, termination) =>
      wiring.pods().runtime.terminateAbnormally(pod.metadata!.uid!, termination),
    flush: () => wiring.pods().statusesWritten(),
    onChange: wiring.onChange,
  });
  return {
    manager,
    async start() {
      try {
        logind = await LogindClient.connect({ who: WHO, why: WHY });
        await manager.start(logind);
      } catch (e) {
        log.error(
          `graceful node shutdown is off (pods will be killed without their preStop hooks ` +
            `when the machine shuts down): ${(e as Error).message}`,
        );
        logind?.close();
        logind = undefined;
      }
    },
    async stop() {
      await manager.stop();
      logind?.close();
    },
  };
}
