import assert from "node:assert/strict";
import type { V1Pod } from "@kubernetes/client-node";
import { activeDeadlineRemainingMs, DEADLINE_EXCEEDED } from "./deadline.ts";

const pod = (activeDeadlineSeconds?: number): V1Pod => ({
  spec: { activeDeadlineSeconds, containers: [{ name: "c" }] },
});
const start = new Date("2026-01-01T00:00:00Z");

Deno.test("active deadline: counted from startTime", () => {
  const t = start.getTime();
  assert.equal(
    activeDeadlineRemainingMs(pod(30), { status: { startTime: start }, now: t + 10_000 }),
    20_000,
  );
  assert.equal(
    activeDeadlineRemainingMs(pod(30), { status: { startTime: start }, now: t + 30_000 }),
    0,
  );
  assert.equal(
    activeDeadlineRemainingMs(pod(30), { status: { startTime: start }, now: t + 45_000 }),
    -15_000,
  );
  // As read from the API, before client-side conversion.
  const fromJSON = { startTime: "2026-01-01T00:00:00Z" as unknown as Date, phase: "Pending" };
  assert.equal(activeDeadlineRemainingMs(pod(5), { status: fromJSON, now: t + 1000 }), 4000);
});

Deno.test("active deadline: none without a deadline or a startTime, or once ended otherwise", () => {
  const t = start.getTime();
  assert.equal(
    activeDeadlineRemainingMs(pod(), { status: { startTime: start }, now: t }),
    undefined,
  );
  assert.equal(activeDeadlineRemainingMs(pod(5), { status: undefined, now: t }), undefined);
  assert.equal(activeDeadlineRemainingMs(pod(5), { status: {}, now: t }), undefined);
  const succeeded = { phase: "Succeeded", startTime: start };
  assert.equal(
    activeDeadlineRemainingMs(pod(5), { status: succeeded, now: t + 60_000 }),
    undefined,
  );
  const evicted = { phase: "Failed", reason: "Evicted", startTime: start };
  assert.equal(activeDeadlineRemainingMs(pod(5), { status: evicted, now: t + 60_000 }), undefined);
  // Ended by the deadline: stays past it, whatever the clock says (restart of systemk).
  const ended = { phase: "Failed", reason: DEADLINE_EXCEEDED.reason, startTime: start };
  assert.equal(activeDeadlineRemainingMs(pod(5), { status: ended, now: t }), 0);
});
