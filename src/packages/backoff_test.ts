import assert from "node:assert/strict";
import { ImagePullTracker, pullBackoffDelay } from "./backoff.ts";

Deno.test("pullBackoffDelay doubles from 10 s to a 5 min cap", () => {
  const delays = [1, 2, 3, 4, 5, 6, 7, 100].map(pullBackoffDelay);
  assert.deepEqual(delays, [10e3, 20e3, 40e3, 80e3, 160e3, 300e3, 300e3, 300e3]);
});

Deno.test("tracker: Pulling → ContainerCreating → Pulled", () => {
  const t = new ImagePullTracker();
  assert.equal(t.waitingReason("uptimed"), undefined);
  const d = t.begin("uptimed", 0);
  assert.deepEqual(d, {
    action: "pull",
    event: { type: "Normal", reason: "Pulling", message: 'Installing "uptimed"' },
  });
  assert.equal(t.waitingReason("uptimed"), "ContainerCreating");
  assert.deepEqual(t.succeeded("uptimed", { installed: true, durationMs: 3210 }), {
    type: "Normal",
    reason: "Pulled",
    message: 'Successfully installed "uptimed" in 3.2s',
  });
  assert.equal(t.waitingReason("uptimed"), undefined);
  assert.match(t.succeeded("uptimed", { installed: false, durationMs: 5 }).message, /already/);
});

Deno.test("tracker: failure → ErrImagePull, then ImagePullBackOff with growing delays", () => {
  const t = new ImagePullTracker();
  const img = "nope";
  let now = 0;
  const delays: number[] = [];
  for (let attempt = 0; attempt < 8; attempt++) {
    assert.equal(t.begin(img, now).action, "pull");
    const failed = t.failed(img, { now, message: "E: Unable to locate package nope" });
    assert.equal(failed.type, "Warning");
    assert.equal(failed.reason, "Failed");
    assert.match(failed.message, /Unable to locate package nope/);
    assert.equal(t.waitingReason(img), "ErrImagePull");
    assert.equal(t.lastError(img), "E: Unable to locate package nope");
    const wait = t.begin(img, now + 1);
    assert.equal(wait.action, "wait");
    if (wait.action !== "wait") throw new Error("unreachable");
    assert.equal(wait.event.reason, "BackOff");
    assert.equal(t.waitingReason(img), "ImagePullBackOff");
    delays.push(wait.retryInMs + 1);
    now += wait.retryInMs + 1; // exactly when the retry is due
  }
  assert.deepEqual(delays, [10e3, 20e3, 40e3, 80e3, 160e3, 300e3, 300e3, 300e3]);
});

Deno.test("tracker: success resets the delays; so does a failure long after the last", () => {
  const t = new ImagePullTracker();
  t.begin("a", 0);
  t.failed("a", { now: 0, message: "x" });
  t.begin("a", 10e3);
  t.failed("a", { now: 10e3, message: "x" });
  const second = t.begin("a", 10e3 + 1);
  assert.equal(second.action === "wait" && second.retryInMs, 20e3 - 1);
  t.begin("a", 30e3);
  t.succeeded("a", { installed: true, durationMs: 1 });
  t.begin("a", 31e3);
  t.failed("a", { now: 31e3, message: "x" });
  const afterSuccess = t.begin("a", 31e3);
  assert.equal(afterSuccess.action === "wait" && afterSuccess.retryInMs, 10e3);

  t.begin("b", 0);
  t.failed("b", { now: 0, message: "x" });
  t.begin("b", 10e3);
  t.failed("b", { now: 10e3 + 600e3, message: "x" }); // the install itself took 10 minutes
  const late = t.begin("b", 10e3 + 600e3);
  assert.equal(late.action === "wait" && late.retryInMs, 10e3);
});

Deno.test("tracker: images are independent", () => {
  const t = new ImagePullTracker();
  t.begin("a", 0);
  t.failed("a", { now: 0, message: "x" });
  assert.equal(t.begin("b", 0).action, "pull");
  assert.equal(t.waitingReason("b"), "ContainerCreating");
  assert.equal(t.waitingReason("a"), "ErrImagePull");
});
