import assert from "node:assert/strict";
import { chooseRun, followUntilRunEnds, whenRunWrites } from "./journal.ts";

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

Deno.test("follow ends once the run is over and no line comes for a while", async () => {
  let cancelled = false;
  let sent = 0;
  // Three lines, then silence forever: what journalctl --follow gives after the run exits.
  const body = new ReadableStream<Uint8Array>({
    async pull(controller) {
      if (sent === 3) return await new Promise(() => {});
      controller.enqueue(new TextEncoder().encode(`line ${++sent}\n`));
    },
    cancel() {
      cancelled = true;
    },
  }, { highWaterMark: 0 });
  let over = false;
  const followed = followUntilRunEnds(body, () => Promise.resolve(over), {
    pollMs: 10,
    idleMs: 50,
  });
  const reader = followed.getReader();
  const decode = (v?: Uint8Array) => new TextDecoder().decode(v);
  assert.equal(decode((await reader.read()).value), "line 1\n");
  assert.equal(decode((await reader.read()).value), "line 2\n");
  assert.equal(decode((await reader.read()).value), "line 3\n");
  // Still running: a quiet log keeps the follow open.
  const pending = reader.read();
  const early = await Promise.race([pending, new Promise((r) => setTimeout(() => r("open"), 200))]);
  assert.equal(early, "open");
  over = true;
  assert.deepEqual(await pending, { done: true, value: undefined });
  assert.equal(cancelled, true, "journalctl is stopped");
});

Deno.test("a followed run that has not written yet: waits for its stream, or ends empty", async () => {
  const text = (s: ReadableStream<Uint8Array>) => new Response(s).text();
  let asked = 0;
  const lines = (id: string) => new Response(`${id} line\n`).body!;
  const appears = whenRunWrites(
    () => Promise.resolve(++asked < 3 ? null : "s1"),
    lines,
    { ended: () => Promise.resolve(false), pollMs: 5 },
  );
  assert.equal(await text(appears), "s1 line\n");
  assert.equal(asked, 3);
  const never = whenRunWrites(() => Promise.resolve(null), lines, {
    ended: () => Promise.resolve(true),
    pollMs: 5,
  });
  assert.equal(await text(never), "");
  // Lines written just before the end are found by the last look.
  const late = whenRunWrites(() => Promise.resolve("s2"), lines, {
    ended: () => Promise.resolve(true),
    pollMs: 5,
  });
  assert.equal(await text(late), "s2 line\n");
});
