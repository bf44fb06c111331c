import assert from "node:assert/strict";
import type { V1Pod } from "@kubernetes/client-node";
import {
  podPriority,
  podShutdownGraceSeconds,
  shutdownGroups,
  SYSTEM_CRITICAL_PRIORITY,
} from "./shutdown_groups.ts";

const pod = (name: string, spec: Partial<NonNullable<V1Pod["spec"]>> = {}): V1Pod => ({
  metadata: { name },
  spec: { containers: [], ...spec },
});
const names = (pods: V1Pod[]) => pods.map((p) => p.metadata!.name);
const periods = { gracePeriodSeconds: 30, criticalPodsSeconds: 10 };

Deno.test("shutdown groups: regular pods first with the rest of the period, critical pods last", () => {
  const groups = shutdownGroups([
    pod("node-critical", { priority: SYSTEM_CRITICAL_PRIORITY + 1000 }),
    pod("web"),
    pod("cluster-critical", { priority: SYSTEM_CRITICAL_PRIORITY }),
    pod("high", { priority: 1_000_000 }),
    pod("low", { priority: -5 }),
  ], periods);
  assert.deepEqual(groups.map((g) => [g.graceSeconds, names(g.pods)]), [
    [20, ["web", "high", "low"]],
    [10, ["node-critical", "cluster-critical"]],
  ]);
});

Deno.test("shutdown groups: a group without pods is left out", () => {
  assert.deepEqual(shutdownGroups([pod("web")], periods).map((g) => g.graceSeconds), [20]);
  assert.deepEqual(shutdownGroups([], periods), []);
  // All of the period for critical pods: regular pods get none (killed at once).
  const all = shutdownGroups([pod("web")], { gracePeriodSeconds: 10, criticalPodsSeconds: 10 });
  assert.equal(all[0].graceSeconds, 0);
});

Deno.test("priority: spec.priority, else a critical class by name (static pods), else 0", () => {
  assert.equal(podPriority(pod("a", { priority: 7 })), 7);
  assert.equal(
    podPriority(pod("static", { priorityClassName: "system-node-critical" })),
    SYSTEM_CRITICAL_PRIORITY + 1000,
  );
  assert.equal(podPriority(pod("b", { priorityClassName: "high" })), 0);
});

Deno.test("a pod's grace period: its group's, or its own when shorter", () => {
  const [group] = shutdownGroups([pod("web")], periods);
  assert.equal(podShutdownGraceSeconds(pod("web"), group), 20);
  assert.equal(
    podShutdownGraceSeconds(pod("quick", { terminationGracePeriodSeconds: 3 }), group),
    3,
  );
  assert.equal(
    podShutdownGraceSeconds(pod("slow", { terminationGracePeriodSeconds: 60 }), group),
    20,
  );
  assert.equal(podShutdownGraceSeconds(pod("now", { terminationGracePeriodSeconds: 0 }), group), 0);
});
