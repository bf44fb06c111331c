/**
 * Node mode: register this machine as a Node, run the pods the API server schedules to it,
 * report their status and events, and delete them the way the kubelet does. With
 * `--pod-manifest-path` it also runs that directory's static pods, mirrored into the API.
 *
 * @module
 */
import type { V1Pod } from "@kubernetes/client-node";
import { type Config, imagePolicy, localNodeOptions, securityPolicy } from "./flags.ts";
import { VERSION } from "../version.ts";
import { localNodeFacts } from "../node/local.ts";
import { createClients, loadKubeConfig } from "../kube/client.ts";
import { NodeController } from "../kube/node_controller.ts";
import { PodWatcher } from "../kube/pods.ts";
import { StatusWriter } from "../kube/status.ts";
import { EventRecorder, podReference } from "../kube/events.ts";
import { ServiceAccountTokens } from "../kube/tokens.ts";
import { ObjectAccess, ObjectForbiddenError } from "../kube/objects.ts";
import { deletePodObject } from "../kube/deletion.ts";
import { MirrorPods } from "../kube/mirror.ts";
import { PlanError } from "../plan/mod.ts";
import { PodRuntime } from "../pods/runtime.ts";
import type { EventSink, References } from "../pods/ports.ts";
import { podReferences } from "../pods/references.ts";
import { connectUnitManager } from "../pods/systemd_units.ts";
import { localRuntimeParts } from "../pods/local.ts";
import { stateDirProblem } from "../volumes/apply.ts";
import { StaticPodSource } from "../pods/static.ts";
import { startKubeletAPI } from "../http/mod.ts";
import { bootstrapKubeconfig, rotateClientCertificate } from "../kube/bootstrap.ts";

/** The kubelet version systemk reports: the Kubernetes minor it is tested against, plus ours. */
export const KUBELET_VERSION = `v1.34.0-systemk.${VERSION}`;

/** Runs node mode until SIGINT/SIGTERM; resolves with the exit code. */
export async function runNode(config: Config): Promise<number> {
  if (config.bootstrapKubeconfig) {
    if (!config.kubeconfig) throw new Error("--bootstrap-kubeconfig needs --kubeconfig");
    await bootstrapKubeconfig({
      nodeName: config.nodeName || Deno.hostname(),
      kubeconfigPath: config.kubeconfig,
      bootstrapKubeconfigPath: config.bootstrapKubeconfig,
      certDir: config.certDir,
      log: console.log,
    });
  }
  const clients = createClients(loadKubeConfig(config.kubeconfig));
  const node = localNodeFacts({
    ...localNodeOptions(config),
    apiServer: `${clients.apiServer.host}:${clients.apiServer.port}`,
  });
  const units = await connectUnitManager({ unitDir: config.unitDir });
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
      systemdVersion: await systemdVersion(),
      kubeletVersion: KUBELET_VERSION,
    },
  });
  await nodeController.start();
  console.log(`systemk: node ${node.name} registered (${node.internalIP}/${node.externalIP})`);

  const recorder = new EventRecorder({ clients, nodeName: node.name });
  const events: EventSink = {
    record(pod, type, reason, message, container) {
      const init = pod.spec?.initContainers?.some((c) => c.name === container) ?? false;
      recorder.record(podReference(pod, container ? { name: container, init } : undefined), {
        type,
        reason,
        message,
      });
    },
  };
  const statuses = new StatusWriter({ clients });
  const objects = new ObjectAccess({ clients });
  const tokens = new ServiceAccountTokens({
    clients,
    onRenewalDue(uid) {
      const current = latest.get(uid);
      if (current) runtime.sync(current);
    },
  });
  const latest = new Map<string, V1Pod>();
  const fingerprints = new Map<string, string>();
  // Static pods run whatever the API says; their mirrors only show them there.
  const mirrors = new MirrorPods({
    clients,
    nodeName: node.name,
    nodeUID: () => nodeController.nodeUID,
    statuses,
  });
  /** Static pods by UID, from their manifest's reading until their termination. */
  const staticPods = new Map<string, V1Pod>();
  const isStatic = (pod: V1Pod) => staticPods.has(pod.metadata!.uid!);
  const source = config.podManifestPath
    ? new StaticPodSource({
      dir: config.podManifestPath,
      nodeName: node.name,
      async onChange(pods, removed) {
        for (const pod of pods) {
          staticPods.set(pod.metadata!.uid!, pod);
          runtime.sync(pod);
        }
        mirrors.setStaticPods(pods);
        for (const uid of removed) {
          await runtime.terminate(uid);
          staticPods.delete(uid);
        }
      },
    })
    : undefined;

  const { images, oomKills, userRecords } = localRuntimeParts(units, events, {
    imagePolicy: imagePolicy(config),
  });
  const runtime = new PodRuntime({
    units,
    oomKills,
    node,
    images,
    events,
    stateDir: config.stateDir,
    allowedHostPaths: config.allowedHostPaths,
    policy: securityPolicy(config),
    userRecords,
    onStatus(pod, status) {
      if (isStatic(pod)) return mirrors.setStatus(pod, status);
      const m = pod.metadata!;
      statuses.set({ namespace: m.namespace!, name: m.name!, uid: m.uid! }, status);
    },
    references: (pod) =>
      source && isStatic(pod) ? Promise.resolve(source.references(pod)) : fetchReferences(pod),
    async onTerminated(pod) {
      const m = pod.metadata!;
      if (latest.has(m.uid!)) {
        await deletePodObject(clients, { namespace: m.namespace!, name: m.name!, uid: m.uid! });
      }
      forget(m.uid!);
    },
  });

  /**
   * Reads what the pod references. Each object is watched, so an edit reaches the files and a
   * missing (or not yet permitted) one starts the pod once it appears. A 403 means the Node
   * authorizer has not linked the object to this pod yet: like a missing object, a container
   * config error the runtime shows and retries.
   */
  async function fetchReferences(pod: V1Pod): Promise<References> {
    const uid = pod.metadata!.uid!;
    const resync = () => {
      const current = latest.get(uid);
      if (current) runtime.sync(current);
    };
    try {
      const [found, serviceAccountTokens] = await Promise.all([
        objects.getReferenced(pod.metadata!.namespace!, podReferences(pod), {
          podUID: uid,
          onChange: resync,
        }),
        tokens.tokensFor(pod),
      ]);
      return { ...found, serviceAccountTokens };
    } catch (e) {
      if (!(e instanceof ObjectForbiddenError)) throw e;
      throw new PlanError("CreateContainerConfigError", `${e.message}; retrying`);
    }
  }

  function forget(uid: string) {
    latest.delete(uid);
    fingerprints.delete(uid);
    statuses.forget(uid);
    objects.releasePod(uid);
    tokens.release(uid);
  }

  const unwritable = await stateDirProblem(config.stateDir);
  if (unwritable) console.error(`systemk: ${unwritable}`);
  const adopted = await runtime.adopt();
  await source?.start();
  // Without a manifest directory there are no static pods: mirrors left from before go.
  if (!source) mirrors.setStaticPods([]);
  mirrors.start();
  const watcher = new PodWatcher({
    clients,
    nodeName: node.name,
    onEvent(event) {
      const { type, pod } = event;
      if (mirrors.observe(event)) {
        if (type === "upsert") statuses.reassert(pod);
        return;
      }
      const uid = pod.metadata!.uid!;
      if (type === "delete") {
        // Gone from the API without us finishing its termination (force delete): stop it now.
        latest.delete(uid);
        void runtime.terminate(uid, 0).then(() => forget(uid));
        return;
      }
      latest.set(uid, pod);
      statuses.reassert(pod);
      // Our own status writes come back as updates: only what the runtime acts on matters.
      const fingerprint = desiredFingerprint(pod);
      if (fingerprints.get(uid) === fingerprint) return;
      fingerprints.set(uid, fingerprint);
      runtime.sync(pod);
    },
  });
  await watcher.start();
  await runtime.collectOrphans(new Set([...latest.keys(), ...staticPods.keys()]));
  const certificates = new AbortController();
  const clientRotation = rotateClientCertificate(clients.kubeConfig, {
    nodeName: node.name,
    certDir: config.certDir,
    signal: certificates.signal,
    log: console.log,
  });
  // Without the API the node still runs its pods; only logs and metrics are missing.
  const api = await startKubeletAPI({
    ...config,
    kubeConfig: clients.kubeConfig,
    node,
    // A static pod answers for its mirror: same namespace and name.
    pods: { pods: () => [...latest.values(), ...staticPods.values()] },
    unitProperties: (name) => units.properties(name),
    cgroupUsage: (name) => units.client.getCgroupUsage(name),
    exec: units.exec,
  }).catch((e) => {
    console.error(
      `systemk: the kubelet API on ${config.address}:${config.port} did not start, ` +
        `kubectl logs and top will fail for this node: ${(e as Error).message}`,
    );
    return undefined;
  });
  if (api) console.log(`systemk: kubelet API listening on ${config.address}:${api.port}`);
  console.log(
    `systemk: watching pods of node ${node.name}; ${latest.size} assigned, ${adopted} found running`,
  );

  await new Promise<void>((resolve) => {
    for (const signal of ["SIGINT", "SIGTERM"] as const) Deno.addSignalListener(signal, resolve);
  });
  // Pods keep running: a restarted systemk adopts them from systemd.
  console.log(`systemk: stopping (pods keep running)`);
  certificates.abort();
  await clientRotation;
  await api?.close();
  await watcher.stop();
  await source?.stop();
  await mirrors.stop();
  await runtime.close();
  await statuses.stop();
  await objects.stop();
  tokens.stop();
  oomKills?.close();
  await recorder.idle();
  await nodeController.stop();
  await units.close();
  return 0;
}

/** systemd's version number (`252`), reported as the node's container runtime version. */
async function systemdVersion(): Promise<string> {
  const out = await new Deno.Command("systemctl", { args: ["--version"], stdout: "piped" })
    .output();
  return new TextDecoder().decode(out.stdout).match(/^systemd (\d+)/)?.[1] ?? "unknown";
}

/** What of a pod the runtime acts on: spec, deletion, and the metadata the downward API shows. */
function desiredFingerprint(pod: V1Pod): string {
  const m = pod.metadata ?? {};
  return JSON.stringify([
    pod.spec,
    m.deletionTimestamp,
    m.deletionGracePeriodSeconds,
    m.labels,
    m.annotations,
  ]);
}
