/**
 * End to end: the pod's conditions as `kubectl describe pod` shows them. A Ready condition
 * that turns True carries no reason or message left over from when it was False (the status
 * patch clears what systemk no longer sets), and a readiness gate flipped by another
 * controller (`kubectl patch --subresource status`) turns the pod Ready and back.
 */
import assert from "node:assert/strict";
import type { V1Pod, V1PodCondition } from "@kubernetes/client-node";
import { startNodeEnv, waitForPod } from "./_node_env.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };

const GATE = "example.com/load-balancer";

function condition(pod: V1Pod, type: string): V1PodCondition | undefined {
  return pod.status?.conditions?.find((c) => c.type === type);
}

Deno.test("pod conditions: stale reasons cleared, readiness gates followed", opts, async (t) => {
  const env = await startNodeEnv();
  try {
    await t.step("Ready turns True without the reason and message it had while False", async () => {
      await env.apply({
        apiVersion: "v1",
        kind: "Pod",
        metadata: { name: "slow", namespace: "default" },
        spec: {
          terminationGracePeriodSeconds: 1,
          containers: ["writer", "reader"].map((name) => ({
            name,
            image: "/bin/sleep",
            command: ["/bin/sleep", "infinity"],
            // Not ready until the first probe, a few seconds in: Ready is False first.
            readinessProbe: { exec: { command: ["/bin/true"] }, initialDelaySeconds: 4 },
          })),
        },
      });
      const unready = await waitForPod(
        env,
        "slow",
        "Running, neither container ready yet",
        (p) =>
          p.status?.phase === "Running" &&
          condition(p, "Ready")?.message === "containers with unready status: [writer reader]",
      );
      assert.equal(condition(unready, "Ready")?.status, "False");
      assert.equal(condition(unready, "Ready")?.reason, "ContainersNotReady");
      const ready = await waitForPod(
        env,
        "slow",
        "Ready",
        (p) => condition(p, "Ready")?.status === "True",
      );
      for (const type of ["Ready", "ContainersReady"]) {
        assert.equal(condition(ready, type)?.reason, undefined, `${type} has no reason`);
        assert.equal(condition(ready, type)?.message, undefined, `${type} has no message`);
      }
      const described = await env.kubectl(["describe", "pod", "slow"]);
      assert.doesNotMatch(described, /ContainersNotReady|unready status/);
    });

    await t.step("a readiness gate set by another controller makes the pod Ready", async () => {
      await env.apply({
        apiVersion: "v1",
        kind: "Pod",
        metadata: { name: "gated", namespace: "default" },
        spec: {
          terminationGracePeriodSeconds: 1,
          readinessGates: [{ conditionType: GATE }],
          containers: [{
            name: "c",
            image: "/bin/sleep",
            command: ["/bin/sleep", "infinity"],
          }],
        },
      });
      const waiting = await waitForPod(
        env,
        "gated",
        "containers ready, gate not",
        (p) =>
          condition(p, "ContainersReady")?.status === "True" &&
          condition(p, "Ready")?.reason === "ReadinessGatesNotReady",
      );
      assert.equal(condition(waiting, "Ready")?.status, "False");
      const flip = (status: "True" | "False") =>
        env.kubectl([
          "patch",
          "pod",
          "gated",
          "--subresource",
          "status",
          "--type",
          "strategic",
          "-p",
          JSON.stringify({ status: { conditions: [{ type: GATE, status }] } }),
        ]);
      await flip("True");
      const ready = await waitForPod(
        env,
        "gated",
        "Ready once the gate is True",
        (p) => condition(p, "Ready")?.status === "True",
      );
      assert.equal(condition(ready, GATE)?.status, "True", "the gate's condition is kept");
      assert.equal(condition(ready, "Ready")?.reason, undefined);
      await flip("False");
      const back = await waitForPod(
        env,
        "gated",
        "not Ready once the gate is False",
        (p) => condition(p, "Ready")?.status === "False",
      );
      assert.equal(condition(back, "Ready")?.reason, "ReadinessGatesNotReady");
      assert.equal(condition(back, GATE)?.status, "False", "systemk did not write the gate back");
    });
  } finally {
    await env.stop();
  }
});
