/**
 * What the kubelet API's tests share to reach a node's kubelet API the way a user does
 * (`kubectl logs` through the apiserver): flags for a port of its own on loopback, the admin's
 * approval of the node's serving certificate request, and a command runner for curl and openssl.
 *
 * @module
 */
import assert from "node:assert/strict";
import type { V1CertificateSigningRequest } from "@kubernetes/client-node";
import type { TestCluster } from "../harness/cluster.ts";
import { waitFor } from "./_node_env.ts";

/** systemk flags for a kubelet API on loopback at `port`, its certificate from the cluster. */
export function kubeletAPIFlags(port: number): string[] {
  return ["--address=127.0.0.1", `--port=${port}`, "--rotate-server-certificates"];
}

/**
 * Waits for node `nodeName`'s kubelet-serving CSR and approves it as the cluster admin, as the
 * README's quickstart does with `kubectl certificate approve`.
 */
export async function approveServingCertificate(
  cluster: TestCluster,
  nodeName: string,
  describe?: () => Promise<string>,
): Promise<V1CertificateSigningRequest> {
  const csr = await waitFor(
    "the node's kubelet-serving CSR",
    async () => {
      // The README's field selector, so that its command line is the one tested.
      const out = await cluster.kubectl([
        ...["get", "csr", "-o", "json"],
        "--field-selector=spec.signerName=kubernetes.io/kubelet-serving",
      ]);
      if (out.code !== 0) return undefined;
      const list = JSON.parse(out.stdout) as { items: V1CertificateSigningRequest[] };
      return list.items.find((c) => c.spec.username === `system:node:${nodeName}`);
    },
    60_000,
    describe,
  );
  const approved = await cluster.kubectl(["certificate", "approve", csr.metadata!.name!]);
  assert.equal(approved.code, 0, approved.stderr);
  return csr;
}

/** Runs a command to completion: exit code, stdout and stderr together. */
export async function run(cmd: string, args: string[]): Promise<{ code: number; out: string }> {
  const r = await new Deno.Command(cmd, { args, stdout: "piped", stderr: "piped" }).output();
  const decode = (b: Uint8Array) => new TextDecoder().decode(b);
  return { code: r.code, out: decode(r.stdout) + decode(r.stderr) };
}

/** A client certificate for `subject`, signed by the CA at `ca` (`.crt`/`.key`), in `dir`. */
export async function clientCert(dir: string, name: string, subject: string, ca: string) {
  const cert = { cert: `${dir}/${name}.crt`, key: `${dir}/${name}.key` };
  const r = await run("openssl", [
    ...["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"],
    ...["-keyout", cert.key, "-out", cert.cert, "-days", "1", "-subj", subject],
    ...["-CA", `${ca}.crt`, "-CAkey", `${ca}.key`, "-addext", "extendedKeyUsage=clientAuth"],
    ...["-addext", "basicConstraints=critical,CA:FALSE"],
  ]);
  assert.equal(r.code, 0, r.out);
  return cert;
}
