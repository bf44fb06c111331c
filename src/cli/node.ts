/**
 * Node mode: register this machine as a Node, run the pods the API server schedules to it,
 * report their status and events, and delete them the way the kubelet does. With
 * `--pod-manifest-path` it also runs that directory's static pods, mirrored into the API.
 *
 * @module
 */
import { type Config, localNodeOptions } from "./flags.ts";
import { localRuntime } from "./runtime.ts";
import { VERSION } from "../version.ts";
import { log } from "../log/mod.ts";
import { localNodeFacts } from "../node/local.ts";
import { createClients, loadKubeConfig } from "../kube/client.ts";
import { NodeController } from "../kube/node_controller.ts";
import { EventRecorder, nodeReference, podReference } from "../kube/events.ts";
import type { Readiness } from "../kube/node.ts";
import { bootstrapKubeconfig, rotateClientCertificate } from "../kube/bootstrap.ts";
import { PodController } from "../pods/controller.ts";
import { RuntimeHealth } from "../pods/health.ts";
import { NODE_SHUTTING_DOWN } from "../pods/node_shutdown.ts";
import { nodeShutdown } from "./shutdown.ts";
import type { EventSink } from "../pods/ports.ts";
import { connectUnitManager } from "../pods/systemd_units.ts";
import { stateDirProblem } from "../volumes/apply.ts";
import { startKubeletAPI } from "../http/mod.ts";

/** The kubelet version systemk reports: the Kubernetes minor it is tested against, plus ours. */
export const KUBELET_VERSION = `v1.34.0-systemk.${VERSION}`;

/** The node's Ready condition: the runtime's health, and not while the machine shuts down. */
function nodeReadiness(health: Readiness, shuttingDown: boolean): Readiness {
  if (!shuttingDown) return health;
  const message = [NODE_SHUTTING_DOWN, ...(health.ready ? [] : [health.message])].join("; ");
  return { ready: false, message };
}

/** Runs node mode until SIGINT/SIGTERM; resolves with the exit code. */
export async function runNode(config: Config): Promise<number> {
  if (config.bootstrapKubeconfig) {
    if (!config.kubeconfig) throw new Error("--bootstrap-kubeconfig needs --kubeconfig");
    await bootstrapKubeconfig({
      nodeName: config.nodeName || Deno.hostname(),
      kubeconfigPath: config.kubeconfig,
      bootstrapKubeconfigPath: config.bootstrapKubeconfig,
      certDir: config.certDir,
    });
  }
  const clients = createClients(loadKubeConfig(config.kubeconfig));
  const node = localNodeFacts({
    ...localNodeOptions(config),
    apiServer: `${clients.apiServer.host}:${clients.apiServer.port}`,
  });
  const units = await connectUnitManager({ unitDir: config.unitDir });
  const recorder = new EventRecorder({ clients, nodeName: node.name });
  const shutdown = nodeShutdown(config, {
    pods: () => pods,
    async onChange(shuttingDown) {
      recorder.record(nodeReference(node.name, nodeController.nodeUID), {
        type: "Normal",
        reason: "NodeShutdown",
        message: shuttingDown
          ? "Shutdown manager detected shutdown event"
          : "Shutdown manager detected shutdown cancellation",
      });
      await nodeController.requestStatusUpdate();
    },
  });
  // Ready only while systemk can run pods (checks start once the pods are known).
  const health: RuntimeHealth = new RuntimeHealth({
    pingSystemd: () => units.client.version(),
    stateDirProblem: () => stateDirProblem(config.stateDir),
    staleUnits: (): Promise<string[]> => pods.runtime.staleUnits(),
    onChange: () => void nodeController.requestStatusUpdate().catch(() => {}),
  });
  const nodeController = new NodeController({
    clients,
    config: {
      name: node.name,
      hostname: node.hostname,
      internalIP: node.internalIP,
      externalIP: node.externalIP,
      port: config.port,
      maxPods: config.maxPods,
      disableTaint: config.disableTaint,
      labels: config.nodeLabels,
      taints: config.registerWithTaints,
      systemdVersion: (await units.client.version()).match(/^\d+/)?.[0] ?? "unknown",
      kubeletVersion: KUBELET_VERSION,
    },
    readiness: () => nodeReadiness(health.readiness(), shutdown?.manager.shuttingDown ?? false),
  });
  await nodeController.start();
  log.info(`node ${node.name} registered (${node.internalIP}/${node.externalIP})`);

  const events: EventSink = {
    record(pod, { container, ...info }) {
      const init = pod.spec?.initContainers?.some((c) => c.name === container) ?? false;
      recorder.record(podReference(pod, container ? { name: container, init } : undefined), info);
    },
  };
  const { runtime, oomKills } = localRuntime(config, { units, node, events });
  const pods: PodController = new PodController({
    runtime: { ...runtime, admitHandlers: shutdown ? [shutdown.manager.admit] : [] },
    api: { clients, nodeUID: () => nodeController.nodeUID },
    manifestDir: config.podManifestPath,
  });

  const unwritable = await stateDirProblem(config.stateDir);
  if (unwritable) log.error(unwritable);
  const { adopted, assigned } = await pods.start();
  await health.start();
  await shutdown?.start();
  const certificates = new AbortController();
  const clientRotation = rotateClientCertificate(clients.kubeConfig, {
    nodeName: node.name,
    certDir: config.certDir,
    signal: certificates.signal,
  });
  // Without the API the node still runs its pods; only logs and metrics are missing.
  const api = await startKubeletAPI({
    ...config,
    kubeConfig: clients.kubeConfig,
    node,
    // A static pod answers for its mirror: same namespace and name.
    pods,
    unitProperties: (name) => units.properties(name),
    cgroupUsage: (name) => units.client.getCgroupUsage(name),
    exec: units.exec,
    log: (message) => log.warn(message),
  }).catch((e) => {
    log.error(
      `the kubelet API on ${config.address}:${config.port} did not start, ` +
        `kubectl logs and top will fail for this node: ${(e as Error).message}`,
    );
    return undefined;
  });
  if (api) log.info(`kubelet API listening on ${config.address}:${api.port}`);
  log.info(
    `watching pods of node ${node.name}; ${assigned} assigned, ${adopted} found running`,
  );

  await new Promise<void>((resolve) => {
    for (const signal of ["SIGINT", "SIGTERM"] as const) Deno.addSignalListener(signal, resolve);
  });
  // Pods keep running: a restarted systemk adopts them from systemd.
  log.info(`stopping (pods keep running)`);
  certificates.abort();
  await clientRotation;
  await api?.close();
  await shutdown?.stop();
  await health.stop();
  await pods.stop();
  oomKills?.close();
  await recorder.idle();
  await nodeController.stop();
  await units.close();
  return 0;
}
