/**
 * The kubelet HTTPS API of systemk: container logs from journald, the node's logs (`/logs/`,
 * `/var/log` and the node log query), pods, usage for metrics-server, systemk's own metrics,
 * exec/attach/port-forward over SPDY, with a serving certificate that sets itself up and every
 * request authenticated and authorized against the cluster.
 *
 * @example Usage
 * ```ts ignore
 * const api = await startKubeletAPI({ ...flags, kubeConfig, node, pods, unitProperties });
 * // ...
 * await api.close();
 * ```
 *
 * @module
 */
import type { KubeConfig } from "@kubernetes/client-node";
import type { ExecOptions, ExecProcess } from "../exec/container.ts";
import { apiServerReviews, RequestAuth } from "./auth.ts";
import { kubeletHandler } from "./handler.ts";
import { Journal } from "./journal.ts";
import { NodeLogs } from "./node_logs.ts";
import type { CgroupUsageReader, PodSource, UnitPropertiesReader } from "./pods.ts";
import { ResourceSampler } from "./resources.ts";
import { KubeletServer } from "./server.ts";
import { loadServingCertificate, rotateServingCertificate } from "./tls.ts";
import { parseCertificateBundle } from "./x509.ts";

export type { CgroupUsageReader, PodSource, UnitPropertiesReader } from "./pods.ts";

/** Everything the kubelet API is started with. */
export interface KubeletAPIOptions {
  /** The node identity's kubeconfig: reviews and certificate requests are made with it. */
  kubeConfig: KubeConfig;
  node: { name: string; hostname: string; internalIP: string; externalIP: string };
  pods: PodSource;
  unitProperties: UnitPropertiesReader;
  /** Reads a pod slice's cgroup and usage (pods' figures in `/stats/summary`, `kubectl top`). */
  cgroupUsage: CgroupUsageReader;
  /** Runs commands in containers (`kubectl exec`); absent: exec answers 501. */
  exec?: (unit: string, options: ExecOptions) => Promise<ExecProcess>;
  address?: string;
  port: number;
  tlsCertFile?: string;
  tlsKeyFile?: string;
  /** Client CA bundle; default: the CA of the kubeconfig's cluster. */
  clientCAFile?: string;
  certDir: string;
  rotateServerCertificates: boolean;
  /** `--enable-system-log-handler`: serve `/var/log` at `/logs/`; off: `/logs/` answers 405. */
  enableSystemLogHandler: boolean;
  /** `--enable-system-log-query`: answer `/logs/?query=` from journald. */
  enableSystemLogQuery: boolean;
  log?: (message: string) => void;
}

/** A running kubelet API. */
export interface KubeletAPI {
  port: number;
  close(): Promise<void>;
}

/** Starts the kubelet API; see the module doc. */
export async function startKubeletAPI(options: KubeletAPIOptions): Promise<KubeletAPI> {
  const log = options.log ?? ((message: string) => console.error(message));
  const identity = {
    nodeName: options.node.name,
    hostname: options.node.hostname,
    addresses: [options.node.internalIP, options.node.externalIP],
  };
  const certificate = await loadServingCertificate({
    ...identity,
    tlsCertFile: options.tlsCertFile,
    tlsKeyFile: options.tlsKeyFile,
    certDir: options.certDir,
    rotate: options.rotateServerCertificates,
  });
  const auth = new RequestAuth({
    nodeName: options.node.name,
    clientCAs: parseCertificateBundle(await clientCABundle(options)),
    reviews: apiServerReviews(options.kubeConfig),
    log,
  });
  const handler = kubeletHandler({
    nodeName: options.node.name,
    pods: options.pods,
    exec: options.exec,
    journal: new Journal(),
    nodeLogs: options.enableSystemLogHandler
      ? new NodeLogs({ query: options.enableSystemLogQuery })
      : undefined,
    sampler: new ResourceSampler({
      pods: options.pods,
      unitProperties: options.unitProperties,
      cgroupUsage: options.cgroupUsage,
    }),
    auth,
    log,
  });
  const server = await KubeletServer.start({
    address: options.address,
    port: options.port,
    certificate,
    handler,
    log,
  });
  const stop = new AbortController();
  const rotation = options.rotateServerCertificates && !options.tlsCertFile
    ? rotateServingCertificate(options.kubeConfig, {
      ...identity,
      certDir: options.certDir,
      signal: stop.signal,
      onCertificate: (c) => server.setCertificate(c),
      log,
    })
    : Promise.resolve();
  return {
    port: server.port,
    async close() {
      stop.abort();
      await rotation;
      await server.close();
    },
  };
}

/** The client CA bundle's PEM: the flag's file, else the cluster CA of the kubeconfig. */
async function clientCABundle(options: KubeletAPIOptions): Promise<string> {
  if (options.clientCAFile) return await Deno.readTextFile(options.clientCAFile);
  const cluster = options.kubeConfig.getCurrentCluster();
  if (cluster?.caData) return atob(cluster.caData);
  if (cluster?.caFile) return await Deno.readTextFile(cluster.caFile);
  throw new Error(
    "no client CA to verify kubelet API clients with: pass --client-ca-file",
  );
}
