/**
 * The fixture of the src/kube integration tests: a test cluster with a node identity's clients
 * and a recording logger, a node configuration, a registered Node, polling, and admin kubectl
 * that fails the test on error.
 *
 * @module
 */
import assert from "node:assert/strict";
import { startTestCluster, type TestCluster, type TestClusterOptions } from "../harness/cluster.ts";
import { createClients, type KubeClients, loadKubeConfig } from "../../src/kube/client.ts";
import type { KubeLogger } from "../../src/kube/client.ts";
import type { NodeConfig } from "../../src/kube/node.ts";
import { NodeController } from "../../src/kube/node_controller.ts";

/** Options for integration tests: client-node keeps HTTPS connections alive after a test. */
export const CLUSTER_TEST = { sanitizeOps: false, sanitizeResources: false } as const;

/** API clients authenticated as node `name` (system:node:<name>, group system:nodes). */
export async function nodeClients(cluster: TestCluster, name: string): Promise<KubeClients> {
  return createClients(loadKubeConfig(await cluster.nodeKubeconfig(name)));
}

/** A running test cluster as seen by one node: its clients and a logger to assert on. */
export interface KubeFixture {
  cluster: TestCluster;
  /** Clients of node `nodeName`'s identity. */
  clients: KubeClients;
  log: KubeLogger & { lines: string[] };
  nodeName: string;
}

/** Starts a fresh cluster and logs in as node `nodeName`; the caller stops `cluster`. */
export async function startKubeFixture(
  nodeName: string,
  opts: TestClusterOptions = {},
): Promise<KubeFixture> {
  const cluster = await startTestCluster(opts);
  try {
    const clients = await nodeClients(cluster, nodeName);
    return { cluster, clients, log: recordingLogger(), nodeName };
  } catch (err) {
    await cluster.stop();
    throw err;
  }
}

/** The configuration of a test node `name` on 127.0.0.2, with `overrides`. */
export function testNodeConfig(name: string, overrides: Partial<NodeConfig> = {}): NodeConfig {
  return {
    name,
    hostname: name,
    internalIP: "127.0.0.2",
    externalIP: "127.0.0.2",
    port: 10250,
    maxPods: 110,
    disableTaint: false,
    labels: {},
    taints: [],
    systemdVersion: "252",
    kubeletVersion: "v1.34.0-systemk.0.1.0",
    ...overrides,
  };
}

/**
 * Registers the fixture's Node and keeps it heartbeating (the caller stops it): a registered
 * Node keeps the pod garbage collector away from pods bound to it and owns mirror pods.
 */
export async function registerNode(fixture: KubeFixture): Promise<NodeController> {
  const node = new NodeController({
    clients: fixture.clients,
    log: fixture.log,
    config: testNodeConfig(fixture.nodeName),
  });
  await node.start();
  return node;
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

/** Admin `kubectl get -o json`, parsed; undefined while the object cannot be read. */
export async function getJSONIfAny<T = Record<string, unknown>>(
  cluster: TestCluster,
  args: string[],
): Promise<T | undefined> {
  const r = await cluster.kubectl(["get", ...args, "-o", "json"]);
  return r.code === 0 ? JSON.parse(r.stdout) as T : undefined;
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

/**
 * The TCP connections this process holds open to `port` (any address), as local port numbers:
 * its socket file descriptors matched against the kernel's connection tables.
 */
export async function openConnections(port: number): Promise<number[]> {
  const inodes = new Set<string>();
  for await (const fd of Deno.readDir("/proc/self/fd")) {
    const target = await Deno.readLink(`/proc/self/fd/${fd.name}`).catch(() => "");
    const inode = /^socket:\[(\d+)\]$/.exec(target)?.[1];
    if (inode) inodes.add(inode);
  }
  const local: number[] = [];
  for (const table of ["/proc/self/net/tcp", "/proc/self/net/tcp6"]) {
    for (const line of (await Deno.readTextFile(table)).trim().split("\n").slice(1)) {
      // sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode
      const [, localAddress, remoteAddress, state, , , , , , inode] = line.trim().split(/\s+/);
      const ESTABLISHED = "01";
      if (
        state === ESTABLISHED && inodes.has(inode) &&
        parseInt(remoteAddress.split(":")[1], 16) === port
      ) {
        local.push(parseInt(localAddress.split(":")[1], 16));
      }
    }
  }
  return local.sort((a, b) => a - b);
}
