/**
 * Helpers of the kubelet API's end-to-end tests.
 *
 * @module
 */
import type { V1CertificateSigningRequest } from "@kubernetes/client-node";
import { type NodeEnv, waitFor } from "../e2e/_node_env.ts";

/** A port free on loopback now. */
export function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  return port;
}

/** Runs a command to completion: exit code, stdout and stderr together. */
export async function run(cmd: string, args: string[]): Promise<{ code: number; out: string }> {
  const r = await new Deno.Command(cmd, { args, stdout: "piped", stderr: "piped" }).output();
  const decode = (b: Uint8Array) => new TextDecoder().decode(b);
  return { code: r.code, out: decode(r.stdout) + decode(r.stderr) };
}

/** Waits for the node's kubelet-serving CSR and approves it, as an admin would. */
export async function approveServingCSR(
  env: NodeEnv,
  describe?: () => Promise<string>,
): Promise<V1CertificateSigningRequest> {
  const csr = await waitFor(
    "the kubelet-serving CSR",
    async () => {
      const list = await env.getJSON<{ items: V1CertificateSigningRequest[] }>(["csr"]);
      return list?.items.find((c) =>
        c.spec.signerName === "kubernetes.io/kubelet-serving" &&
        c.spec.username === `system:node:${env.nodeName}`
      );
    },
    60_000,
    describe,
  );
  await env.kubectl(["certificate", "approve", csr.metadata!.name!]);
  return csr;
}
