/**
 * Standalone mode: run the Pods of a manifest directory with no API server, following the
 * directory's changes, and print each pod's status as it changes.
 *
 * @module
 */
import type { V1Pod, V1PodStatus } from "@kubernetes/client-node";
import type { Config } from "./flags.ts";
import { localNodeFacts } from "../node/local.ts";
import { podKey, PodRuntime } from "../pods/runtime.ts";
import type { EventSink } from "../pods/ports.ts";
import { type ManifestSet, readManifestDir } from "../pods/static.ts";
import { connectUnitManager } from "../pods/systemd_units.ts";
import { localRuntimeParts } from "../pods/local.ts";

/** How often the directory is read again even without a change notification (the kubelet: 20 s). */
const RESCAN_MS = 20_000;

/** Runs standalone mode until SIGINT/SIGTERM; resolves with the exit code. */
export async function runStandalone(config: Config): Promise<number> {
  const dir = config.podManifestPath!;
  const node = localNodeFacts({
    nodeName: config.nodeName,
    internalIP: config.nodeIP,
    externalIP: config.nodeExternalIP,
  });
  const units = await connectUnitManager({ unitDir: config.unitDir });
  let manifests: ManifestSet = {
    pods: [],
    configMaps: [],
    secrets: [],
    errors: [],
    goodFiles: new Set(),
  };
  const printed = new Map<string, string>();
  const events: EventSink = {
    record(pod, type, reason, message, container) {
      const where = container ? `${podKey(pod)} ${container}` : podKey(pod);
      console.log(`event ${where}: ${type} ${reason}: ${message}`);
    },
  };
  const { images, oomKills } = localRuntimeParts(units, events);
  const runtime = new PodRuntime({
    units,
    oomKills,
    node,
    images,
    stateDir: config.stateDir,
    allowedHostPaths: config.allowedHostPaths,
    events,
    onStatus(pod: V1Pod, status: V1PodStatus) {
      const line = summarizeStatus(status);
      if (printed.get(pod.metadata!.uid!) === line) return;
      printed.set(pod.metadata!.uid!, line);
      console.log(`pod ${podKey(pod)}: ${line}`);
    },
    references(pod) {
      const ns = pod.metadata!.namespace!;
      const inNs = <T extends { metadata?: { name?: string; namespace?: string } }>(list: T[]) =>
        new Map(
          list.filter((o) => (o.metadata?.namespace ?? "default") === ns).map((
            o,
          ) => [o.metadata!.name!, o]),
        );
      return Promise.resolve({
        configMaps: inNs(manifests.configMaps),
        secrets: inNs(manifests.secrets),
      });
    },
  });
  console.log(
    `systemk standalone: node ${node.name}, manifests in ${dir}, ` +
      `${await runtime.adopt()} pod(s) found running`,
  );

  const lastGood = new Map<string, V1Pod[]>();
  let first = true;
  const scan = async () => {
    const next = await readManifestDir(dir, node.name).catch((e) => {
      console.error(`systemk: reading ${dir}: ${(e as Error).message}`);
      return undefined;
    });
    if (!next) return;
    for (const error of next.errors) console.error(`systemk: ${error.file}: ${error.message}`);
    // A broken file keeps its last good pods running: an edit in progress disturbs nothing.
    for (const file of next.goodFiles) {
      lastGood.set(file, next.pods.filter((p) => manifestOf(p) === file));
    }
    const broken = new Set(next.errors.map((e) => e.file));
    for (const file of [...lastGood.keys()]) {
      if (!next.goodFiles.has(file) && !broken.has(file)) lastGood.delete(file);
    }
    manifests = next;
    const desired = [...lastGood.values()].flat();
    const uids = new Set(desired.map((p) => p.metadata!.uid!));
    for (const pod of desired) runtime.sync(pod);
    if (first) {
      first = false;
      await runtime.collectOrphans(uids);
    }
    for (const uid of runtime.uids()) {
      if (!uids.has(uid)) await runtime.terminate(uid);
    }
  };
  await scan();

  const watcher = Deno.watchFs(dir, { recursive: false });
  let pending: ReturnType<typeof setTimeout> | undefined;
  const rescan = () => {
    clearTimeout(pending);
    pending = setTimeout(() => void scan(), 100);
  };
  const timer = setInterval(rescan, RESCAN_MS);
  const stop = new Promise<void>((resolve) => {
    for (const signal of ["SIGINT", "SIGTERM"] as const) Deno.addSignalListener(signal, resolve);
  });
  const watching = (async () => {
    for await (const _ of watcher) rescan();
  })();
  await stop;
  // Leaving keeps the pods running, as the kubelet does: a restart adopts them.
  console.log("systemk standalone: stopping (pods keep running)");
  clearInterval(timer);
  clearTimeout(pending);
  watcher.close();
  await watching;
  await runtime.close();
  oomKills?.close();
  await units.close();
  return 0;
}

function manifestOf(pod: V1Pod): string | undefined {
  return pod.metadata?.annotations?.["systemk.io/manifest"];
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
