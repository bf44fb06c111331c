/**
 * The end-to-end setting: a real control plane, a real systemd booted in namespaces, and
 * systemk running inside that systemd as node `nodeName` with the node's own credentials.
 *
 * @module
 */
import { startTestCluster, type TestCluster, type TestClusterOptions } from "../harness/cluster.ts";
import { bootTestSystemd, type TestSystemd } from "../harness/systemd.ts";
import { createVethLink } from "../harness/network.ts";
import { waitFor } from "../harness/wait.ts";
import { PERMISSION_FLAGS } from "../../scripts/permissions.ts";
import type { CoreV1Event, V1Pod } from "@kubernetes/client-node";

export { waitFor };

const REPO = new URL("../..", import.meta.url).pathname.replace(/\/$/, "");
const AGENT_UNIT = "systemk-agent";

/** A running node under test. */
export interface NodeEnv {
  cluster: TestCluster;
  system: TestSystemd;
  nodeName: string;
  kubeconfig: string;
  /** The node's InternalIP and ExternalIP, also its pods' IP (127.0.0.1 without a network). */
  nodeIP: string;
  /** Runs kubectl as the cluster admin; throws on a non-zero exit. */
  kubectl(args: string[], stdin?: string): Promise<string>;
  /** Parsed `kubectl get -o json`. */
  getJSON<T = Record<string, unknown>>(args: string[]): Promise<T | undefined>;
  /** `kubectl apply` of the given objects (as the admin). */
  apply(...objects: unknown[]): Promise<void>;
  /** Starts systemk inside the test systemd, as the transient service `systemk-agent`. */
  startAgent(extraFlags?: string[]): Promise<void>;
  /**
   * Starts one more systemk in the same systemd, as node `nodeName` with that node's own
   * credentials, as the transient service `systemk-agent-<nodeName>` (returned). For many-node
   * setups: each agent only adopts units carrying its own node name.
   */
  startAgentAs(nodeName: string, flags?: string[]): Promise<string>;
  /** Kills systemk with `signal` and waits for it. */
  stopAgent(signal?: Deno.Signal): Promise<void>;
  /** What systemk logged so far (all its runs). */
  agentLog(): Promise<string>;
  /** Names of systemk's container units in the test systemd (not the pods' slices). */
  units(): Promise<string[]>;
  /** One property of a unit of the test systemd (`systemctl show --value`). */
  unitProperty(unit: string, property: string): Promise<string>;
  /**
   * The machine comes back from a reboot: the test systemd, if it still runs, ends at once (a
   * power cut); a fresh one boots for the same node (its `/run` empty: no unit, no pod file,
   * and the overlay's earlier changes gone), and systemk starts in it. `system` is the new one.
   * Only on the host's network (a veth link goes with the old system).
   */
  reboot(): Promise<void>;
  stop(): Promise<void>;
}

/** Options of {@linkcode startNodeEnv}. */
export interface NodeEnvOptions {
  /** The node's name (default `n1`). */
  nodeName?: string;
  /** Extra systemk flags, on every start of the agent. */
  flags?: string[];
  /** Options of the control plane, e.g. `controllerManagerFlags`. */
  cluster?: TestClusterOptions;
  /** Deno flags of every agent, before the script (e.g. `--inspect=127.0.0.1:9229` to profile). */
  denoFlags?: string[];
  /**
   * Registers the node with systemk's taint (no `--disable-taint`), so only pods that tolerate
   * `virtual-kubelet.io/provider=systemk:NoSchedule` are scheduled to it. Default false.
   */
  taint?: boolean;
  /**
   * `"veth"`: the node gets an address of its own (a veth link, tests/harness/network.ts): the test systemd boots in
   * its own network namespace, the apiserver listens on the link's host end and systemk runs
   * with `--node-ip` the node end. Needed wherever Kubernetes refuses loopback addresses (a
   * Service's endpoints). Pods then reach the host end and nothing beyond it. Default: the
   * host's network, node address 127.0.0.1.
   */
  network?: "veth";
}

/** Starts cluster and systemd, then systemk. */
export async function startNodeEnv(opts: NodeEnvOptions = {}): Promise<NodeEnv> {
  const nodeName = opts.nodeName ?? "n1";
  const link = opts.network === "veth" ? await createVethLink() : undefined;
  const nodeIP = link?.nodeAddress ?? "127.0.0.1";
  const cluster = await startTestCluster({ bindAddress: link?.hostAddress, ...opts.cluster })
    .catch(async (e) => {
      await link?.remove();
      throw e;
    });
  let system: TestSystemd | undefined;
  try {
    const kubeconfig = await cluster.nodeKubeconfig(nodeName);
    system = await bootTestSystemd({ binds: [cluster.dir], network: link });
    /** Runs systemk as the transient service `unit` of the test systemd. */
    const runAgent = async (unit: string, name: string, config: string, flags: string[]) => {
      // systemk runs as a service of the test systemd, as it does on a real node; a restart
      // of the service is a restart of systemk, its pods' units are not touched.
      const out = await env.system.exec([
        "systemd-run",
        `--unit=${unit}`,
        "--setenv=NO_COLOR=1",
        `--working-directory=${REPO}`,
        "deno",
        "run",
        ...PERMISSION_FLAGS,
        ...(opts.denoFlags ?? []),
        `${REPO}/main.ts`,
        "--kubeconfig",
        config,
        "--nodename",
        name,
        ...(opts.taint ? [] : ["--disable-taint"]),
        "--node-ip",
        nodeIP,
        "--node-external-ip",
        nodeIP,
        ...flags,
      ]);
      if (out.code !== 0) throw new Error(`starting systemk: ${out.stderr}`);
    };
    const env: NodeEnv = {
      cluster,
      system,
      nodeName,
      kubeconfig,
      nodeIP,
      async kubectl(args, stdin) {
        const out = await cluster.kubectl(args, { stdin });
        if (out.code !== 0) {
          throw new Error(`kubectl ${args.join(" ")}: ${out.stderr.trim() || out.stdout.trim()}`);
        }
        return out.stdout;
      },
      async getJSON<T>(args: string[]) {
        const out = await cluster.kubectl(["get", ...args, "-o", "json"]);
        return out.code === 0 ? JSON.parse(out.stdout) as T : undefined;
      },
      async apply(...objects) {
        await env.kubectl(
          ["apply", "-f", "-"],
          JSON.stringify({ apiVersion: "v1", kind: "List", items: objects }),
        );
      },
      async startAgent(extraFlags = []) {
        await runAgent(AGENT_UNIT, nodeName, kubeconfig, [...(opts.flags ?? []), ...extraFlags]);
      },
      async startAgentAs(name, flags = []) {
        const unit = `${AGENT_UNIT}-${name}`;
        await runAgent(unit, name, await cluster.nodeKubeconfig(name), flags);
        return unit;
      },
      async stopAgent(signal = "SIGTERM") {
        const sys = env.system;
        if (signal === "SIGTERM") {
          await sys.exec(["systemctl", "stop", AGENT_UNIT]);
        } else {
          await sys.exec(["systemctl", "kill", `--signal=${signal}`, AGENT_UNIT]);
          await waitFor("systemk to die", async () => {
            const out = await sys.exec(["systemctl", "is-active", AGENT_UNIT]);
            return out.stdout.trim() !== "active" && out.stdout.trim() !== "deactivating";
          });
        }
        await sys.exec(["systemctl", "reset-failed", AGENT_UNIT]);
      },
      async agentLog() {
        const out = await env.system.exec([
          "journalctl",
          "--no-pager",
          "-o",
          "cat",
          "-u",
          AGENT_UNIT,
        ]);
        return out.stdout;
      },
      async units() {
        const out = await env.system.exec([
          "systemctl",
          "list-units",
          "--all",
          "--plain",
          "--no-legend",
          "systemk.*.service",
        ]);
        return out.stdout.split("\n").map((l) => l.trim().split(/\s+/)[0]).filter(Boolean);
      },
      async unitProperty(unit, property) {
        const out = await env.system.exec(["systemctl", "show", "--value", "-p", property, unit]);
        return out.stdout.trim();
      },
      async reboot() {
        if (link) throw new Error("reboot() needs the host's network: a veth link goes with it");
        await env.system.stop();
        env.system = system = await bootTestSystemd({ binds: [cluster.dir] });
        await env.startAgent();
      },
      async stop() {
        if (await env.system.alive()) await env.stopAgent("SIGKILL");
        // The control plane before the system: once a node's network namespace is gone, the
        // apiserver's shutdown waits its whole grace period (10 s) for connections into it.
        await cluster.stop();
        await env.system.stop();
        await link?.remove();
      },
    };
    await env.startAgent();
    return env;
  } catch (e) {
    await system?.stop();
    await cluster.stop();
    await link?.remove();
    throw e;
  }
}

/** The toleration of systemk's node taint (`virtual-kubelet.io/provider=systemk:NoSchedule`). */
export const SYSTEMK_TOLERATION = {
  key: "virtual-kubelet.io/provider",
  operator: "Equal",
  value: "systemk",
  effect: "NoSchedule",
} as const;

/**
 * Waits until pod `namespace/name` exists and satisfies `check`; on timeout the error shows the
 * pod's status, systemk's units and the end of its log.
 */
export function waitForPod(
  env: NodeEnv,
  name: string,
  what: string,
  check: (pod: V1Pod) => boolean,
  opts: { namespace?: string; timeoutMs?: number } = {},
): Promise<V1Pod> {
  const ns = ["--namespace", opts.namespace ?? "default"];
  return waitFor(
    `pod ${name} ${what}`,
    async () => {
      const pod = await env.getJSON<V1Pod>(["pod", name, ...ns]);
      return pod && check(pod) ? pod : undefined;
    },
    opts.timeoutMs ?? 60_000,
    () => describeNode(env, name, ns),
  );
}

/** What a failed wait shows: the pod's status, the units, the end of systemk's log. */
export async function describeNode(env: NodeEnv, pod?: string, ns: string[] = []) {
  const status = pod ? (await env.getJSON<V1Pod>(["pod", pod, ...ns]))?.status : undefined;
  const log = (await env.agentLog()).trimEnd().split("\n").slice(-40).join("\n");
  return [
    ...(pod ? [`--- pod ${pod} status ---`, JSON.stringify(status, null, 1)] : []),
    `--- units ---`,
    (await env.units()).join("\n"),
    `--- systemk log (end) ---`,
    log,
  ].join("\n");
}

/** The state of a pod's only (or named) container, for concise assertions. */
export function containerState(pod: V1Pod, container?: string) {
  const statuses = pod.status?.containerStatuses ?? [];
  return (container ? statuses.find((s) => s.name === container) : statuses[0])?.state;
}

/** The events about pod `pod` (default namespace), oldest first. */
export async function podEvents(env: NodeEnv, pod: string): Promise<CoreV1Event[]> {
  const list = await env.getJSON<{ items: CoreV1Event[] }>([
    "events",
    "--field-selector",
    `involvedObject.name=${pod}`,
  ]);
  const time = (e: CoreV1Event) => new Date(e.firstTimestamp ?? e.eventTime!).getTime();
  return (list?.items ?? []).sort((a, b) => time(a) - time(b));
}

/** A container of python3 holding `mib` MiB (touched), then sleeping; `extra` adds fields. */
export function holding(name: string, mib: number, extra: Record<string, unknown> = {}) {
  return {
    name,
    image: "/usr/bin/python3",
    command: [
      "/usr/bin/python3",
      "-c",
      `import time\nb = b"x" * (${mib} << 20)\nprint("holding", len(b), flush=True)\ntime.sleep(1e6)`,
    ],
    ...extra,
  };
}
