/**
 * The kubelet API's serving certificate, with no hand work:
 *
 * - `--tls-cert-file`/`--tls-private-key-file` given: those files;
 * - else a self-signed certificate for the node's hostname and addresses, made once with
 *   `openssl` and kept in `--cert-dir` (`kubelet.crt`, `kubelet.key`), reused on restart;
 * - with `--rotate-server-certificates`: a certificate from the cluster (CSR with signer
 *   `kubernetes.io/kubelet-serving`), kept in `--cert-dir/kubelet-server-current.pem` and
 *   renewed before it expires. Until the first one is issued the self-signed one serves.
 *
 * @module
 */
import { X509Certificate } from "node:crypto";
import type { KubeConfig } from "@kubernetes/client-node";
import {
  type CertificateRequestSpec,
  keepRenewed,
  newPrivateKey,
  openssl,
  requestCertificate,
  subjectAltName,
  writeSecretFile,
} from "../kube/certificates.ts";
import type { ServingCertificate } from "./server.ts";

/** The names a serving certificate must cover. */
export interface ServingIdentity {
  nodeName: string;
  hostname: string;
  /** The node's IP addresses (InternalIP, ExternalIP). */
  addresses: string[];
}

/** Where the serving certificate comes from (the flags). */
export interface ServingCertificateOptions extends ServingIdentity {
  tlsCertFile?: string;
  tlsKeyFile?: string;
  certDir: string;
  rotate: boolean;
}

/** Path of the cluster-issued serving certificate and key (one PEM file, as the kubelet). */
export function servingCertificatePath(certDir: string): string {
  return `${certDir}/kubelet-server-current.pem`;
}

/** The certificate to serve with now; see the module doc for the order. */
export async function loadServingCertificate(
  options: ServingCertificateOptions,
): Promise<ServingCertificate> {
  if (options.tlsCertFile || options.tlsKeyFile) {
    if (!options.tlsCertFile || !options.tlsKeyFile) {
      throw new Error("--tls-cert-file and --tls-private-key-file go together; give both");
    }
    return {
      cert: await Deno.readTextFile(options.tlsCertFile),
      key: await Deno.readTextFile(options.tlsKeyFile),
    };
  }
  await Deno.mkdir(options.certDir, { recursive: true, mode: 0o700 });
  if (options.rotate) {
    const pem = await Deno.readTextFile(servingCertificatePath(options.certDir)).catch(() => "");
    const issued = splitPem(pem);
    if (issued && isCurrent(issued.cert)) return issued;
  }
  return await selfSignedCertificate(options.certDir, options);
}

/** Splits a PEM file holding a certificate and a private key. */
export function splitPem(pem: string): ServingCertificate | undefined {
  const cert = pem.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----\n?/)?.[0];
  const key = pem.match(
    /-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]+?-----END [A-Z ]*PRIVATE KEY-----\n?/,
  )
    ?.[0];
  return cert && key ? { cert, key } : undefined;
}

function isCurrent(certPem: string, now = new Date()): boolean {
  try {
    const cert = new X509Certificate(certPem);
    return new Date(cert.validFrom) <= now && now < new Date(cert.validTo);
  } catch {
    return false;
  }
}

/**
 * The self-signed certificate in `certDir`, made if missing or expired: CN `<hostname>@<time>`
 * as the kubelet's, SANs for the hostname, `localhost` and the node's addresses, one year.
 */
export async function selfSignedCertificate(
  certDir: string,
  identity: Omit<ServingIdentity, "nodeName">,
): Promise<ServingCertificate> {
  const certPath = `${certDir}/kubelet.crt`;
  const keyPath = `${certDir}/kubelet.key`;
  const [cert, key] = await Promise.all(
    [certPath, keyPath].map((p) => Deno.readTextFile(p).catch(() => "")),
  );
  if (cert && key && isCurrent(cert)) return { cert, key };
  const newKey = await newPrivateKey();
  const config = `${certDir}/.kubelet.${crypto.randomUUID()}.cnf`;
  const san = subjectAltName(
    [...new Set([identity.hostname, "localhost"])],
    [...new Set(identity.addresses)],
  );
  // A config of our own: the distribution's default marks every certificate as a CA.
  await Deno.writeTextFile(
    config,
    [
      "[req]",
      "distinguished_name = dn",
      "x509_extensions = ext",
      "prompt = no",
      "[dn]",
      "[ext]",
      "basicConstraints = critical,CA:FALSE",
      "keyUsage = critical,digitalSignature,keyEncipherment",
      "extendedKeyUsage = serverAuth",
      `subjectAltName = ${san}`,
      "",
    ].join("\n"),
  );
  try {
    const newCert = await openssl([
      ...["req", "-x509", "-config", config, "-key", "/dev/stdin", "-days", "365"],
      ...["-subj", `/CN=${identity.hostname}@${Math.floor(Date.now() / 1000)}`],
    ], newKey);
    await writeSecretFile(keyPath, newKey);
    await writeSecretFile(certPath, newCert);
    return { cert: newCert, key: newKey };
  } finally {
    await Deno.remove(config).catch(() => {});
  }
}

/** The serving certificate request of a node, as the kubelet makes it. */
export function servingRequest(identity: ServingIdentity): CertificateRequestSpec {
  return {
    signerName: "kubernetes.io/kubelet-serving",
    usages: ["digital signature", "key encipherment", "server auth"],
    commonName: `system:node:${identity.nodeName}`,
    organizations: ["system:nodes"],
    dnsNames: [identity.hostname],
    ipAddresses: [...new Set(identity.addresses)],
  };
}

/**
 * Keeps a cluster-issued serving certificate in `certDir` (request, wait for approval, renew at
 * 80 % of its life) and hands each new one to `onCertificate`, until `signal` aborts.
 */
export function rotateServingCertificate(
  kubeConfig: KubeConfig,
  options: ServingIdentity & {
    certDir: string;
    signal: AbortSignal;
    onCertificate(certificate: ServingCertificate): void;
    log?: (message: string) => void;
  },
): Promise<void> {
  return keepRenewed({
    path: servingCertificatePath(options.certDir),
    what: "serving certificate",
    request: (signal) =>
      requestCertificate(kubeConfig, servingRequest(options), {
        signal,
        onCreated: (name) =>
          options.log?.(
            `serving certificate requested as ${name}; ` +
              `approve it: kubectl certificate approve ${name}`,
          ),
      }),
    onRenewed: (issued) => options.onCertificate({ cert: issued.certPem, key: issued.keyPem }),
    signal: options.signal,
    log: options.log,
  });
}
