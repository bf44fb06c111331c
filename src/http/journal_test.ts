import assert from "node:assert/strict";
import { chooseRun } from "./journal.ts";

/** Entries newest first: [time, stream]. */
async function* entries(list: [number, string | undefined][]) {
  for (const [t, s] of list) yield { realtimeMicros: BigInt(t), streamID: s };
}

const journal: [number, string | undefined][] = [
  [50, "c"],
  [45, "c"],
  [40, undefined], // not from a stream (syslog): no run
  [30, "b"],
  [20, "a"],
];

Deno.test("chooseRun: current by systemd's start time, previous is the run before it", async () => {
  const run = (startedMicros: number, previous: boolean, list = journal) =>
    chooseRun(entries(list), { startedMicros: BigInt(startedMicros), previous });
  assert.equal(await run(44, false), "c");
  assert.equal(await run(44, true), "b");
  // Restarted at 60, nothing written yet: an empty current run; the previous is c.
  assert.equal(await run(60, false), null);
  assert.equal(await run(60, true), "c");
  // Unknown start (unit gone): the newest run is current.
  assert.equal(await run(0, false), "c");
  assert.equal(await run(0, true), "b");
  // Only one run: no previous.
  assert.equal(await run(15, true, [[20, "a"]]), undefined);
  assert.equal(await run(0, false, []), undefined, "never wrote, never started");
  assert.equal(await run(5, false, []), null, "started, wrote nothing");
});
