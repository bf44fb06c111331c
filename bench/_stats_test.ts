import assert from "node:assert/strict";
import { median, percentile, summarize } from "./_stats.ts";

Deno.test("nearest-rank percentiles of 1..100", () => {
  const values = Array.from({ length: 100 }, (_, i) => 100 - i);
  const s = summarize(values);
  assert.deepEqual([s.p50, s.p90, s.p99, s.min, s.max, s.n], [50, 90, 99, 1, 100, 100]);
  assert.equal(s.mean, 50.5);
});

Deno.test("with few samples p99 is the maximum and p50 the lower middle", () => {
  assert.equal(percentile([1, 2, 3, 4, 5], 0.99), 5);
  assert.equal(median([4, 1, 3, 2]), 2);
  assert.throws(() => percentile([], 0.5));
});
