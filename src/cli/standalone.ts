/**
 * Standalone mode: run the Pods of a manifest directory with no API server, following the
 * directory's changes, and print each pod's status as it changes.
 *
 * @module
 */
import type { V1Pod, V1PodStatus } from "@kubernetes/client-node";
import { type Config, imagePolicy, localNodeOptions, securityPolicy } from "./flags.ts";
import { localNodeFacts } from "../node/local.ts";
import { podKey, PodRuntime } from "../pods/runtime.ts";
import type { EventSink } from "../pods/ports.ts";
import { StaticPodSource } from "../pods/static.ts";
import { connectUnitManager } from "../pods/systemd_units.ts";
import { localRuntimeParts } from "../pods/local.ts";
import { stateDirProblem } from "../volumes/apply.ts";

/** Runs standalone mode until SIGINT/SIGTERM; resolves with the exit code. */
export async function runStandalone(config: Config): Promise<number> {
  const dir = config.podManifestPath!;
  const node = localNodeFacts(localNodeOptions(config));
  const units = await connectUnitManager({ unitDir: config.unitDir });
  const printed = new Map<string, string>();
  const events: EventSink = {
    record(pod, type, reason, message, container) {
      const where = container ? `${podKey(pod)} ${container}` : podKey(pod);
      console.log(`event ${where}: ${type} ${reason}: ${message}`);
    },
  };
  let first = true;
  const source = new StaticPodSource({
    dir,
    nodeName: node.name,
    async onChange(pods, removed) {
      for (const pod of pods) runtime.sync(pod);
      if (first) {
        first = false;
        await runtime.collectOrphans(new Set(pods.map((p) => p.metadata!.uid!)));
      }
      for (const uid of removed) await runtime.terminate(uid);
    },
  });
  const { images, oomKills, userRecords } = localRuntimeParts(units, events, {
    imagePolicy: imagePolicy(config),
  });
  const runtime = new PodRuntime({
    units,
    oomKills,
    node,
    images,
    stateDir: config.stateDir,
    allowedHostPaths: config.allowedHostPaths,
    policy: securityPolicy(config),
    userRecords,
    events,
    onStatus(pod: V1Pod, status: V1PodStatus) {
      const line = summarizeStatus(status);
      if (printed.get(pod.metadata!.uid!) === line) return;
      printed.set(pod.metadata!.uid!, line);
      console.log(`pod ${podKey(pod)}: ${line}`);
    },
    references: (pod) => Promise.resolve(source.references(pod)),
  });
  const unwritable = await stateDirProblem(config.stateDir);
  if (unwritable) console.error(`systemk: ${unwritable}`);
  console.log(
    `systemk standalone: node ${node.name}, manifests in ${dir}, ` +
      `${await runtime.adopt()} pod(s) found running`,
  );

  await source.start();
  await new Promise<void>((resolve) => {
    for (const signal of ["SIGINT", "SIGTERM"] as const) Deno.addSignalListener(signal, resolve);
  });
  // Leaving keeps the pods running, as the kubelet does: a restart adopts them.
  console.log("systemk standalone: stopping (pods keep running)");
  await source.stop();
  await runtime.close();
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
