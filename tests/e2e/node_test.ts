/**
 * End to end, one node: registration (with systemk's taint), Lease, a pod through the scheduler,
 * status ownership, unit naming (dots, shared prefixes) and deletion (graceful, past the grace
 * period, forced). One control plane, one booted systemd, systemk as its service, kubectl.
 */
import assert from "node:assert/strict";
import type { V1Lease, V1Node, V1Pod } from "@kubernetes/client-node";
import {
  describeNode,
  type NodeEnv,
  startNodeEnv,
  SYSTEMK_TOLERATION,
  waitFor,
  waitForPod,
} from "./_node_env.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };
const MAX_PODS = 57;
const EXTERNAL_IP = "127.0.0.2";

/** A pod running `script` in bash, bound to node n1 unless `scheduled`. */
function bashPod(
  name: string,
  script: string,
  extra: { scheduled?: boolean; grace?: number; container?: string } = {},
) {
  return {
    apiVersion: "v1",
    kind: "Pod",
    metadata: { name, namespace: "default" },
    spec: {
      ...(extra.scheduled ? {} : { nodeName: "n1" }),
      tolerations: [SYSTEMK_TOLERATION],
      terminationGracePeriodSeconds: extra.grace ?? 30,
      containers: [{
        name: extra.container ?? "c",
        image: "/bin/bash",
        command: ["/bin/bash", "-c", script],
      }],
    },
  };
}

const running = (pod: V1Pod) =>
  pod.status?.phase === "Running" && pod.status.containerStatuses?.[0]?.ready === true;

/** Whether a path exists inside the test systemd. */
async function existsInside(env: NodeEnv, path: string): Promise<boolean> {
  return (await env.system.exec(["test", "-e", path])).code === 0;
}

/** The unit of container `c` of pod `name` (namespace default). */
const unitOf = (name: string, container = "c") => `systemk.default.${name}.${container}.service`;

Deno.test("node mode end to end: node, pods, status, names, deletion", opts, async (t) => {
  const started = performance.now();
  const env = await startNodeEnv({
    taint: true,
    flags: ["--max-pods", String(MAX_PODS), "--node-external-ip", EXTERNAL_IP],
  });
  console.log(`  environment up in ${(performance.now() - started) | 0} ms`);
  const describe = () => describeNode(env);
  let firstLease: V1Lease | undefined;
  try {
    await t.step(
      "the node registers Ready: labels, taint, addresses, capacity, nodeInfo",
      async () => {
        const node = await waitFor(
          "node n1 Ready and schedulable",
          async () => {
            const n = await env.getJSON<V1Node>(["node", "n1"]);
            const ready = n?.status?.conditions?.find((c) => c.type === "Ready")?.status === "True";
            // The node lifecycle controller lifts the not-ready taint once it has seen Ready.
            const notReadyTaint = n?.spec?.taints?.some((t) => t.key.startsWith("node.kubernetes"));
            return ready && !notReadyTaint ? n : undefined;
          },
          60_000,
          describe,
        );
        console.log(`  node schedulable ${(performance.now() - started) | 0} ms after start`);
        const { "beta.kubernetes.io/os": _, "beta.kubernetes.io/arch": __, ...labels } =
          node.metadata?.labels ?? {};
        const hostname = (await env.system.exec(["hostname"])).stdout.trim();
        assert.deepEqual(labels, {
          "kubernetes.io/os": "linux",
          "kubernetes.io/arch": Deno.build.arch === "x86_64" ? "amd64" : "arm64",
          "kubernetes.io/hostname": hostname,
          "node.kubernetes.io/instance-type": "systemk",
        });
        assert.deepEqual(node.spec?.taints, [
          { key: "virtual-kubelet.io/provider", value: "systemk", effect: "NoSchedule" },
        ]);
        assert.deepEqual(node.status?.addresses, [
          { type: "InternalIP", address: "127.0.0.1" },
          { type: "ExternalIP", address: EXTERNAL_IP },
          { type: "Hostname", address: hostname },
        ]);

        const capacity = node.status?.capacity ?? {};
        assert.equal(capacity.cpu, String(navigator.hardwareConcurrency));
        assert.equal(capacity.memory, `${Math.floor(Deno.systemMemoryInfo().total / 1024)}Ki`);
        assert.match(capacity["ephemeral-storage"] ?? "", /^[1-9]\d*([KMGT]i)?$/);
        assert.equal(capacity.pods, String(MAX_PODS));
        assert.equal(node.status?.allocatable?.pods, String(MAX_PODS));
        assert.ok(node.status?.allocatable?.memory, "allocatable memory");

        const conditions = Object.fromEntries(
          (node.status?.conditions ?? []).map((c) => [c.type, c.status]),
        );
        assert.deepEqual(conditions, {
          Ready: "True",
          MemoryPressure: "False",
          DiskPressure: "False",
          PIDPressure: "False",
          NetworkUnavailable: "False",
        });

        const info = node.status?.nodeInfo;
        const inside = async (argv: string[]) => (await env.system.exec(argv)).stdout.trim();
        assert.equal(info?.machineID, await inside(["cat", "/etc/machine-id"]));
        // The kernel's boot id is behind /proc, which Deno opens only to --allow-all: systemk
        // derives one per boot from the machine id and systemd's start.
        assert.match(
          info?.bootID ?? "",
          /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/,
        );
        assert.equal(info?.kernelVersion, Deno.osRelease());
        assert.equal(
          info?.osImage,
          await inside(["sh", "-c", ". /etc/os-release && echo $PRETTY_NAME"]),
        );
        const systemd = (await inside(["systemctl", "--version"])).match(/^systemd (\d+)/)?.[1];
        assert.equal(info?.containerRuntimeVersion, `systemd://${systemd}`);
        assert.match(info?.kubeletVersion ?? "", /^v1\.\d+\.\d+-systemk\./);
        assert.equal(info?.operatingSystem, "linux");
        assert.equal(node.status?.daemonEndpoints?.kubeletEndpoint?.Port, 10250);

        firstLease = await env.getJSON<V1Lease>(["lease", "n1", "--namespace=kube-node-lease"]);
        assert.equal(firstLease?.spec?.holderIdentity, "n1");
        assert.equal(firstLease?.spec?.leaseDurationSeconds, 40);
        assert.deepEqual(
          firstLease?.metadata?.ownerReferences?.map((o) => [o.kind, o.name, o.uid]),
          [["Node", "n1", node.metadata?.uid]],
        );
      },
    );

    await t.step("a pod that does not tolerate the taint is not scheduled", async () => {
      const pod = bashPod("untolerated", "sleep infinity", { scheduled: true });
      delete (pod.spec as { tolerations?: unknown }).tolerations;
      await env.apply(pod);
      const unscheduled = await waitForPod(
        env,
        "untolerated",
        "Unschedulable",
        (p) =>
          p.status?.conditions?.some((c) =>
            c.type === "PodScheduled" && c.reason === "Unschedulable"
          ) ?? false,
      );
      const message = unscheduled.status?.conditions?.find((c) => c.type === "PodScheduled")
        ?.message;
      assert.match(message ?? "", /untolerated taint/);
      await env.kubectl(["delete", "pod", "untolerated"]);
    });

    await t.step("a bash loop pod, scheduled to the node, runs with the node IP", async () => {
      const created = performance.now();
      await env.apply(
        bashPod("loop", "while true; do echo tick; sleep 1; done", { scheduled: true }),
      );
      const pod = await waitForPod(env, "loop", "Running", running);
      console.log(`  create → Running: ${(performance.now() - created) | 0} ms`);
      assert.equal(pod.spec?.nodeName, "n1");
      // Host networking; as the seed says, the pod's primary address is --node-external-ip.
      assert.equal(pod.status?.podIP, EXTERNAL_IP);
      assert.deepEqual(pod.status?.podIPs, [{ ip: EXTERNAL_IP }]);
      assert.equal(pod.status?.hostIP, "127.0.0.1");
      assert.match(pod.status?.containerStatuses?.[0]?.containerID ?? "", /^systemd:\/\//);
      await waitFor("tick in the journal", async () => {
        const out = await env.system.exec(["journalctl", "--no-pager", "-u", unitOf("loop")]);
        return out.stdout.includes("tick");
      });
      // Events are written in the background, and Started only once systemd's start job is
      // done, which can be a moment after the status already says Running.
      const events = await waitFor("the Started event", async () => {
        const text = await env.kubectl([
          "get",
          "events",
          "--field-selector",
          "involvedObject.name=loop",
        ]);
        return /Started/.test(text) ? text : undefined;
      });
      assert.match(events, /Created/);
    });

    await t.step(
      "an admin's label and annotation survive status writes; an overwritten status is re-asserted",
      async () => {
        const invocation = await env.unitProperty(unitOf("loop"), "InvocationID");
        await env.kubectl(["label", "pod", "loop", "team=blue"]);
        await env.kubectl(["annotate", "pod", "loop", "example.com/note=keep me"]);
        // What the node lifecycle controller does to the pods of a node it lost.
        const patched = JSON.parse(
          await env.kubectl([
            "patch",
            "pod",
            "loop",
            "--subresource=status",
            "--type=strategic",
            "-o",
            "json",
            "-p",
            JSON.stringify({
              status: { conditions: [{ type: "Ready", status: "False", reason: "NodeNotReady" }] },
            }),
          ]),
        ) as V1Pod;
        assert.equal(patched.status?.conditions?.find((c) => c.type === "Ready")?.status, "False");
        const reasserted = await waitForPod(
          env,
          "loop",
          "Ready again",
          (p) => p.status?.conditions?.find((c) => c.type === "Ready")?.status === "True",
        );
        assert.equal(reasserted.metadata?.labels?.team, "blue");
        assert.equal(reasserted.metadata?.annotations?.["example.com/note"], "keep me");
        assert.equal(reasserted.status?.phase, "Running");
        // Metadata edits do not restart a container whose unit they do not change.
        assert.equal(await env.unitProperty(unitOf("loop"), "InvocationID"), invocation);
      },
    );

    await t.step("pod names with dots and shared prefixes keep their own units", async () => {
      const names = ["web", "web2", "web.x", "web.v1.example"];
      await env.apply(...names.map((n) => bashPod(n, "sleep infinity", { grace: 5 })));
      const pods = await Promise.all(names.map((n) => waitForPod(env, n, "Running", running)));
      const units = await env.units();
      for (const n of names) assert.ok(units.includes(unitOf(n)), `${unitOf(n)} in ${units}`);
      const invocation = (n: string) => env.unitProperty(unitOf(n), "InvocationID");
      const before = await Promise.all(names.map(invocation));

      await env.kubectl(["delete", "pod", "web"]);
      assert.equal(await env.getJSON(["pod", "web"]), undefined);
      await waitFor("web's unit gone", async () => !(await env.units()).includes(unitOf("web")));
      for (const [i, n] of names.entries()) {
        if (n === "web") continue;
        assert.equal(await env.unitProperty(unitOf(n), "ActiveState"), "active", n);
        assert.equal(await invocation(n), before[i], `${n} was not restarted`);
      }

      const dotted = pods[3];
      await env.kubectl(["delete", "pod", "web.v1.example"]);
      await waitFor(
        "web.v1.example's unit and files gone",
        async () =>
          !(await env.units()).includes(unitOf("web.v1.example")) &&
          !(await existsInside(env, `/run/systemk/${dotted.metadata?.uid}`)),
        30_000,
        describe,
      );
      assert.equal(await env.unitProperty(unitOf("web.x"), "ActiveState"), "active");
      await env.kubectl(["delete", "pod", "web2", "web.x", "--wait=false"]);
    });

    await t.step(
      "graceful delete: SIGTERM is trapped, the pod exits within its grace",
      async () => {
        await env.apply(
          bashPod(
            "graceful",
            "trap 'echo got TERM; exit 0' TERM; echo ready; while true; do sleep 0.2; done",
          ),
        );
        const pod = await waitForPod(env, "graceful", "Running", running);
        const unit = unitOf("graceful");
        await waitFor("the trap to be set", async () => {
          const out = await env.system.exec(["journalctl", "--no-pager", "-u", unit]);
          return out.stdout.includes("ready");
        });
        const deleting = performance.now();
        await env.kubectl(["delete", "pod", "graceful"]); // waits until the object is gone
        console.log(`  graceful delete (grace 30 s) took ${(performance.now() - deleting) | 0} ms`);
        assert.equal(await env.getJSON(["pod", "graceful"]), undefined);
        const journal = await env.system.exec([
          "journalctl",
          "--no-pager",
          "-o",
          "cat",
          "-u",
          unit,
        ]);
        assert.match(journal.stdout, /got TERM/);
        assert.ok(!(await env.units()).includes(unit), "unit removed");
        assert.equal(await existsInside(env, `/run/systemk/${pod.metadata?.uid}`), false);
      },
    );

    await t.step("a pod ignoring SIGTERM is killed at the end of its grace period", async () => {
      await env.apply(
        bashPod("stubborn", "trap '' TERM; while true; do sleep 0.2; done", { grace: 3 }),
      );
      const pod = await waitForPod(env, "stubborn", "Running", running);
      const deleting = performance.now();
      await env.kubectl(["delete", "pod", "stubborn"]);
      console.log(`  delete past a 3 s grace took ${(performance.now() - deleting) | 0} ms`);
      assert.ok(!(await env.units()).includes(unitOf("stubborn")), "unit removed");
      assert.equal(await existsInside(env, `/run/systemk/${pod.metadata?.uid}`), false);
    });

    await t.step(
      "force delete (--grace-period=0 --force) stops and removes the units",
      async () => {
        await env.apply(bashPod("forced", "trap '' TERM; sleep infinity", { grace: 60 }));
        const pod = await waitForPod(env, "forced", "Running", running);
        const deleting = performance.now();
        await env.kubectl(["delete", "pod", "forced", "--grace-period=0", "--force"]);
        assert.equal(await env.getJSON(["pod", "forced"]), undefined);
        await waitFor(
          "forced's unit and files gone",
          async () =>
            !(await env.units()).includes(unitOf("forced")) &&
            !(await existsInside(env, `/run/systemk/${pod.metadata?.uid}`)),
          30_000,
          describe,
        );
        console.log(`  force delete → units gone: ${(performance.now() - deleting) | 0} ms`);
      },
    );

    await t.step(
      "a pod re-created under the same name at once is not hit by the old one's deletion",
      async () => {
        await env.apply(
          bashPod("again", "trap '' TERM; echo first; sleep infinity", { grace: 60 }),
        );
        const old = await waitForPod(env, "again", "Running", running);
        await env.kubectl(["delete", "pod", "again", "--grace-period=0", "--force"]);
        await env.apply(bashPod("again", "echo second; sleep infinity"));
        const renewed = await waitForPod(
          env,
          "again",
          "Running as a new pod",
          (p) => p.metadata?.uid !== old.metadata?.uid && running(p),
          { timeoutMs: 30_000 },
        );
        const unit = unitOf("again");
        await waitFor("the new pod's output", async () => {
          const out = await env.system.exec(["journalctl", "--no-pager", "-o", "cat", "-u", unit]);
          return out.stdout.includes("second");
        });
        const invocation = await env.unitProperty(unit, "InvocationID");
        // Let the old pod's termination finish, whatever it does, then look again.
        await waitFor(
          "the old pod's files gone",
          async () => !(await existsInside(env, `/run/systemk/${old.metadata?.uid}`)),
        );
        const now = await env.getJSON<V1Pod>(["pod", "again"]);
        assert.equal(now?.metadata?.uid, renewed.metadata?.uid, "the new pod object stays");
        assert.ok(now && running(now));
        assert.equal(await env.unitProperty(unit, "ActiveState"), "active");
        assert.equal(await env.unitProperty(unit, "InvocationID"), invocation);
        await env.kubectl(["delete", "pod", "again", "--grace-period=0", "--force"]);
      },
    );

    await t.step("the Lease was renewed meanwhile", async () => {
      const renewed = await waitFor(
        "a newer Lease renewTime",
        async () => {
          const lease = await env.getJSON<V1Lease>(["lease", "n1", "--namespace=kube-node-lease"]);
          return new Date(String(lease?.spec?.renewTime)) >
              new Date(String(firstLease?.spec?.renewTime))
            ? lease
            : undefined;
        },
        30_000,
      );
      assert.equal(renewed.spec?.holderIdentity, "n1");
    });
  } finally {
    await env.stop();
  }
});
