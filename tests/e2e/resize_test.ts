/**
 * In-place pod resize end to end (real control plane, booted systemd 252, systemk with the
 * shipped permissions, `kubectl patch --subresource resize` of kubectl v1.34):
 *
 * - the node reports `containerStatuses[].resources`, so the apiserver accepts resizes;
 * - `resizePolicy: NotRequired` (the default): the running unit gets the new CPU and memory
 *   limits through `SetUnitProperties`, same invocation, no restart; `resources`,
 *   `allocatedResources`, `observedGeneration` follow, `ResizeCompleted` says so, and its unit file
 *   says so (what a restart of systemk adopts);
 * - `RestartContainer`: the container restarts with the new limit (`restartCount` 1);
 * - beyond the node's allocatable: `PodResizePending` `Infeasible`; beyond what the other pods
 *   leave: `Deferred`, allocated once the other pod goes;
 * - a memory limit below what the container uses is not applied (systemd 252 would fail to lower
 *   it on cgroup v1, or the kernel reclaim or kill on v2): `PodResizeInProgress` with reason
 *   `Error` and the kubelet's message, the unit untouched; allocated again once it fits.
 *
 * @module
 */
import assert from "node:assert/strict";
import type { V1Pod, V1PodCondition } from "@kubernetes/client-node";
import {
  holding,
  type NodeEnv,
  podEvents,
  startNodeEnv,
  waitFor,
  waitForPod,
} from "./_node_env.ts";

const opts = { sanitizeOps: false, sanitizeResources: false, ignore: Deno.uid() !== 0 };
const MI = 2 ** 20;

const UNIT = (container: string) => `systemk.default.rz.${container}.service`;

const condition = (pod: V1Pod, type: string): V1PodCondition | undefined =>
  pod.status?.conditions?.find((c) => c.type === type);
const status = (pod: V1Pod, name: string) =>
  pod.status?.containerStatuses?.find((s) => s.name === name);

async function resize(env: NodeEnv, container: string, resources: Record<string, unknown>) {
  await env.kubectl([
    "patch",
    "pod",
    "rz",
    "--subresource",
    "resize",
    "--patch",
    JSON.stringify({ spec: { containers: [{ name: container, resources }] } }),
  ]);
}

async function show(env: NodeEnv, unit: string, ...properties: string[]) {
  const out = await env.system.exec([
    "systemctl",
    "show",
    ...properties.map((p) => `-p${p}`),
    unit,
  ]);
  return Object.fromEntries(
    out.stdout.trim().split("\n").map((
      l,
    ) => [l.slice(0, l.indexOf("=")), l.slice(l.indexOf("=") + 1)]),
  ) as Record<string, string>;
}

Deno.test(
  "in-place pod resize: NotRequired, RestartContainer, Infeasible, Deferred, Error",
  opts,
  async (t) => {
    const env = await startNodeEnv();
    try {
      await env.apply({
        apiVersion: "v1",
        kind: "Pod",
        metadata: { name: "rz", namespace: "default" },
        spec: {
          terminationGracePeriodSeconds: 2,
          containers: [
            holding("app", 60, {
              resources: {
                requests: { cpu: "100m", memory: "64Mi" },
                limits: { cpu: "200m", memory: "128Mi" },
              },
            }),
            {
              name: "restarter",
              image: "/bin/sleep",
              command: ["/bin/sleep", "infinity"],
              resizePolicy: [{ resourceName: "memory", restartPolicy: "RestartContainer" }],
              resources: { requests: { cpu: "50m", memory: "32Mi" }, limits: { memory: "32Mi" } },
            },
          ],
        },
      });
      const first = await waitForPod(
        env,
        "rz",
        "running with resources reported",
        (pod) =>
          pod.status?.phase === "Running" &&
          (pod.status.containerStatuses ?? []).every((s) => s.state?.running && s.resources),
      );
      const invocation = (await show(env, UNIT("app"), "InvocationID")).InvocationID;

      await t.step("the node reports resources, allocatedResources and observedGeneration", () => {
        assert.deepEqual(status(first, "app")!.resources, {
          requests: { cpu: "100m", memory: "64Mi" },
          limits: { cpu: "200m", memory: "128Mi" },
        });
        assert.deepEqual(status(first, "app")!.allocatedResources, { cpu: "100m", memory: "64Mi" });
        assert.equal(first.metadata!.generation, 1);
        assert.equal(first.status!.observedGeneration, 1);
        assert.equal(condition(first, "Ready")!.observedGeneration, 1);
      });

      await t.step("NotRequired: new limits on the running unit, same invocation", async () => {
        await resize(env, "app", {
          requests: { cpu: "150m", memory: "64Mi" },
          limits: { cpu: "400m", memory: "192Mi" },
        });
        const pod = await waitForPod(
          env,
          "rz",
          "resized",
          (p) =>
            p.status?.observedGeneration === 2 && !condition(p, "PodResizeInProgress") &&
            status(p, "app")?.resources?.limits?.cpu === "400m",
        );
        assert.deepEqual(status(pod, "app")!.resources, {
          requests: { cpu: "150m", memory: "64Mi" },
          limits: { cpu: "400m", memory: "192Mi" },
        });
        assert.deepEqual(status(pod, "app")!.allocatedResources, { cpu: "150m", memory: "64Mi" });
        assert.equal(status(pod, "app")!.restartCount, 0);
        assert.equal(condition(pod, "Ready")!.observedGeneration, 2);
        assert.deepEqual(
          await show(env, UNIT("app"), "InvocationID", "CPUQuotaPerSecUSec", "MemoryMax"),
          {
            InvocationID: invocation,
            CPUQuotaPerSecUSec: "400ms",
            MemoryMax: String(192 * MI),
          },
        );
        // The unit file says so: a restart of systemk adopts the unit as it runs.
        const file = await env.system.exec(["cat", `/run/systemd/system/${UNIT("app")}`]);
        assert.match(file.stdout, /^CPUQuota=40%$/m);
        assert.match(file.stdout, /^MemoryMax=201326592$/m);
        const events = await podEvents(env, "rz");
        assert.ok(
          events.some((e) => e.reason === "ResizeCompleted"),
          JSON.stringify(events),
        );
        // systemd's own record of the change (a drop-in) is gone: the unit file is the record.
        const dropIns = await env.system.exec([
          "ls",
          `/run/systemd/system.control/${UNIT("app")}.d`,
        ]);
        assert.notEqual(dropIns.code, 0, dropIns.stdout);
      });

      await t.step(
        "RestartContainer: the container restarts with its new memory limit",
        async () => {
          const before = (await show(env, UNIT("restarter"), "InvocationID")).InvocationID;
          await resize(env, "restarter", {
            requests: { cpu: "50m", memory: "48Mi" },
            limits: { memory: "48Mi" },
          });
          const pod = await waitForPod(
            env,
            "rz",
            "restarted",
            (p) =>
              status(p, "restarter")?.restartCount === 1 &&
              !!status(p, "restarter")?.state?.running &&
              !condition(p, "PodResizeInProgress"),
          );
          assert.deepEqual(status(pod, "restarter")!.resources!.limits, { memory: "48Mi" });
          const after = await show(env, UNIT("restarter"), "InvocationID", "MemoryMax");
          assert.notEqual(after.InvocationID, before);
          assert.equal(after.MemoryMax, String(48 * MI));
          assert.equal((await show(env, UNIT("app"), "InvocationID")).InvocationID, invocation);
          const events = await podEvents(env, "rz");
          assert.ok(
            events.some((e) =>
              e.reason === "Killing" && e.message === "Container restarter resize requires restart"
            ),
          );
        },
      );

      await t.step("Infeasible beyond the node's allocatable", async () => {
        await resize(env, "app", {
          requests: { cpu: "1000", memory: "64Mi" },
          limits: { cpu: "1000", memory: "192Mi" },
        });
        const pod = await waitForPod(
          env,
          "rz",
          "Infeasible",
          (p) => condition(p, "PodResizePending")?.reason === "Infeasible",
        );
        assert.match(
          condition(pod, "PodResizePending")!.message!,
          /^Node didn't have enough capacity: cpu, requested: 1000050, capacity: \d+$/,
        );
        assert.equal(
          condition(pod, "PodResizePending")!.observedGeneration,
          pod.metadata!.generation,
        );
        assert.equal(status(pod, "app")!.resources!.limits!.cpu, "400m");
        assert.equal(
          (await show(env, UNIT("app"), "CPUQuotaPerSecUSec")).CPUQuotaPerSecUSec,
          "400ms",
        );
        const events = await podEvents(env, "rz");
        assert.ok(events.some((e) => e.reason === "ResizeInfeasible"));
      });

      await t.step(
        "Deferred while another pod holds the room, allocated once it goes",
        async () => {
          const node = await env.getJSON<{ status: { allocatable: { cpu: string } } }>([
            "node",
            env.nodeName,
          ]);
          const cpus = Number(node!.status.allocatable.cpu) * 1000;
          // rz asks for 150m + 50m now; the hog takes all but 300m of what is left.
          const hog = cpus - 200 - 300;
          await env.apply({
            apiVersion: "v1",
            kind: "Pod",
            metadata: { name: "hog", namespace: "default" },
            spec: {
              terminationGracePeriodSeconds: 2,
              containers: [{
                name: "hog",
                image: "/bin/sleep",
                command: ["/bin/sleep", "infinity"],
                resources: { requests: { cpu: `${hog}m` } },
              }],
            },
          });
          await waitForPod(env, "hog", "running", (p) => p.status?.phase === "Running");
          await resize(env, "app", {
            requests: { cpu: "600m", memory: "64Mi" },
            limits: { cpu: "600m", memory: "192Mi" },
          });
          const pod = await waitForPod(
            env,
            "rz",
            "Deferred",
            (p) => condition(p, "PodResizePending")?.reason === "Deferred",
          );
          assert.equal(
            condition(pod, "PodResizePending")!.message,
            `Node didn't have enough resource: cpu, requested: 650, used: ${hog}, capacity: ${cpus}`,
          );
          await env.kubectl(["delete", "pod", "hog", "--wait=true"]);
          await waitForPod(
            env,
            "rz",
            "allocated after the hog went",
            (p) =>
              !condition(p, "PodResizePending") && !condition(p, "PodResizeInProgress") &&
              status(p, "app")?.resources?.limits?.cpu === "600m",
          );
          assert.equal(
            (await show(env, UNIT("app"), "CPUQuotaPerSecUSec")).CPUQuotaPerSecUSec,
            "600ms",
          );
        },
      );

      await t.step(
        "a memory limit below what the container uses: Error, nothing lowered",
        async () => {
          await resize(env, "app", {
            requests: { cpu: "600m", memory: "32Mi" },
            limits: { cpu: "600m", memory: "32Mi" },
          });
          const pod = await waitForPod(
            env,
            "rz",
            "in progress with an error",
            (p) => condition(p, "PodResizeInProgress")?.reason === "Error",
          );
          assert.match(
            condition(pod, "PodResizeInProgress")!.message!,
            /^cannot decrease memory limits: attempting to set container "app" memory limit \(33554432\) below current usage \(\d+\)$/,
          );
          assert.deepEqual(status(pod, "app")!.allocatedResources, { cpu: "600m", memory: "32Mi" });
          assert.equal(status(pod, "app")!.resources!.limits!.memory, "192Mi");
          assert.deepEqual(await show(env, UNIT("app"), "InvocationID", "MemoryMax"), {
            InvocationID: invocation,
            MemoryMax: String(192 * MI),
          });
          // A limit that fits is applied, and the resize completes.
          await resize(env, "app", {
            requests: { cpu: "600m", memory: "32Mi" },
            limits: { cpu: "600m", memory: "160Mi" },
          });
          await waitForPod(
            env,
            "rz",
            "resized to what fits",
            (p) =>
              !condition(p, "PodResizeInProgress") &&
              status(p, "app")?.resources?.limits?.memory === "160Mi",
            { timeoutMs: 90_000 },
          );
          assert.equal((await show(env, UNIT("app"), "MemoryMax")).MemoryMax, String(160 * MI));
        },
      );

      await t.step("a restart of systemk adopts the resized units as they run", async () => {
        const before = await show(env, UNIT("app"), "InvocationID");
        await env.stopAgent();
        await env.startAgent();
        await waitFor("the new systemk to find the pod running", async () => {
          const log = await env.agentLog();
          return log.split("\n").filter((l) => l.includes("found running")).length >= 2;
        });
        const pod = await waitForPod(
          env,
          "rz",
          "resources reported",
          (p) => status(p, "app")?.resources?.limits?.memory === "160Mi",
        );
        assert.equal(condition(pod, "PodResizeInProgress"), undefined);
        assert.equal(condition(pod, "PodResizePending"), undefined);
        assert.deepEqual(await show(env, UNIT("app"), "InvocationID", "MemoryMax"), {
          InvocationID: before.InvocationID,
          MemoryMax: String(160 * MI),
        });
        assert.equal(status(pod, "app")!.restartCount, 0);
      });
    } finally {
      await env.stop();
    }
  },
);
