import assert from "node:assert/strict";
import { gatherMachineFacts, parseLoadavgTasks, parseOsReleasePrettyName } from "./machine.ts";

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
