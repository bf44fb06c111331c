import assert from "node:assert/strict";
import { backoffDelay, repeat, sleep } from "./_timer.ts";

Deno.test("backoffDelay doubles and caps", () => {
  assert.deepEqual([0, 1, 2, 3, 20].map((a) => backoffDelay(a, { baseMs: 100, maxMs: 1000 })), [
    100,
    200,
    400,
    800,
    1000,
  ]);
});

Deno.test("sleep ends early on abort", async () => {
  const abort = new AbortController();
  const done = sleep(60_000, abort.signal);
  abort.abort();
  await done; // would hang the test (and leak a timer) if abort were ignored
});

Deno.test("repeat keeps going after errors and stops on abort", async () => {
  const abort = new AbortController();
  let ticks = 0;
  const errors: unknown[] = [];
  const loop = repeat(() => {
    ticks++;
    if (ticks === 2) return Promise.reject(new Error("tick 2"));
    if (ticks === 4) abort.abort();
    return Promise.resolve();
  }, { intervalMs: 1, signal: abort.signal, onError: (e) => errors.push(e) });
  await loop;
  assert.equal(ticks, 4);
  assert.equal(errors.length, 1);
});
