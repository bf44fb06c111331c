import assert from "node:assert/strict";
import {
  derivedBootID,
  gatherMachineFacts,
  parseLoadavgTasks,
  parseOsReleasePrettyName,
} from "./machine.ts";

Deno.test("parseOsReleasePrettyName handles quoting and absence", () => {
  assert.equal(
    parseOsReleasePrettyName('NAME="Debian"\nPRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\n'),
    "Debian GNU/Linux 12 (bookworm)",
  );
  assert.equal(parseOsReleasePrettyName("PRETTY_NAME='Arch Linux'"), "Arch Linux");
  assert.equal(parseOsReleasePrettyName("PRETTY_NAME=Plain"), "Plain");
  assert.equal(parseOsReleasePrettyName('PRETTY_NAME="say \\"hi\\""'), 'say "hi"');
  assert.equal(parseOsReleasePrettyName("ID=debian"), "Linux");
});

Deno.test("parseLoadavgTasks reads the task total", () => {
  assert.equal(parseLoadavgTasks("0.00 0.01 0.05 1/123 4567\n"), 123);
  assert.equal(parseLoadavgTasks("garbage"), 0);
});

Deno.test("gatherMachineFacts reads this machine", async () => {
  const facts = await gatherMachineFacts();
  console.log(facts);
  assert.ok(facts.cpus >= 1);
  assert.ok(facts.memoryTotalBytes > facts.memoryAvailableBytes && facts.memoryAvailableBytes > 0);
  assert.ok(facts.fsTotalBytes >= facts.fsAvailableBytes && facts.fsAvailableBytes > 0);
  assert.ok(facts.processes > 0 && facts.processLimit > facts.processes);
  assert.equal(facts.kernelVersion, Deno.osRelease());
  assert.equal(facts.bootID, (await Deno.readTextFile("/proc/sys/kernel/random/boot_id")).trim());
  assert.ok(["amd64", "arm64"].includes(facts.arch));
});

Deno.test("derivedBootID is a UUID fixed by machine id and systemd's start", async () => {
  const a = await derivedBootID(
    "0123456789abcdef0123456789abcdef",
    "Wed 2026-11-25 11:00:00 UTC\n1",
  );
  assert.match(a, /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
  assert.equal(
    await derivedBootID("0123456789abcdef0123456789abcdef", "Wed 2026-11-25 11:00:00 UTC\n1"),
    a,
  );
  assert.notEqual(
    await derivedBootID("0123456789abcdef0123456789abcdef", "Wed 2026-11-25 12:00:00 UTC\n1"),
    a,
  );
  assert.notEqual(
    await derivedBootID("fedcba9876543210fedcba9876543210", "Wed 2026-11-25 11:00:00 UTC\n1"),
    a,
  );
});
