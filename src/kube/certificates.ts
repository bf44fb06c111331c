/**
 * Certificates from the cluster through CertificateSigningRequests: a new P-256 key and a
 * request for it (made by `openssl`; the key never leaves the node), waiting for approval and
 * signing, and keeping a certificate file renewed before it expires. Used for the node's
 * client certificate ({@link ./bootstrap.ts}) and the kubelet API's serving certificate
 * (`--rotate-server-certificates`, {@link ../http/tls.ts}).
 *
 * @module
 */
import { CertificatesV1Api, type KubeConfig } from "@kubernetes/client-node";
import { X509Certificate } from "node:crypto";
import { log } from "../log/mod.ts";
import { runCommand } from "../process/mod.ts";

/** What a certificate request asks for. */
export interface CertificateRequestSpec {
  signerName: string;
  /** Key usages as the CSR API spells them (`digital signature`, `client auth`, ...). */
  usages: string[];
  commonName: string;
  organizations: string[];
  dnsNames?: string[];
  ipAddresses?: string[];
}

/** A private key and the certificate the cluster issued for it, PEM. */
export interface IssuedCertificate {
  keyPem: string;
  certPem: string;
}

/**
 * Runs `openssl` with `stdin`, resolving with its standard output.
 *
 * @throws Error with openssl's message when it fails.
 */
export async function openssl(args: string[], stdin?: string): Promise<string> {
  const out = await runCommand(["openssl", ...args], { stdin });
  if (!out.success) throw new Error(`openssl ${args[0]} failed: ${out.stderr.trim()}`);
  return out.stdout;
}

/** A fresh P-256 private key, PEM (PKCS#8). */
export function newPrivateKey(): Promise<string> {
  return openssl(["genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"]);
}

/** OpenSSL's `-subj` form of CN and O, with `/` and `\` in values escaped. */
export function opensslSubject(commonName: string, organizations: readonly string[]): string {
  const escape = (v: string) => v.replace(/[\\/]/g, (c) => `\\${c}`);
  return organizations.map((o) => `/O=${escape(o)}`).join("") + `/CN=${escape(commonName)}`;
}

/** The subjectAltName value for DNS names and IP addresses, or undefined when there are none. */
export function subjectAltName(dnsNames: readonly string[] = [], ips: readonly string[] = []) {
  const names = [...dnsNames.map((n) => `DNS:${n}`), ...ips.map((ip) => `IP:${ip}`)];
  return names.length ? names.join(",") : undefined;
}

/** A PKCS#10 certificate request (PEM) for `keyPem`. */
export function certificateRequestPem(
  keyPem: string,
  spec: CertificateRequestSpec,
): Promise<string> {
  const args = [
    "req",
    "-new",
    "-key",
    "/dev/stdin",
    "-subj",
    opensslSubject(spec.commonName, spec.organizations),
  ];
  const san = subjectAltName(spec.dnsNames, spec.ipAddresses);
  if (san) args.push("-addext", `subjectAltName=${san}`);
  return openssl(args, keyPem);
}

/** Options of {@link requestCertificate}. */
export interface RequestCertificateOptions {
  /** Give up after this long (ms); default 15 min, as long as an admin may take to approve. */
  timeoutMs?: number;
  /** Time between looks at the request (ms); default 1 s. */
  pollMs?: number;
  /** Told once the request is created (its name, so a log can say what to approve). */
  onCreated?: (name: string) => void;
  signal?: AbortSignal;
}

/**
 * Creates a CertificateSigningRequest for a new key and waits until it is approved and signed.
 *
 * @return the key and the issued certificate.
 * @throws when the request is denied or fails, or on timeout.
 */
export async function requestCertificate(
  kubeConfig: KubeConfig,
  spec: CertificateRequestSpec,
  options: RequestCertificateOptions = {},
): Promise<IssuedCertificate> {
  const api = kubeConfig.makeApiClient(CertificatesV1Api);
  const keyPem = await newPrivateKey();
  const request = await certificateRequestPem(keyPem, spec);
  const created = await api.createCertificateSigningRequest({
    body: {
      apiVersion: "certificates.k8s.io/v1",
      kind: "CertificateSigningRequest",
      metadata: { generateName: "csr-" },
      spec: {
        request: btoa(request),
        signerName: spec.signerName,
        usages: spec.usages,
      },
    },
  });
  const name = created.metadata!.name!;
  options.onCreated?.(name);
  const deadline = Date.now() + (options.timeoutMs ?? 15 * 60_000);
  const signal = options.signal ?? new AbortController().signal;
  while (Date.now() < deadline) {
    signal.throwIfAborted();
    const csr = await api.readCertificateSigningRequest({ name });
    const failed = csr.status?.conditions?.find((c) => c.type === "Denied" || c.type === "Failed");
    if (failed) {
      throw new Error(
        `certificate request ${name} ${failed.type.toLowerCase()}: ${
          failed.message ?? failed.reason ?? ""
        }`,
      );
    }
    if (csr.status?.certificate) return { keyPem, certPem: atob(csr.status.certificate) };
    await sleep(options.pollMs ?? 1000, signal);
  }
  throw new Error(`certificate request ${name} was not approved and signed in time`);
}

/**
 * When a certificate should be renewed: at 80 % of its lifetime (the kubelet picks a random
 * point between 70 and 90 %).
 */
export function renewalTime(certPem: string): Date {
  const cert = new X509Certificate(certPem);
  const from = new Date(cert.validFrom).getTime();
  const to = new Date(cert.validTo).getTime();
  return new Date(from + (to - from) * 0.8);
}

/** Writes `text` to `path` atomically (temporary file, then rename), readable by root only. */
export async function writeSecretFile(path: string, text: string): Promise<void> {
  const temporary = `${path}.${crypto.randomUUID()}.tmp`;
  await Deno.writeTextFile(temporary, text, { mode: 0o600 });
  await Deno.rename(temporary, path);
}

/** Options of {@link keepRenewed}. */
export interface RenewalOptions {
  /** The PEM file holding certificate and key; renewed in place. */
  path: string;
  /** What is renewed, for the log (`client certificate`). */
  what: string;
  /** Gets a new certificate from the cluster. */
  request(signal: AbortSignal): Promise<IssuedCertificate>;
  /** Told after each renewal, with the new PEMs. */
  onRenewed?(issued: IssuedCertificate): void;
  signal: AbortSignal;
  /** Where progress and failures are told (default: systemk's logger). */
  log?: (message: string) => void;
}

/**
 * Keeps the certificate in `path` renewed until `signal` aborts: a missing or unreadable file
 * is requested at once, a present one at its {@link renewalTime}; a failed request is retried
 * after a minute while the old certificate keeps serving.
 */
export async function keepRenewed(options: RenewalOptions): Promise<void> {
  const { signal } = options;
  const say = options.log ?? ((message: string) => log.info(message));
  while (!signal.aborted) {
    const current = await Deno.readTextFile(options.path).catch(() => undefined);
    let wait = 0;
    try {
      if (current) wait = renewalTime(current).getTime() - Date.now();
    } catch {
      // Not a certificate: request one now.
    }
    if (wait > 0 && !await sleep(wait, signal)) return;
    try {
      const issued = await options.request(signal);
      await writeSecretFile(options.path, issued.certPem + issued.keyPem);
      say(
        `${options.what} issued, valid until ${new X509Certificate(issued.certPem).validTo}`,
      );
      options.onRenewed?.(issued);
    } catch (e) {
      if (signal.aborted) return;
      say(`requesting the ${options.what} failed: ${(e as Error).message}`);
      if (!await sleep(60_000, signal)) return;
    }
  }
}

/** Waits `ms` (timers cap at ~24.8 days, so longer waits run in steps); false when aborted. */
function sleep(ms: number, signal: AbortSignal): Promise<boolean> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve(false);
    const step = Math.min(ms, 2 ** 31 - 1);
    const timer = setTimeout(() => {
      signal.removeEventListener("abort", onAbort);
      resolve(step === ms ? true : sleep(ms - step, signal));
    }, step);
    const onAbort = () => {
      clearTimeout(timer);
      resolve(false);
    };
    signal.addEventListener("abort", onAbort, { once: true });
  });
}
