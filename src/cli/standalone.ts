/**
 * Standalone mode: run the Pods of a manifest directory with no API server, following the
 * directory's changes, and print each pod's status as it changes.
 *
 * @module
 */
import type { V1PodStatus } from "@kubernetes/client-node";
import { type Config, localNodeOptions } from "./flags.ts";
import { localRuntime } from "./runtime.ts";
import { log } from "../log/mod.ts";
import { localNodeFacts } from "../node/local.ts";
import { PodController } from "../pods/controller.ts";
import { podKey } from "../pods/context.ts";
import type { EventSink } from "../pods/ports.ts";
import { connectUnitManager } from "../pods/systemd_units.ts";
import { stateDirProblem } from "../volumes/apply.ts";
import { nodeShutdown } from "./shutdown.ts";

/**
 * Runs standalone mode until SIGINT/SIGTERM; resolves with the exit code. Each pod's status
 * and events are printed on standard output as they change.
 */
export async function runStandalone(config: Config): Promise<number> {
  const dir = config.podManifestPath!;
  const node = localNodeFacts(localNodeOptions(config));
  const units = await connectUnitManager({ unitDir: config.unitDir });
  const printed = new Map<string, string>();
  const events: EventSink = {
    record(pod, { type, reason, message, container }) {
      const where = container ? `${podKey(pod)} ${container}` : podKey(pod);
      console.log(`event ${where}: ${type} ${reason}: ${message}`);
    },
  };
  const { runtime, oomKills } = localRuntime(config, { units, node, events });
  const shutdown = nodeShutdown(config, {
    pods: () => pods,
    onChange(shuttingDown) {
      console.log(`node ${node.name}: ${shuttingDown ? "shutting down" : "shutdown cancelled"}`);
      return Promise.resolve();
    },
  });
  const pods: PodController = new PodController({
    runtime: { ...runtime, admitHandlers: shutdown ? [shutdown.manager.admit] : [] },
    manifestDir: dir,
    onStatus(pod, status) {
      const line = summarizeStatus(status);
      if (printed.get(pod.metadata!.uid!) === line) return;
      printed.set(pod.metadata!.uid!, line);
      console.log(`pod ${podKey(pod)}: ${line}`);
    },
  });
  const unwritable = await stateDirProblem(config.stateDir);
  if (unwritable) log.error(unwritable);
  const { adopted } = await pods.start();
  await shutdown?.start();
  log.info(`standalone: node ${node.name}, manifests in ${dir}, ${adopted} pod(s) found running`);

  await new Promise<void>((resolve) => {
    for (const signal of ["SIGINT", "SIGTERM"] as const) Deno.addSignalListener(signal, resolve);
  });
  // Leaving keeps the pods running, as the kubelet does: a restart adopts them.
  log.info("standalone: stopping (pods keep running)");
  await shutdown?.stop();
  await pods.stop();
  oomKills?.close();
  await units.close();
  return 0;
}

/** One line like `kubectl get pod` would say it, plus each container's state. */
export function summarizeStatus(status: V1PodStatus): string {
  const containers = status.containerStatuses ?? [];
  const ready = containers.filter((c) => c.ready).length;
  const restarts = containers.reduce((n, c) => n + (c.restartCount ?? 0), 0);
  const states = [...(status.initContainerStatuses ?? []), ...containers].map((c) => {
    const state = c.state?.running
      ? "running"
      : c.state?.terminated
      ? `terminated (${c.state.terminated.reason}, exit ${c.state.terminated.exitCode})`
      : `waiting (${c.state?.waiting?.reason ?? "unknown"}${
        c.state?.waiting?.message ? `: ${c.state.waiting.message}` : ""
      })`;
    return `${c.name}: ${state}`;
  });
  const reason = status.reason ? ` ${status.reason}: ${status.message}` : "";
  return `${status.phase} ${ready}/${containers.length} ready, ${restarts} restarts${reason}; ${
    states.join(", ")
  }`;
}
