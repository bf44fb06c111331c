import assert from "node:assert/strict";
import { oomKilledUnit } from "./oom.ts";

// As logged by kernel 6.18 on these machines (a unit of a test systemd, cgroup v1 memory).
const RECORD =
  "3,4711,2721672240,-;oom-kill:constraint=CONSTRAINT_MEMCG,nodemask=(null),cpuset=t,mems_allowed=0," +
  "oom_memcg=/process_api/b54b/systemk-test-e15a/system.slice/systemk.default.web.app.service," +
  "task_memcg=/process_api/b54b/systemk-test-e15a/system.slice/systemk.default.web.app.service," +
  "task=perl,pid=30139,uid=0\n SUBSYSTEM=x\n";

Deno.test("an OOM kill record names the killed task's systemk unit", () => {
  assert.equal(oomKilledUnit(RECORD), "systemk.default.web.app.service");
  assert.equal(
    oomKilledUnit(
      "oom-kill:constraint=CONSTRAINT_MEMCG,oom_memcg=/system.slice,task_memcg=/system.slice/" +
        "systemk.default.web.side.service,task=sh,pid=1,uid=0",
    ),
    "systemk.default.web.side.service",
    "the task's cgroup, not the one whose limit was hit",
  );
});

Deno.test("other kernel records and other units are not OOM kills of systemk units", () => {
  assert.equal(
    oomKilledUnit(RECORD.replaceAll("systemk.default.web.app", "postgresql")),
    undefined,
  );
  assert.equal(
    oomKilledUnit(
      "6,4712,2721672253,-;Memory cgroup out of memory: Killed process 30139 (perl) " +
        "total-vm:30312kB, anon-rss:19200kB",
    ),
    undefined,
  );
  assert.equal(oomKilledUnit("6,1,1,-;systemk.default.web.app.service: task_memcg=x"), undefined);
  assert.equal(oomKilledUnit(""), undefined);
});
