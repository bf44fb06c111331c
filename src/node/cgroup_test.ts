import assert from "node:assert/strict";
import { cpuStatPaths, parseCPUUsage, readCPUUsage } from "./cgroup.ts";

Deno.test("cpuStatPaths: the hybrid host's v2 mount, then a v2 host's", () => {
  assert.deepEqual(cpuStatPaths("/systemk.slice/a.service"), [
    "/sys/fs/cgroup/unified/systemk.slice/a.service/cpu.stat",
    "/sys/fs/cgroup/systemk.slice/a.service/cpu.stat",
  ]);
});

Deno.test("parseCPUUsage: grep -H lines of the asked cgroups only, µs to ns", () => {
  const cgroups = [
    "/systemk.slice/systemk-podu.slice",
    "/systemk.slice/systemk-podu.slice/c.service",
  ];
  const output = [
    "/sys/fs/cgroup/unified/systemk.slice/systemk-podu.slice/cpu.stat:usage_usec 1234",
    "/sys/fs/cgroup/systemk.slice/systemk-podu.slice/c.service/cpu.stat:usage_usec 5",
    "/sys/fs/cgroup/unified/other.slice/cpu.stat:usage_usec 99",
    "/sys/fs/cgroup/unified/systemk.slice/cpu.stat:usage_usec notanumber",
    "garbage",
    "",
  ].join("\n");
  assert.deepEqual(
    parseCPUUsage(cgroups, output),
    new Map([[cgroups[0], 1_234_000], [cgroups[1], 5_000]]),
  );
});

Deno.test("readCPUUsage: this host's root cgroup counts CPU time; missing cgroups are left out", async () => {
  // The root cgroup's cpu.stat exists on every v2 mount (hybrid or not).
  const usage = await readCPUUsage(["", "/no/such/cgroup"]);
  assert.ok((usage.get("") ?? 0) > 0, JSON.stringify([...usage]));
  assert.equal(usage.has("/no/such/cgroup"), false);
  assert.deepEqual(await readCPUUsage([]), new Map());
});
