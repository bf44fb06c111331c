import assert from "node:assert/strict";
import type { V1Container, V1Probe } from "@kubernetes/client-node";
import {
  applyOutcome,
  initialResult,
  probeKillGraceSeconds,
  type ProbeKind,
  startContainerProbes,
} from "./worker.ts";

Deno.test("probe result: flips after successThreshold / failureThreshold in a row", () => {
  const probe: V1Probe = { successThreshold: 2, failureThreshold: 3 };
  const seen = (kind: ProbeKind, outcomes: boolean[]) => {
    let r = initialResult(kind);
    return outcomes.map((ok) => (r = applyOutcome(r, { ok, probe })).ok);
  };
  assert.deepEqual(seen("Readiness", [true, false, true, true, false, false, false]), [
    false,
    false,
    false,
    true,
    true,
    true,
    false,
  ]);
  assert.deepEqual(seen("Liveness", [false, false, true, false, false, false]), [
    true,
    true,
    true,
    true,
    true,
    false,
  ]);
  assert.deepEqual(seen("Startup", [false, false, false]), [undefined, undefined, false]);
});

/** A container whose probes answer from `answers` (per kind, in turn; last one repeats). */
async function probed(container: V1Container, answers: Record<string, boolean[]>, ms: number) {
  const log: string[] = [];
  const attempts: Record<string, number> = {};
  const kindOf = (p: V1Probe) =>
    p === container.startupProbe
      ? "startup"
      : p === container.livenessProbe
      ? "liveness"
      : "readiness";
  const probes = startContainerProbes(container, {
    host: "127.0.0.1",
    listener: {
      ready: (ready) => log.push(`ready ${ready}`),
      started: () => log.push("started"),
      unhealthy: (kind) => log.push(`unhealthy ${kind}`),
      failed: () => {},
      unsupported: (kind, message) => log.push(`unsupported ${kind}: ${message}`),
    },
    attempt: (p) => {
      const kind = kindOf(p);
      const i = attempts[kind] = (attempts[kind] ?? 0) + 1;
      const list = answers[kind];
      return Promise.resolve({ ok: list[Math.min(i, list.length) - 1] });
    },
  });
  await new Promise((r) => setTimeout(r, ms));
  probes.stop();
  const after = JSON.stringify(attempts);
  await new Promise((r) => setTimeout(r, 50));
  assert.equal(JSON.stringify(attempts), after, "no attempt after stop");
  return { log, attempts };
}

const fast = (extra: V1Probe = {}): V1Probe => ({
  periodSeconds: 0.005,
  failureThreshold: 1,
  ...extra,
});

Deno.test("probes: startup gates liveness and readiness, then stops", async () => {
  const { log, attempts } = await probed(
    {
      name: "c",
      startupProbe: fast({ failureThreshold: 10 }),
      readinessProbe: fast(),
      livenessProbe: fast(),
    },
    { startup: [false, false, true], readiness: [true], liveness: [true] },
    150,
  );
  assert.deepEqual(log.slice(0, 2), ["started", "ready true"]);
  assert.equal(attempts.startup, 3, "no startup attempt after its success");
  assert.ok(attempts.liveness > 1 && attempts.readiness > 1);
});

Deno.test("probes: a failed startup or liveness probe is reported once", async () => {
  const startup = await probed(
    { name: "c", startupProbe: fast({ failureThreshold: 2 }), livenessProbe: fast() },
    { startup: [false], liveness: [true] },
    100,
  );
  assert.deepEqual(startup.log, ["unhealthy Startup"]);
  assert.equal(startup.attempts.liveness, undefined, "liveness never ran");
  const liveness = await probed(
    { name: "c", livenessProbe: fast({ failureThreshold: 2 }), readinessProbe: fast() },
    { liveness: [true, false, false], readiness: [true, true, false] },
    100,
  );
  // The two probes' timers are independent: only each one's own order is fixed.
  assert.deepEqual(liveness.log.filter((l) => l.startsWith("ready")), [
    "ready true",
    "ready false",
  ]);
  assert.deepEqual(liveness.log.filter((l) => l.startsWith("unhealthy")), ["unhealthy Liveness"]);
  assert.equal(liveness.attempts.liveness, 3, "liveness ends with its failure");
});

Deno.test("probes: initialDelaySeconds holds the first attempt", async () => {
  const { attempts } = await probed(
    { name: "c", readinessProbe: fast({ initialDelaySeconds: 10 }) },
    { readiness: [true] },
    50,
  );
  assert.equal(attempts.readiness, undefined);
});

Deno.test("probe-level terminationGracePeriodSeconds: liveness and startup only, at least 2 s", () => {
  const container: V1Container = {
    name: "c",
    livenessProbe: { terminationGracePeriodSeconds: 7 },
    startupProbe: { terminationGracePeriodSeconds: 0 },
    readinessProbe: { terminationGracePeriodSeconds: 9 },
  };
  assert.equal(probeKillGraceSeconds(container, "Liveness"), 7);
  assert.equal(probeKillGraceSeconds(container, "Startup"), 2);
  assert.equal(probeKillGraceSeconds(container, "Readiness"), undefined);
  assert.equal(probeKillGraceSeconds({ name: "c", livenessProbe: {} }, "Liveness"), undefined);
});
