/**
 * Static pods in node mode, end to end: systemk with `--kubeconfig` and `--pod-manifest-path`
 * runs the directory's pods and shows each in the API as a mirror pod, as the kubelet does
 * (the real apiserver's NodeRestriction admits it): status follows the static pod, a mirror
 * deleted through kubectl comes back without the pod restarting, an edited manifest replaces
 * both, a removed one takes both away (also while systemk is down); `kubectl logs` of the
 * mirror reads the static pod's.
 */
import assert from "node:assert/strict";
import type { V1Node, V1Pod } from "@kubernetes/client-node";
import { freePorts } from "../harness/cluster.ts";
import { describeNode, startNodeEnv, waitFor, waitForPod } from "./_node_env.ts";
import { approveServingCertificate, kubeletAPIFlags } from "./_kubelet_api.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };
const MIRROR = "web-n1";
const UNIT = "systemk.default.web-n1.main.service";

/** A static pod manifest `web` whose container says hello, then sleeps `seconds`. */
function webYAML(seconds: string): string {
  return `apiVersion: v1
kind: Pod
metadata: {name: web, labels: {app: web}}
spec:
  containers:
    - name: main
      image: /bin/sh
      command: [/bin/sh, -c, "echo static hello; exec sleep ${seconds}"]
`;
}

const ready = (pod: V1Pod) =>
  pod.status?.phase === "Running" && pod.status.containerStatuses?.[0]?.ready === true;

Deno.test(
  "node mode with --pod-manifest-path: static pods and their mirror pods",
  opts,
  async (t) => {
    const env = await startNodeEnv({
      nodeName: "n1",
      flags: kubeletAPIFlags(freePorts("127.0.0.1", 1)[0]),
    });
    // The cluster's directory is bound into the test systemd: systemk reads the host's writes.
    const dir = `${env.cluster.dir}/manifests`;
    await Deno.mkdir(dir);
    const describe = () => describeNode(env, MIRROR);
    const invocation = () => env.unitProperty(UNIT, "InvocationID");
    try {
      // The serving certificate first (for `kubectl logs`): kept in --cert-dir over the restart.
      await approveServingCertificate(env.cluster, "n1", env.agentLog);
      await waitFor(
        "the serving certificate issued",
        () =>
          Deno.stat(`${env.system.root}/var/lib/systemk/pki/kubelet-server-current.pem`)
            .then(() => true, () => false),
        60_000,
        env.agentLog,
      );
      await Deno.writeTextFile(`${dir}/web.yaml`, webYAML("infinity"));
      await env.stopAgent();
      await env.startAgent(["--pod-manifest-path", dir]);

      let mirror: V1Pod;
      await t.step("the static pod runs and its mirror shows it, owned by the Node", async () => {
        const started = performance.now();
        mirror = await waitForPod(env, MIRROR, "mirrored and ready", ready);
        console.log(
          `  mirror Running and ready ${(performance.now() - started) | 0} ms after start`,
        );
        const node = await env.getJSON<V1Node>(["node", "n1"]);
        assert.ok(mirror.metadata?.annotations?.["kubernetes.io/config.mirror"]);
        assert.deepEqual(
          mirror.metadata?.ownerReferences?.map((o) => [o.kind, o.name, o.uid, o.controller]),
          [["Node", "n1", node?.metadata?.uid, true]],
        );
        assert.equal(mirror.spec?.nodeName, "n1");
        assert.deepEqual(mirror.metadata?.labels, { app: "web" });
        // The pod shows Running once its process runs; systemd may finish the start job
        // (activating → active) a moment later.
        await waitFor(
          `${UNIT} active`,
          async () => await env.unitProperty(UNIT, "ActiveState") === "active",
          30_000,
          describe,
        );
        // The pod runs once: the mirror is not run as a second pod.
        assert.deepEqual(await env.units(), [UNIT]);
      });

      await t.step("kubectl logs of the mirror pod reads the static pod's log", async () => {
        const out = await waitFor(
          "the log",
          async () => {
            const r = await env.cluster.kubectl(["logs", MIRROR]);
            return r.code === 0 && r.stdout.includes("static hello") ? r.stdout : undefined;
          },
          60_000,
          describe,
        );
        assert.equal(out, "static hello\n");
      });

      await t.step("a mirror deleted with kubectl comes back; the pod keeps running", async () => {
        const before = await invocation();
        await env.kubectl(["delete", "pod", MIRROR, "--wait=false"]);
        const deleted = performance.now();
        const again = await waitForPod(
          env,
          MIRROR,
          "mirrored again",
          (p) =>
            p.metadata?.uid !== mirror.metadata?.uid && !p.metadata?.deletionTimestamp && ready(p),
        );
        console.log(`  mirror back and ready ${(performance.now() - deleted) | 0} ms after delete`);
        assert.equal(await invocation(), before, "the static pod's unit was not restarted");
        mirror = again;
      });

      await t.step("an edited manifest replaces the pod and its mirror", async () => {
        const before = await invocation();
        await Deno.writeTextFile(`${dir}/web.yaml`, webYAML("86400"));
        const edited = await waitForPod(
          env,
          MIRROR,
          "replaced",
          (p) =>
            p.metadata?.uid !== mirror.metadata?.uid && ready(p) &&
            /86400/.test(p.spec?.containers[0].command?.[2] ?? ""),
          { timeoutMs: 90_000 },
        );
        assert.notEqual(
          edited.metadata?.annotations?.["kubernetes.io/config.mirror"],
          mirror.metadata?.annotations?.["kubernetes.io/config.mirror"],
        );
        await waitFor(
          "the unit running the new command",
          async () =>
            await invocation() !== before &&
            (await env.unitProperty(UNIT, "ExecStart")).includes("86400"),
          60_000,
          describe,
        );
      });

      /** Waits until neither the mirror nor the static pod's unit is left. */
      const bothGone = async () => {
        await waitFor(
          "the mirror deleted",
          async () => (await env.getJSON<V1Pod>(["pod", MIRROR])) === undefined,
          60_000,
          describe,
        );
        await waitFor(
          "the unit gone",
          async () => !(await env.units()).includes(UNIT),
          60_000,
          describe,
        );
      };

      await t.step("a removed manifest takes the pod and its mirror away", async () => {
        await Deno.remove(`${dir}/web.yaml`);
        await bothGone();
      });

      await t.step("a manifest removed while systemk was down: both go at its start", async () => {
        await Deno.writeTextFile(`${dir}/web.yaml`, webYAML("infinity"));
        await waitForPod(env, MIRROR, "mirrored again", ready);
        await env.stopAgent();
        await Deno.remove(`${dir}/web.yaml`);
        await env.startAgent(["--pod-manifest-path", dir]);
        await bothGone();
        const log = await env.agentLog();
        console.log(
          log.split("\n").filter((l) => /mirror pod/.test(l)).map((l) => `  ${l}`).join("\n"),
        );
        assert.doesNotMatch(log, /mirror pods: .*retrying/);
      });
    } finally {
      await env.stop();
    }
  },
);
