/**
 * Shared pieces of the src/kube integration tests: node clients for a test cluster, polling,
 * and admin kubectl that fails the test on error.
 *
 * @module
 */
import assert from "node:assert/strict";
import type { TestCluster } from "../harness/cluster.ts";
import { createClients, type KubeClients, loadKubeConfig } from "../../src/kube/client.ts";
import type { KubeLogger } from "../../src/kube/client.ts";

/** Options for integration tests: client-node keeps HTTPS connections alive after a test. */
export const CLUSTER_TEST = { sanitizeOps: false, sanitizeResources: false } as const;

/** API clients authenticated as node `name` (system:node:<name>, group system:nodes). */
export async function nodeClients(cluster: TestCluster, name: string): Promise<KubeClients> {
  return createClients(loadKubeConfig(await cluster.nodeKubeconfig(name)));
}

/** A logger that keeps lines for assertions and echoes them for the test log. */
export function recordingLogger(): KubeLogger & { lines: string[] } {
  const lines: string[] = [];
  const keep = (m: string) => {
    lines.push(m);
    console.log(`  log: ${m}`);
  };
  return { lines, info: keep, warn: keep };
}

/** Polls `check` every 100 ms until it returns a value other than undefined. */
export async function eventually<T>(
  what: string,
  check: () => Promise<T | undefined> | T | undefined,
  timeoutMs = 30_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Runs admin kubectl; fails the test on a non-zero exit; returns stdout. */
export async function kubectlOk(
  cluster: TestCluster,
  args: string[],
  stdin?: string,
): Promise<string> {
  const r = await cluster.kubectl(args, { stdin });
  assert.equal(r.code, 0, `kubectl ${args.join(" ")}: ${r.stderr}`);
  return r.stdout;
}

/** Admin `kubectl get -o json`, parsed. */
export async function getJSON<T = Record<string, unknown>>(
  cluster: TestCluster,
  args: string[],
): Promise<T> {
  return JSON.parse(await kubectlOk(cluster, ["get", ...args, "-o", "json"])) as T;
}

/** The HTTP status of a client-node call: 200 when it succeeded. */
export async function statusOf(call: Promise<unknown>): Promise<number> {
  try {
    await call;
    return 200;
  } catch (err) {
    const code = (err as { code?: number }).code;
    if (typeof code === "number") return code;
    throw err;
  }
}

/** A pod bound to `nodeName` directly (no scheduler), optionally referencing objects. */
export function boundPod(
  name: string,
  nodeName: string,
  refs: { configMaps?: string[]; secrets?: string[] } = {},
): Record<string, unknown> {
  return {
    apiVersion: "v1",
    kind: "Pod",
    metadata: { name, namespace: "default" },
    spec: {
      nodeName,
      terminationGracePeriodSeconds: 30,
      containers: [{ name: "main", image: "/bin/sleep", command: ["/bin/sleep", "infinity"] }],
      volumes: [
        ...(refs.configMaps ?? []).map((n, i) => ({ name: `cm${i}`, configMap: { name: n } })),
        ...(refs.secrets ?? []).map((n, i) => ({ name: `s${i}`, secret: { secretName: n } })),
      ],
    },
  };
}
