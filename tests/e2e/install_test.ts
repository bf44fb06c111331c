/**
 * install.sh for real: inside a booted test systemd (overlay root, host untouched) the installer
 * in source mode installs systemk as `systemk.service`, which joins the test control plane and
 * runs a pod; a re-run upgrades (changed flags, restarted agent) while the pod's units keep
 * running; `--uninstall` leaves /etc, /usr/local and /var/lib exactly as they were.
 *
 * @module
 */
import assert from "node:assert/strict";
import type { V1Node, V1Pod } from "@kubernetes/client-node";
import { startTestCluster, type TestCluster } from "../harness/cluster.ts";
import { bootTestSystemd, type TestSystemd } from "../harness/systemd.ts";
import { waitFor } from "./_node_env.ts";

const REPO = new URL("../..", import.meta.url).pathname.replace(/\/$/, "");
const INSTALL = `${REPO}/install.sh`;
const opts = { sanitizeOps: false, sanitizeResources: false };

/**
 * Every path under the directories install.sh may touch, with type, mode and (for files) size.
 * A directory's size is left out: the overlay's copy-up alone changes it.
 */
async function fileList(system: TestSystemd): Promise<string[]> {
  const out = await system.exec([
    "find",
    ...["/etc", "/usr/local", "/var/lib", "-xdev"],
    ...["(", "-type", "d", "-printf", "%y %m %p\\n", ")"],
    ...["-o", "-printf", "%y %m %s %p\\n"],
  ]);
  assert.equal(out.code, 0, out.stderr);
  return out.stdout.trim().split("\n").sort();
}

/**
 * Empty `.wants` directories: `systemctl disable` prunes one it leaves empty (systemd's own
 * behaviour, not the installer's). Only the test system has empty ones: its boot emptied them.
 */
async function emptyWantsDirs(system: TestSystemd): Promise<string[]> {
  const out = await system.exec([
    "find",
    ...["/etc/systemd/system", "-name", "*.wants", "-type", "d", "-empty"],
    ...["-printf", "%y %m %p\\n"],
  ]);
  return out.stdout.trim().split("\n").filter(Boolean);
}

/** Runs install.sh inside the test system; throws with its output when it fails. */
async function install(system: TestSystemd, args: string[]): Promise<string> {
  const started = performance.now();
  const out = await system.exec(["sh", INSTALL, ...args]);
  console.log(`  install.sh ${args.join(" ")}: ${(performance.now() - started).toFixed(0)} ms`);
  if (out.code !== 0) {
    throw new Error(`install.sh ${args.join(" ")} exited ${out.code}:\n${out.stdout}${out.stderr}`);
  }
  return out.stdout;
}

async function systemctl(system: TestSystemd, ...args: string[]): Promise<string> {
  return (await system.exec(["systemctl", ...args])).stdout.trim();
}

async function kubectlJSON<T>(cluster: TestCluster, args: string[]): Promise<T | undefined> {
  const out = await cluster.kubectl(["get", ...args, "-o", "json"]);
  return out.code === 0 ? JSON.parse(out.stdout) as T : undefined;
}

Deno.test(
  "install.sh: source mode joins a node as systemk.service, re-run upgrades, uninstall is exact",
  opts,
  async (t) => {
    const cluster = await startTestCluster();
    let system: TestSystemd | undefined;
    try {
      system = await bootTestSystemd({ binds: [cluster.dir] });
      const sys = system;
      const serviceLog = async () =>
        `--- journalctl -u systemk ---\n${
          (await sys.exec(["journalctl", "--no-pager", "-o", "cat", "-u", "systemk"])).stdout
        }`;
      const before = await fileList(sys);
      const prunable = await emptyWantsDirs(sys);

      await t.step("install: systemk.service runs and node n1 registers Ready", async () => {
        const kubeconfig = await cluster.nodeKubeconfig("n1");
        const out = await install(sys, [
          "--from-source",
          REPO,
          "--kubeconfig",
          kubeconfig,
          "--node-name",
          "n1",
          "--node-ip",
          "127.0.0.1",
          "--node-external-ip",
          "127.0.0.1",
          "--disable-taint",
        ]);
        assert.match(out, /kubectl get nodes/);
        assert.equal(await systemctl(sys, "is-enabled", "systemk"), "enabled");
        assert.equal(await systemctl(sys, "is-active", "systemk"), "active");
        const modes = await sys.exec([
          "stat",
          "-c",
          "%a %n",
          "/etc/systemk/systemk.env",
          "/etc/systemk/kubeconfig",
        ]);
        assert.deepEqual(modes.stdout.trim().split("\n"), [
          "600 /etc/systemk/systemk.env",
          "600 /etc/systemk/kubeconfig",
        ]);
        const launcher = (await sys.exec(["cat", "/usr/local/bin/systemk"])).stdout;
        const flags = await new Deno.Command(Deno.execPath(), {
          args: ["run", `${REPO}/scripts/permissions.ts`],
          stdout: "piped",
        }).output();
        assert.ok(
          launcher.includes(`${new TextDecoder().decode(flags.stdout).trim()} ${REPO}/main.ts`),
          launcher,
        );
        const node = await waitFor(
          "node n1 Ready",
          async () => {
            const n = await kubectlJSON<V1Node>(cluster, ["node", "n1"]);
            const ready = n?.status?.conditions?.find((c) => c.type === "Ready");
            return ready?.status === "True" ? n : undefined;
          },
          60_000,
          serviceLog,
        );
        assert.equal(node.spec?.taints, undefined);
        assert.equal(node.status?.capacity?.pods, "110");
      });

      const podUnit = "systemk.default.loop.loop.service";
      let invocation = "";
      await t.step("a pod runs on the installed node", async () => {
        const pod = {
          apiVersion: "v1",
          kind: "Pod",
          metadata: { name: "loop", namespace: "default" },
          spec: {
            nodeName: "n1",
            containers: [{
              name: "loop",
              image: "/bin/bash",
              command: ["/bin/bash", "-c", "while true; do echo tick; sleep 1; done"],
            }],
          },
        };
        const r = await cluster.kubectl(["apply", "-f", "-"], { stdin: JSON.stringify(pod) });
        assert.equal(r.code, 0, r.stderr);
        await waitFor(
          "pod loop Running",
          async () => {
            const p = await kubectlJSON<V1Pod>(cluster, ["pod", "loop"]);
            return p?.status?.phase === "Running";
          },
          60_000,
          serviceLog,
        );
        invocation = await systemctl(sys, "show", "-p", "InvocationID", "--value", podUnit);
        assert.match(invocation, /^[0-9a-f]{32}$/);
      });

      await t.step("re-run upgrades: new flags, restarted agent, the pod untouched", async () => {
        const agentPid = await systemctl(sys, "show", "-p", "MainPID", "--value", "systemk");
        // No source and no kubeconfig given: both are kept from the first run.
        await install(sys, ["--extra-flags", "--max-pods 50"]);
        assert.notEqual(
          await systemctl(sys, "show", "-p", "MainPID", "--value", "systemk"),
          agentPid,
        );
        const env = (await sys.exec(["cat", "/etc/systemk/systemk.env"])).stdout;
        assert.match(env, /^FLAG_NODE_IP=--node-ip=127\.0\.0\.1$/m);
        assert.match(env, /^FLAG_DISABLE_TAINT=--disable-taint$/m);
        assert.match(env, /^EXTRA_FLAGS="--max-pods 50"$/m);
        await waitFor(
          "node n1 capacity 50 pods",
          async () => {
            const n = await kubectlJSON<V1Node>(cluster, ["node", "n1"]);
            return n?.status?.capacity?.pods === "50";
          },
          60_000,
          serviceLog,
        );
        assert.equal(
          await systemctl(sys, "show", "-p", "InvocationID", "--value", podUnit),
          invocation,
        );
        const pod = await kubectlJSON<V1Pod>(cluster, ["pod", "loop"]);
        assert.equal(pod?.status?.phase, "Running");
        assert.equal(pod?.status?.containerStatuses?.[0]?.restartCount, 0);
      });

      await t.step("uninstall removes exactly what install.sh created", async () => {
        await cluster.kubectl(["delete", "pod", "loop", "--wait=false"]);
        await waitFor(
          "pod loop gone",
          async () => {
            return (await kubectlJSON(cluster, ["pod", "loop"])) === undefined;
          },
          60_000,
          serviceLog,
        );
        await install(sys, ["--uninstall"]);
        const load = await systemctl(sys, "show", "-p", "LoadState", "--value", "systemk");
        assert.equal(load, "not-found");
        const after = await fileList(sys);
        const added = after.filter((line) => !before.includes(line));
        const removed = before.filter((line) => !after.includes(line) && !prunable.includes(line));
        assert.deepEqual({ added, removed }, { added: [], removed: [] });
      });
    } finally {
      await system?.stop();
      await cluster.stop();
    }
  },
);
