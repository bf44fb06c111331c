/**
 * Pods as slices, end to end (real control plane, booted systemd, systemk with the shipped
 * permissions): each pod's units run in `systemk-pod<uid>.slice`, pod-level `spec.resources`
 * (beta and on in Kubernetes 1.34) limit that slice, `/stats/summary` reads the pod's figures from
 * it, a restart of systemk adopts it untouched, and it goes with the pod.
 */
import assert from "node:assert/strict";
import type { V1Pod } from "@kubernetes/client-node";
import { holding, type NodeEnv, startNodeEnv, waitFor, waitForPod } from "./_node_env.ts";
import { approveServingCertificate } from "./_kubelet_api.ts";
import type { Summary } from "../../src/http/stats.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };
const MI = 2 ** 20;

/** Properties of a unit of the test systemd, by name. */
async function show(env: NodeEnv, unit: string, properties: string[]) {
  const out = await env.system.exec([
    "systemctl",
    "show",
    ...properties.map((p) => `-p${p}`),
    unit,
  ]);
  return Object.fromEntries(
    out.stdout.trim().split("\n").map((
      line,
    ) => [line.slice(0, line.indexOf("=")), line.slice(line.indexOf("=") + 1)]),
  ) as Record<string, string>;
}

const sliceOf = (pod: V1Pod) => `systemk-pod${pod.metadata!.uid!.replaceAll("-", "_")}.slice`;
const running = (pod: V1Pod) =>
  pod.status?.phase === "Running" &&
  (pod.status.containerStatuses ?? []).every((s) => s.state?.running);

Deno.test("pod slices: spec.resources, stats, adoption and removal", opts, async (t) => {
  // An address of its own: the apiserver proxies to no node on loopback (`/stats/summary`).
  const env = await startNodeEnv({ network: "veth", flags: ["--rotate-server-certificates"] });
  try {
    await approveServingCertificate(env.cluster, env.nodeName, env.agentLog);
    await env.apply({
      apiVersion: "v1",
      kind: "Pod",
      metadata: { name: "pair", namespace: "default" },
      spec: {
        terminationGracePeriodSeconds: 2,
        resources: { limits: { cpu: "300m", memory: "96Mi" } },
        containers: [
          { name: "burn", image: "/bin/bash", command: ["/bin/bash", "-c", "while :; do :; done"] },
          holding("mem", 20, { resources: { limits: { memory: "48Mi" } } }),
        ],
      },
    });
    const pod = await waitForPod(env, "pair", "running", running);
    const slice = sliceOf(pod);

    await t.step("the units run in the pod's slice, which spec.resources limit", async () => {
      const s = await show(env, slice, [
        "ActiveState",
        "CPUQuotaPerSecUSec",
        "MemoryMax",
        "ControlGroup",
      ]);
      assert.deepEqual(s, {
        ActiveState: "active",
        CPUQuotaPerSecUSec: "300ms",
        MemoryMax: String(96 * MI),
        ControlGroup: `/systemk.slice/${slice}`,
      });
      const burn = await show(env, "systemk.default.pair.burn.service", [
        "ControlGroup",
        "MemoryMax",
        "Slice",
      ]);
      assert.equal(burn.Slice, slice);
      assert.equal(burn.ControlGroup, `/systemk.slice/${slice}/systemk.default.pair.burn.service`);
      // No limit of its own: the pod's, as the kubelet sets it on the container's cgroup.
      assert.equal(burn.MemoryMax, String(96 * MI));
      const mem = await show(env, "systemk.default.pair.mem.service", ["MemoryMax", "Slice"]);
      assert.deepEqual(mem, { MemoryMax: String(48 * MI), Slice: slice });
    });

    await t.step("/stats/summary: the pod's CPU and memory are its slice's", async () => {
      const summary = () =>
        env.kubectl(["get", "--raw", `/api/v1/nodes/${env.nodeName}/proxy/stats/summary`])
          .then((text) => JSON.parse(text) as Summary);
      // A rate needs a previous measurement; the second call has one.
      const found = await waitFor(
        "pair's figures in /stats/summary",
        async () => {
          const p = (await summary()).pods.find((p) => p.podRef.name === "pair");
          const burn = p?.containers.find((c) => c.name === "burn");
          const mem = p?.containers.find((c) => c.name === "mem");
          return p?.cpu.usageNanoCores !== undefined &&
              (mem?.memory.workingSetBytes ?? 0) >= 20 * MI &&
              burn?.cpu.usageNanoCores !== undefined
            ? { pod: p, burn: burn!, mem: mem! }
            : undefined;
        },
        60_000,
        env.agentLog,
      );
      const { pod: p, burn, mem } = found;
      console.log(
        `  pod: ${p.cpu.usageNanoCores} nanocores, ${p.memory.workingSetBytes} bytes; burn ` +
          `${burn.cpu.usageNanoCores} nanocores; mem ${mem.memory.workingSetBytes} bytes`,
      );
      // The slice holds both containers: at least what each uses (CPU is read from the cgroups
      // on these hybrid hosts, the slice's first, so the container may be a few ms ahead).
      assert.ok(p.memory.workingSetBytes! >= mem.memory.workingSetBytes!, JSON.stringify(p));
      assert.ok(
        p.cpu.usageCoreNanoSeconds! + 50e6 >= burn.cpu.usageCoreNanoSeconds!,
        JSON.stringify({ pod: p.cpu, burn: burn.cpu }),
      );
      assert.ok(burn.cpu.usageNanoCores! > 0, "the busy container's CPU is measured");
      // The slice's CPUQuota (300m) holds the whole pod.
      assert.ok(p.cpu.usageNanoCores! <= 0.36e9, JSON.stringify(p.cpu));
      const resource = await env.kubectl([
        ...["get", "--raw"],
        `/api/v1/nodes/${env.nodeName}/proxy/metrics/resource`,
      ]);
      assert.match(
        resource,
        /^pod_cpu_usage_seconds_total\{namespace="default",pod="pair"\} [\d.e+-]+ \d+$/m,
      );
      assert.match(
        resource,
        /^pod_memory_working_set_bytes\{namespace="default",pod="pair"\} \d+ \d+$/m,
      );
    });

    await t.step("a pod-level memory limit kills a container the slice cannot hold", async () => {
      // Each container fits its own 48Mi; together they pass the pod's 64Mi. (Their requests
      // must fit it: the apiserver refuses a pod whose containers request more than it.)
      await env.apply({
        apiVersion: "v1",
        kind: "Pod",
        metadata: { name: "squeeze", namespace: "default" },
        spec: {
          restartPolicy: "Never",
          resources: { limits: { memory: "64Mi" } },
          containers: ["a", "b"].map((name) =>
            holding(name, 40, {
              resources: { limits: { memory: "48Mi" }, requests: { memory: "16Mi" } },
            })
          ),
        },
      });
      const squeezed = await waitForPod(
        env,
        "squeeze",
        "with a container OOMKilled",
        (p) =>
          (p.status?.containerStatuses ?? []).some((s) =>
            s.state?.terminated?.reason === "OOMKilled"
          ),
        { timeoutMs: 90_000 },
      );
      const killed = squeezed.status!.containerStatuses!.find((s) => s.state?.terminated)!;
      assert.equal(killed.state!.terminated!.exitCode, 137);
      const kernel = await env.system.exec(["dmesg"]);
      const line = kernel.stdout.split("\n").findLast((l) =>
        l.includes(`task_memcg=`) && l.includes(sliceOf(squeezed))
      );
      assert.ok(line, "the kernel logged the OOM kill in the pod's slice");
      // The slice's limit was hit, not the container's own.
      assert.match(
        line,
        new RegExp(`oom_memcg=[^,]*/${sliceOf(squeezed).replaceAll(".", "\\.")},`),
      );
      await env.kubectl(["delete", "pod", "squeeze", "--wait=true"]);
    });

    await t.step("a restart of systemk adopts the slice untouched", async () => {
      const before = await show(env, slice, ["ActiveEnterTimestampMonotonic"]);
      const invocation = await env.unitProperty(
        "systemk.default.pair.burn.service",
        "InvocationID",
      );
      await env.stopAgent("SIGKILL");
      await env.startAgent();
      const started = await waitFor(
        "systemk back, watching pods",
        async () => {
          const runs = (await env.agentLog()).split("\n").filter((l) =>
            l.startsWith("systemk: watching pods of node")
          );
          return runs.length >= 2 ? runs.at(-1) : undefined;
        },
        60_000,
        env.agentLog,
      );
      assert.match(started, /1 found running/);
      await waitForPod(env, "pair", "running after the restart", running);
      assert.deepEqual(await show(env, slice, ["ActiveEnterTimestampMonotonic"]), before);
      assert.equal(
        await env.unitProperty("systemk.default.pair.burn.service", "InvocationID"),
        invocation,
      );
    });

    await t.step("deleting the pod removes its slice", async () => {
      await env.kubectl(["delete", "pod", "pair", "--wait=true"]);
      await waitFor(
        "the slice gone",
        async () => {
          const s = await show(env, slice, ["LoadState", "ActiveState"]);
          return s.ActiveState === "inactive" &&
            (await env.system.exec(["test", "-e", `/run/systemd/system/${slice}`])).code !== 0;
        },
        30_000,
        env.agentLog,
      );
      assert.deepEqual(
        (await env.units()).filter((u) => u.includes("pair")),
        [],
      );
    });
  } finally {
    await env.stop();
  }
});
