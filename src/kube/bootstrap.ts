/**
 * The node's client certificate, as the kubelet gets it (TLS bootstrap, `--bootstrap-kubeconfig`):
 * a bootstrap token asks for `system:node:<name>` in `system:nodes` with signer
 * `kubernetes.io/kube-apiserver-client-kubelet`; the resulting kubeconfig is written to
 * `--kubeconfig` and used from then on, and the certificate is renewed before it expires
 * (requests and renewal: {@link ./certificates.ts}).
 *
 * @module
 */
import { KubeConfig } from "@kubernetes/client-node";
import {
  type CertificateRequestSpec,
  keepRenewed,
  requestCertificate,
  writeSecretFile,
} from "./certificates.ts";
import { log } from "../log/mod.ts";

/** What TLS bootstrap needs. */
export interface BootstrapOptions {
  nodeName: string;
  /** Where the node's kubeconfig goes (`--kubeconfig`). */
  kubeconfigPath: string;
  /** The kubeconfig with the bootstrap token (`--bootstrap-kubeconfig`). */
  bootstrapKubeconfigPath: string;
  /** Where key and certificate go (`--cert-dir`). */
  certDir: string;
}

/** The file holding the node's client key and certificate, as the kubelet names it. */
export function clientCertificatePath(certDir: string): string {
  return `${certDir}/kubelet-client-current.pem`;
}

/** The client certificate request of node `nodeName`. */
function nodeClientRequest(nodeName: string): CertificateRequestSpec {
  return {
    signerName: "kubernetes.io/kube-apiserver-client-kubelet",
    usages: ["digital signature", "key encipherment", "client auth"],
    commonName: `system:node:${nodeName}`,
    organizations: ["system:nodes"],
  };
}

/**
 * TLS bootstrap: when `kubeconfigPath` does not exist yet, requests a client certificate with
 * the bootstrap kubeconfig, writes key and certificate under `certDir` and a kubeconfig at
 * `kubeconfigPath` that points at them (so a renewal is picked up without a restart).
 *
 * @return true when a kubeconfig was written, false when one existed.
 */
export async function bootstrapKubeconfig(options: BootstrapOptions): Promise<boolean> {
  if (await exists(options.kubeconfigPath)) return false;
  const bootstrap = new KubeConfig();
  bootstrap.loadFromFile(options.bootstrapKubeconfigPath);
  const cluster = bootstrap.getCurrentCluster();
  if (!cluster) throw new Error(`${options.bootstrapKubeconfigPath} names no current cluster`);
  const issued = await requestCertificate(bootstrap, nodeClientRequest(options.nodeName), {
    onCreated: (name) => log.info(`TLS bootstrap: waiting for certificate request ${name}`),
  });
  await Deno.mkdir(options.certDir, { recursive: true, mode: 0o700 });
  const pem = clientCertificatePath(options.certDir);
  await writeSecretFile(pem, issued.certPem + issued.keyPem);
  const caData = cluster.caData ??
    (cluster.caFile ? btoa(await Deno.readTextFile(cluster.caFile)) : undefined);
  const kubeconfig = {
    apiVersion: "v1",
    kind: "Config",
    clusters: [{
      name: "default-cluster",
      cluster: {
        server: cluster.server,
        ...(caData ? { "certificate-authority-data": caData } : {}),
        ...(cluster.skipTLSVerify ? { "insecure-skip-tls-verify": true } : {}),
      },
    }],
    users: [{ name: "default-auth", user: { "client-certificate": pem, "client-key": pem } }],
    contexts: [{
      name: "default-context",
      context: { cluster: "default-cluster", user: "default-auth", namespace: "default" },
    }],
    "current-context": "default-context",
  };
  // JSON is YAML: kubectl and client-node read it.
  await writeSecretFile(options.kubeconfigPath, JSON.stringify(kubeconfig, null, 2) + "\n");
  log.info(`TLS bootstrap: wrote ${options.kubeconfigPath}`);
  return true;
}

/**
 * Renews the node's client certificate with the node's own credentials (the cluster approves
 * a node's renewal of its own client certificate), until `signal` aborts. Only applies to a
 * kubeconfig that points at `kubelet-client-current.pem` (one TLS bootstrap wrote).
 */
export function rotateClientCertificate(
  kubeConfig: KubeConfig,
  options: { nodeName: string; certDir: string; signal: AbortSignal },
): Promise<void> {
  const path = clientCertificatePath(options.certDir);
  if (kubeConfig.getCurrentUser()?.certFile !== path) return Promise.resolve();
  return keepRenewed({
    path,
    what: "client certificate",
    request: (signal) =>
      requestCertificate(kubeConfig, nodeClientRequest(options.nodeName), { signal }),
    signal: options.signal,
  });
}

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return false;
    throw e;
  }
}
