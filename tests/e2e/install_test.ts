/**
 * install.sh for real, as the README's quickstart does it: k3s/join-token.sh prepares a bootstrap
 * token on the test control plane; inside a booted test systemd (overlay root, host untouched)
 * the installer in source mode installs systemk as `systemk.service`, which gets its client
 * certificate with that token, registers the node and runs a pod whose logs `kubectl logs`
 * reads; a re-run upgrades (changed flags, restarted agent) while the pod's units keep running;
 * `--uninstall` leaves /etc, /usr/local and /var/lib exactly as they were.
 *
 * @module
 */
import assert from "node:assert/strict";
import type { V1Node, V1Pod } from "@kubernetes/client-node";
import { freePorts, startTestCluster, type TestCluster } from "../harness/cluster.ts";
import { bootTestSystemd, type TestSystemd } from "../harness/systemd.ts";
import { waitFor } from "./_node_env.ts";
import { approveServingCertificate, kubeletAPIFlags } from "./_kubelet_api.ts";

const REPO = new URL("../..", import.meta.url).pathname.replace(/\/$/, "");
const INSTALL = `${REPO}/install.sh`;
const JOIN_TOKEN = `${REPO}/k3s/join-token.sh`;
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

/** Asserts the file list is back to `before`, but for `.wants` directories systemctl pruned. */
function assertSameFiles(before: string[], after: string[], prunable: string[]): void {
  const added = after.filter((line) => !before.includes(line));
  const removed = before.filter((line) => !after.includes(line) && !prunable.includes(line));
  assert.deepEqual({ added, removed }, { added: [], removed: [] });
}

/**
 * Runs install.sh inside the test system (with `env` added to its environment); throws with
 * its output when it fails, else returns it (stdout, then stderr: warnings).
 */
async function install(
  system: TestSystemd,
  args: string[],
  env?: Record<string, string>,
): Promise<string> {
  const started = performance.now();
  const out = await system.exec(["sh", INSTALL, ...args], { env });
  console.log(`  install.sh ${args.join(" ")}: ${(performance.now() - started).toFixed(0)} ms`);
  if (out.code !== 0) {
    throw new Error(`install.sh ${args.join(" ")} exited ${out.code}:\n${out.stdout}${out.stderr}`);
  }
  return out.stdout + out.stderr;
}

async function systemctl(system: TestSystemd, ...args: string[]): Promise<string> {
  return (await system.exec(["systemctl", ...args])).stdout.trim();
}

async function kubectlJSON<T>(cluster: TestCluster, args: string[]): Promise<T | undefined> {
  const out = await cluster.kubectl(["get", ...args, "-o", "json"]);
  return out.code === 0 ? JSON.parse(out.stdout) as T : undefined;
}

Deno.test(
  "install.sh: joins with a bootstrap token as systemk.service, re-run upgrades, uninstall is exact",
  opts,
  async (t) => {
    const cluster = await startTestCluster();
    const tmp = await Deno.makeTempDir({ prefix: "systemk-install-" });
    const kubeletAPI = kubeletAPIFlags(freePorts("127.0.0.1", 1)[0]).join(" ");
    let system: TestSystemd | undefined;
    try {
      system = await bootTestSystemd({ binds: [cluster.dir, tmp] });
      const sys = system;
      const serviceLog = async () =>
        `--- journalctl -u systemk ---\n${
          (await sys.exec(["journalctl", "--no-pager", "-o", "cat", "-u", "systemk"])).stdout
        }`;
      const before = await fileList(sys);
      const prunable = await emptyWantsDirs(sys);

      await t.step("install with a bootstrap token: systemk.service joins as node n1", async () => {
        const joined = await new Deno.Command("sh", {
          args: [JOIN_TOKEN, "--kubeconfig", cluster.adminKubeconfig, "--ca-out", `${tmp}/ca.crt`],
          env: { KUBECTL: cluster.kubectlPath },
          stdout: "piped",
          stderr: "piped",
        }).output();
        const printed = new TextDecoder().decode(joined.stdout);
        assert.ok(joined.success, new TextDecoder().decode(joined.stderr));
        // The token is in a file only its owner reads, and in none of the printed lines.
        const tokenFile = `${tmp}/bootstrap-token`;
        assert.equal((await Deno.stat(tokenFile)).mode! & 0o777, 0o600);
        const token = (await Deno.readTextFile(tokenFile)).trim();
        assert.match(token, /^[a-z0-9]{6}\.[a-z0-9]{16}$/);
        assert.ok(!printed.includes(token.split(".")[1]), printed);
        // The line join-token.sh prints is what the installer is given (plus test settings).
        const line = printed.match(
          /--server (\S+) --ca-file cluster-ca\.crt --token-file bootstrap-token/,
        );
        assert.ok(line, printed);
        const out = await install(sys, [
          ...["--from-source", REPO],
          ...["--server", line[1], "--ca-file", `${tmp}/ca.crt`, "--token-file", tokenFile],
          ...["--node-name", "n1", "--node-ip", "127.0.0.1", "--node-external-ip", "127.0.0.1"],
          "--disable-taint",
          ...["--extra-flags", kubeletAPI],
        ]);
        assert.match(out, /kubectl get nodes/);
        assert.equal(await systemctl(sys, "is-enabled", "systemk"), "enabled");
        assert.equal(await systemctl(sys, "is-active", "systemk"), "active");
        const launcher = (await sys.exec(["cat", "/usr/local/bin/systemk"])).stdout;
        const flags = await new Deno.Command(Deno.execPath(), {
          args: ["run", `${REPO}/scripts/permissions.ts`],
          stdout: "piped",
        }).output();
        assert.ok(
          launcher.includes(`${new TextDecoder().decode(flags.stdout).trim()} '${REPO}/main.ts'`),
          launcher,
        );
        const node = await waitFor(
          "node n1 Ready and schedulable",
          async () => {
            const n = await kubectlJSON<V1Node>(cluster, ["node", "n1"]);
            const ready = n?.status?.conditions?.find((c) => c.type === "Ready");
            // The node lifecycle controller lifts the not-ready taint once it has seen Ready.
            const notReadyTaint = n?.spec?.taints?.some((t) => t.key.startsWith("node.kubernetes"));
            return ready?.status === "True" && !notReadyTaint ? n : undefined;
          },
          60_000,
          serviceLog,
        );
        assert.equal(node.spec?.taints, undefined);
        assert.equal(node.status?.capacity?.pods, "110");
        // The client certificate came from the token's CSR; the files holding secrets are 0600.
        const modes = await sys.exec([
          ...["stat", "-c", "%a %n", "/etc/systemk/systemk.env"],
          ...["/etc/systemk/bootstrap-kubeconfig", "/var/lib/systemk/kubeconfig"],
        ]);
        assert.deepEqual(modes.stdout.trim().split("\n"), [
          "600 /etc/systemk/systemk.env",
          "600 /etc/systemk/bootstrap-kubeconfig",
          "600 /var/lib/systemk/kubeconfig",
        ]);
        // The kubelet API's serving certificate: requested by the node, approved by an admin.
        await approveServingCertificate(cluster, "n1", serviceLog);
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
        // kubectl logs: apiserver → the node's kubelet API (CSR-signed certificate) → journald.
        await waitFor(
          "tick in kubectl logs loop",
          async () => {
            const logs = await cluster.kubectl(["logs", "loop", "--tail=2"]);
            return logs.code === 0 && logs.stdout.startsWith("tick\n");
          },
          60_000,
          serviceLog,
        );
      });

      await t.step("re-run upgrades: new flags, restarted agent, the pod untouched", async () => {
        const agentPid = await systemctl(sys, "show", "-p", "MainPID", "--value", "systemk");
        // A node kubeconfig given directly replaces the bootstrap token; the source is kept.
        const kubeconfig = await cluster.nodeKubeconfig("n1");
        await install(sys, [
          ...["--kubeconfig", kubeconfig],
          ...["--extra-flags", `${kubeletAPI} --max-pods 50`],
          ...["--node-labels", "tier=edge,node.kubernetes.io/pool=a"],
        ]);
        assert.notEqual(
          await systemctl(sys, "show", "-p", "MainPID", "--value", "systemk"),
          agentPid,
        );
        const env = (await sys.exec(["cat", "/etc/systemk/systemk.env"])).stdout;
        assert.match(env, /^FLAG_NODE_IP=--node-ip=127\.0\.0\.1$/m);
        assert.match(env, /^FLAG_DISABLE_TAINT=--disable-taint$/m);
        assert.match(env, /^EXTRA_FLAGS=".* --max-pods 50"$/m);
        assert.match(
          env,
          /^FLAG_NODE_LABELS=--node-labels=tier=edge,node\.kubernetes\.io\/pool=a$/m,
        );
        assert.match(env, /^FLAG_REGISTER_WITH_TAINTS=$/m);
        assert.match(env, /^FLAG_KUBECONFIG=--kubeconfig=\/etc\/systemk\/kubeconfig$/m);
        assert.match(env, /^FLAG_BOOTSTRAP_KUBECONFIG=$/m);
        assert.match(env, /^SOURCE=source:/m);
        const gone = await sys.exec(["test", "-e", "/etc/systemk/bootstrap-kubeconfig"]);
        assert.notEqual(gone.code, 0, "the bootstrap kubeconfig is removed");
        await waitFor(
          "node n1 capacity 50 pods and the labels of --node-labels",
          async () => {
            const n = await kubectlJSON<V1Node>(cluster, ["node", "n1"]);
            const labels = n?.metadata?.labels ?? {};
            return n?.status?.capacity?.pods === "50" && labels.tier === "edge" &&
              labels["node.kubernetes.io/pool"] === "a";
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
        // The restarted agent's kubelet API comes up a moment after its node status.
        const logs = await waitFor(
          "kubectl logs through the restarted agent",
          async () => {
            const out = await cluster.kubectl(["logs", "loop", "--tail=1"]);
            return out.code === 0 ? out : undefined;
          },
          30_000,
          serviceLog,
        );
        assert.equal(logs.stdout, "tick\n", logs.stderr);
      });

      await t.step("uninstall removes exactly what install.sh created, not the pods", async () => {
        const out = await install(sys, ["--uninstall"]);
        const load = await systemctl(sys, "show", "-p", "LoadState", "--value", "systemk");
        assert.equal(load, "not-found");
        assertSameFiles(before, await fileList(sys), prunable);
        // The pod's units are not install.sh's: they keep running, and it says how to stop them.
        assert.match(out, /pod units still here/);
        assert.equal(await systemctl(sys, "is-active", podUnit), "active");
        assert.equal(
          await systemctl(sys, "show", "-p", "InvocationID", "--value", podUnit),
          invocation,
        );
      });
    } finally {
      await system?.stop();
      await cluster.stop();
      await Deno.remove(tmp, { recursive: true });
    }
  },
);

Deno.test(
  "install.sh --url: downloads {arch}, verifies URL.sha256, refuses a mismatch; --no-start",
  opts,
  async () => {
    // A release binary stands in as what it is to install.sh: an executable answering
    // `systemk version`; here a launcher of this checkout (a compiled one cannot be built here).
    const flags = await new Deno.Command(Deno.execPath(), {
      args: ["run", `${REPO}/scripts/permissions.ts`],
      stdout: "piped",
    }).output();
    const release = new TextEncoder().encode(
      `#!/bin/sh\nexec deno run --quiet ${
        new TextDecoder().decode(flags.stdout).trim()
      } ${REPO}/main.ts "$@"\n`,
    );
    const digest = Array.from(
      new Uint8Array(await crypto.subtle.digest("SHA-256", release)),
      (b) => b.toString(16).padStart(2, "0"),
    ).join("");
    const arch = Deno.build.arch === "aarch64" ? "arm64" : "amd64";
    const requests: string[] = [];
    const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, (req) => {
      const path = new URL(req.url).pathname;
      requests.push(path);
      if (path === `/v1/systemk-linux-${arch}`) return new Response(release);
      if (path === `/v1/systemk-linux-${arch}.sha256`) {
        return new Response(`${digest}  systemk-linux-${arch}\n`);
      }
      return new Response("not found", { status: 404 });
    });
    const base = `http://127.0.0.1:${server.addr.port}/v1`;
    const tmp = await Deno.makeTempDir({ prefix: "systemk-install-url-" });
    await Deno.writeTextFile(`${tmp}/kubeconfig`, "{}\n");
    const system = await bootTestSystemd({ binds: [tmp] });
    try {
      const before = await fileList(system);
      const prunable = await emptyWantsDirs(system);
      const url = `${base}/systemk-linux-{arch}`;
      const common = ["--url", url, "--kubeconfig", `${tmp}/kubeconfig`, "--no-start"];
      const registration = [
        ...["--node-labels", "tier=edge"],
        ...["--register-with-taints", "dedicated=edge:NoSchedule,gpu:NoExecute"],
      ];

      const refused = await system.exec(["sh", INSTALL, ...common, "--sha256", "0".repeat(64)]);
      assert.notEqual(refused.code, 0);
      assert.match(refused.stderr, /checksum mismatch/);
      assert.deepEqual(await fileList(system), before, "a refused download installs nothing");
      // Settings are all checked before anything is written.
      const refusals: [string[], RegExp][] = [
        [["--binary", "/bin/true"], /give one of --url, --binary and --from-source/],
        [["--token", "not-a-token", "--server", "https://127.0.0.1:6443"], /needs --ca-file/],
        [[
          ...["--token", "not-a-token", "--server", "https://127.0.0.1:6443"],
          ...["--ca-file", `${tmp}/kubeconfig`],
        ], /--token must look like abcdef\.0123456789abcdef/],
        [["--node-ip", "10.0.0.1 10.0.0.2"], /must not contain spaces/],
        [["--node-labels", "tier=edge, zone=a"], /--node-labels must not contain spaces/],
        [["--no-such-option"], /unknown option "--no-such-option"/],
      ];
      for (const [args, message] of refusals) {
        const out = await system.exec(["sh", INSTALL, ...common, ...args]);
        assert.notEqual(out.code, 0, args.join(" "));
        assert.match(out.stderr, message, args.join(" "));
      }
      assert.deepEqual(await fileList(system), before, "refused settings install nothing");

      // Without --sha256 it says where the checksum came from, and what that is worth.
      const unpinned = await install(system, [...common, ...registration]);
      assert.match(
        unpinned,
        new RegExp(
          `warning: no --sha256: checked against ${base}/systemk-linux-${arch}\\.sha256, ` +
            "from the same server as the binary",
        ),
      );
      assert.deepEqual(requests.slice(-2), [
        `/v1/systemk-linux-${arch}`,
        `/v1/systemk-linux-${arch}.sha256`,
      ]);
      // With it (the documented way), the server's .sha256 is not even asked for.
      const fetched = requests.length;
      const pinned = await install(system, [...common, "--sha256", digest]);
      assert.doesNotMatch(pinned, /warning/);
      assert.deepEqual(requests.slice(fetched), [`/v1/systemk-linux-${arch}`]);
      const installed = await system.exec(["cat", "/usr/local/bin/systemk"]);
      assert.equal(installed.stdout, new TextDecoder().decode(release));
      assert.equal(await systemctl(system, "is-enabled", "systemk"), "enabled");
      assert.equal(await systemctl(system, "is-active", "systemk"), "inactive");
      const env = (await system.exec(["cat", "/etc/systemk/systemk.env"])).stdout;
      assert.match(env, new RegExp(`^SOURCE=url:${base}/systemk-linux-${arch}$`, "m"));
      assert.match(env, /^FLAG_NODE_LABELS=--node-labels=tier=edge$/m);
      assert.match(
        env,
        /^FLAG_REGISTER_WITH_TAINTS=--register-with-taints=dedicated=edge:NoSchedule,gpu:NoExecute$/m,
      );
      const unit = (await system.exec(["cat", "/etc/systemd/system/systemk.service"])).stdout;
      assert.match(unit, /^ExecStart=.* \$FLAG_NODE_LABELS \$FLAG_REGISTER_WITH_TAINTS /m);
      // A re-run keeps them; an empty value removes one.
      await install(system, [...common, "--register-with-taints", ""]);
      const rerun = (await system.exec(["cat", "/etc/systemk/systemk.env"])).stdout;
      assert.match(rerun, /^FLAG_NODE_LABELS=--node-labels=tier=edge$/m);
      assert.match(rerun, /^FLAG_REGISTER_WITH_TAINTS=$/m);

      await install(system, ["--uninstall"]);
      assertSameFiles(before, await fileList(system), prunable);
    } finally {
      await system.stop();
      await server.shutdown();
      await Deno.remove(tmp, { recursive: true });
    }
  },
);

Deno.test(
  "install.sh: the token from a file or the environment, not argv; a hostile checkout path",
  opts,
  async (t) => {
    const tmp = await Deno.makeTempDir({ prefix: "systemk-install-secrets-" });
    const token = "abcdef.0123456789abcdef";
    await Deno.writeTextFile(`${tmp}/token`, `${token}\n`, { mode: 0o600 });
    await Deno.writeTextFile(`${tmp}/ca.crt`, "not checked before systemk starts\n");
    // A checkout whose directory name is shell code: unquoted in the launcher, `$(id>&2)` runs
    // as root whenever systemk starts (here first at install.sh's `systemk version`).
    const hostile = `${tmp}/systemk$(id>&2)`;
    await Deno.symlink(REPO, hostile);
    const join = [
      ...["--from-source", hostile, "--server", "https://127.0.0.1:6443"],
      ...["--ca-file", `${tmp}/ca.crt`, "--no-start"],
    ];
    const system = await bootTestSystemd({ binds: [tmp] });
    try {
      const before = await fileList(system);
      const prunable = await emptyWantsDirs(system);
      const bootstrapKubeconfig = async () =>
        (await system.exec(["cat", "/etc/systemk/bootstrap-kubeconfig"])).stdout;

      const other = "ghijkl.0123456789ghijkl";
      await t.step("the checkout's path is one quoted word of the launcher", async () => {
        const out = await install(system, join, { SYSTEMK_TOKEN: other });
        assert.doesNotMatch(out, /uid=0/, "the directory name ran as a command");
        // From the environment the token needs no flag, and draws no warning.
        assert.doesNotMatch(out, /warning/);
        assert.match(await bootstrapKubeconfig(), new RegExp(`^ +token: ${other}$`, "m"));
        const launcher = (await system.exec(["cat", "/usr/local/bin/systemk"])).stdout;
        assert.match(
          launcher,
          /^exec '\/\S+\/deno' run --quiet .* '\S+\/systemk\$\(id>&2\)\/main\.ts' "\$@"$/m,
        );
        const version = await system.exec(["/usr/local/bin/systemk", "version"]);
        assert.match(version.stdout, /^systemk /, version.stdout + version.stderr);
        assert.doesNotMatch(version.stderr, /uid=0/);
      });

      await t.step(
        "--token-file: the token reaches only its 0600 file",
        async () => {
          const out = await install(system, [...join, "--token-file", `${tmp}/token`]);
          assert.doesNotMatch(out, /warning/);
          assert.match(await bootstrapKubeconfig(), new RegExp(`^ +token: ${token}$`, "m"));
          const modes = await system.exec([
            "stat",
            "-c",
            "%a",
            "/etc/systemk/bootstrap-kubeconfig",
          ]);
          assert.equal(modes.stdout.trim(), "600");
          const env = (await system.exec(["cat", "/etc/systemk/systemk.env"])).stdout;
          const unit = (await system.exec(["cat", "/etc/systemd/system/systemk.service"])).stdout;
          assert.ok(!(env + unit).includes(token), env + unit);
        },
      );

      await t.step(
        "--token on the command line works, with a warning; both at once refused",
        async () => {
          const out = await install(system, [...join, "--token", token]);
          assert.match(
            out,
            /warning: --token on the command line: every user of this machine can read it \(ps\)/,
          );
          const both = await system.exec([
            ...["sh", INSTALL, ...join, "--token", token, "--token-file", `${tmp}/token`],
          ]);
          assert.notEqual(both.code, 0);
          assert.match(both.stderr, /give one of --token and --token-file/);
          await Deno.writeTextFile(`${tmp}/empty`, "\n");
          const empty = await system.exec(["sh", INSTALL, ...join, "--token-file", `${tmp}/empty`]);
          assert.match(empty.stderr, /empty holds no token/);
        },
      );

      await install(system, ["--uninstall"]);
      assertSameFiles(before, await fileList(system), prunable);
    } finally {
      await system.stop();
      await Deno.remove(tmp, { recursive: true });
    }
  },
);
