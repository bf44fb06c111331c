/**
 * The end-to-end setting: a real control plane, a real systemd booted in namespaces, and
 * systemk running inside that systemd as node `nodeName` with the node's own credentials.
 *
 * @module
 */
import { startTestCluster, type TestCluster } from "../harness/cluster.ts";
import { bootTestSystemd, type TestSystemd } from "../harness/systemd.ts";
import { PERMISSION_FLAGS } from "../../scripts/permissions.ts";

const REPO = new URL("../..", import.meta.url).pathname.replace(/\/$/, "");
const AGENT_UNIT = "systemk-agent";

/** A running node under test. */
export interface NodeEnv {
  cluster: TestCluster;
  system: TestSystemd;
  nodeName: string;
  kubeconfig: string;
  /** Runs kubectl as the cluster admin; throws on a non-zero exit. */
  kubectl(args: string[], stdin?: string): Promise<string>;
  /** Parsed `kubectl get -o json`. */
  getJSON<T = Record<string, unknown>>(args: string[]): Promise<T | undefined>;
  /** Starts systemk inside the test systemd, as the transient service `systemk-agent`. */
  startAgent(extraFlags?: string[]): Promise<void>;
  /** Kills systemk with `signal` and waits for it. */
  stopAgent(signal?: Deno.Signal): Promise<void>;
  /** What systemk logged so far (all its runs). */
  agentLog(): Promise<string>;
  /** Names of systemk's units in the test systemd. */
  units(): Promise<string[]>;
  stop(): Promise<void>;
}

/** Starts cluster and systemd, then systemk. */
export async function startNodeEnv(
  opts: { nodeName?: string; flags?: string[] } = {},
): Promise<NodeEnv> {
  const nodeName = opts.nodeName ?? "n1";
  const cluster = await startTestCluster();
  let system: TestSystemd | undefined;
  try {
    const kubeconfig = await cluster.nodeKubeconfig(nodeName);
    system = await bootTestSystemd({ binds: [cluster.dir] });
    const sys = system;
    const env: NodeEnv = {
      cluster,
      system: sys,
      nodeName,
      kubeconfig,
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
      async startAgent(extraFlags = []) {
        // systemk runs as a service of the test systemd, as it does on a real node; a restart
        // of the service is a restart of systemk, its pods' units are not touched.
        const out = await sys.exec([
          "systemd-run",
          `--unit=${AGENT_UNIT}`,
          "--setenv=NO_COLOR=1",
          `--working-directory=${REPO}`,
          "deno",
          "run",
          ...PERMISSION_FLAGS,
          `${REPO}/main.ts`,
          "--kubeconfig",
          kubeconfig,
          "--nodename",
          nodeName,
          "--disable-taint",
          "--node-ip",
          "127.0.0.1",
          "--node-external-ip",
          "127.0.0.1",
          ...(opts.flags ?? []),
          ...extraFlags,
        ]);
        if (out.code !== 0) throw new Error(`starting systemk: ${out.stderr}`);
      },
      async stopAgent(signal = "SIGTERM") {
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
        const out = await sys.exec(["journalctl", "--no-pager", "-o", "cat", "-u", AGENT_UNIT]);
        return out.stdout;
      },
      async units() {
        const out = await sys.exec([
          "systemctl",
          "list-units",
          "--all",
          "--plain",
          "--no-legend",
          "systemk.*",
        ]);
        return out.stdout.split("\n").map((l) => l.trim().split(/\s+/)[0]).filter(Boolean);
      },
      async stop() {
        await env.stopAgent("SIGKILL");
        await sys.stop();
        await cluster.stop();
      },
    };
    await env.startAgent();
    return env;
  } catch (e) {
    await system?.stop();
    await cluster.stop();
    throw e;
  }
}

/** Polls `check` until it returns a value (not undefined/false), or throws after `timeoutMs`. */
export async function waitFor<T>(
  what: string,
  check: () => Promise<T | undefined | false> | T | undefined | false,
  timeoutMs = 60_000,
  describe?: () => Promise<string> | string,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      const value = await check();
      if (value !== undefined && value !== false) return value as T;
    } catch (e) {
      last = e;
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(
    `timed out waiting for ${what}${last ? ` (last error: ${last})` : ""}${
      describe ? `\n${await describe()}` : ""
    }`,
  );
}
