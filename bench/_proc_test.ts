import assert from "node:assert/strict";
import { measureFootprint, parseCpuTicks, parseRssKiB } from "./_proc.ts";

Deno.test("VmRSS and utime+stime are read from /proc texts", () => {
  assert.equal(parseRssKiB("Name:\tdeno\nVmRSS:\t  123456 kB\nVmSwap:\t0 kB\n"), 123456);
  assert.throws(() => parseRssKiB("Name:\tzombie\n"));
  // A command name with spaces and a parenthesis must not shift the fields.
  const stat = "42 (a b) c) S 1 42 42 0 -1 4194560 100 0 0 0 250 30 0 0 20 0 1 0 5 0 0";
  assert.equal(parseCpuTicks(stat), 280);
});

Deno.test("the footprint of this very process is plausible", async () => {
  const f = await measureFootprint(`/proc/${Deno.pid}`, 300);
  assert.ok(f.rssMiB > 10 && f.rssMaxMiB >= f.rssMiB, JSON.stringify(f));
  assert.ok(f.cpuPercent >= 0);
});
