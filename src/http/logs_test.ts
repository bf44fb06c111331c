import assert from "node:assert/strict";
import {
  formatLogLine,
  formatTimestamp,
  journalctlArgs,
  LogOptionsError,
  parseJournalLine,
  parseLogOptions,
  parseRFC3339Micros,
} from "./logs.ts";

const q = (s: string) => new URLSearchParams(s);

Deno.test("log options: kubectl's query parameters", () => {
  const now = 1_800_000_000_000_000n;
  const o = parseLogOptions(
    q("follow=true&previous=true&timestamps=true&tailLines=0&limitBytes=10&sinceSeconds=5"),
    now,
  );
  assert.deepEqual(o, {
    follow: true,
    previous: true,
    timestamps: true,
    tailLines: 0,
    limitBytes: 10,
    sinceMicros: now - 5_000_000n,
  });
  assert.deepEqual(parseLogOptions(q(""), now), {
    follow: false,
    previous: false,
    timestamps: false,
    tailLines: undefined,
    limitBytes: undefined,
  });
});

Deno.test("log options: bad values are 400s naming the parameter", () => {
  for (
    const [query, pattern] of [
      ["tailLines=-1", /tailLines/],
      ["tailLines=x", /tailLines/],
      ["limitBytes=0", /limitBytes/],
      ["follow=yes", /follow/],
      ["sinceSeconds=1&sinceTime=2026-11-25T11:00:00Z", /at most one/],
      ["sinceTime=yesterday", /RFC 3339/],
    ] as const
  ) {
    assert.throws(() => parseLogOptions(q(query), 0n), (e) => {
      assert.ok(e instanceof LogOptionsError);
      assert.match((e as Error).message, pattern);
      return true;
    });
  }
});

Deno.test("RFC 3339 in, µs out: fractions, offsets, nanoseconds cut", () => {
  assert.equal(parseRFC3339Micros("1970-01-01T00:00:01Z"), 1_000_000n);
  assert.equal(parseRFC3339Micros("1970-01-01T00:00:01.5Z"), 1_500_000n);
  assert.equal(parseRFC3339Micros("1970-01-01T00:00:01.123456789Z"), 1_123_456n);
  assert.equal(parseRFC3339Micros("1970-01-01T01:00:01+01:00"), 1_000_000n);
});

Deno.test("timestamps: nine fraction digits in UTC, as the kubelet writes them", () => {
  assert.equal(formatTimestamp(1_795_606_131_077_135n), "2026-11-25T11:28:51.077135000Z");
  assert.equal(formatTimestamp(1_000_000n), "1970-01-01T00:00:01.000000000Z");
  // Round trip through the parser kubectl's --since-time goes through.
  const t = 1_795_606_131_000_007n;
  assert.equal(parseRFC3339Micros(formatTimestamp(t)), t);
});

Deno.test("journalctl arguments: this run (stream) only, since as @seconds, all lines unless tailed", () => {
  const sel = { unit: "systemk.default.web.nginx.service", streamID: "abc" };
  const base = { follow: false, previous: false, timestamps: false };
  const args = journalctlArgs(sel, { ...base, sinceMicros: 1_700_000_000_250_000n });
  assert.ok(args.includes("--since=@1700000000.250000"));
  assert.ok(args.includes("--lines=all"));
  assert.ok(args.includes("_SYSTEMD_UNIT=systemk.default.web.nginx.service"));
  assert.ok(args.includes("_STREAM_ID=abc"));
  assert.ok(!args.includes("-u"), "-u would add systemd's own messages about the unit");
  assert.ok(!args.includes("--follow"));
  const followed = journalctlArgs(sel, { ...base, follow: true, tailLines: 2 });
  assert.ok(followed.includes("--follow"));
  assert.ok(followed.includes("--lines=2"));
});

Deno.test("journal entries: text and byte-array messages, lines with and without time", () => {
  const text = parseJournalLine(
    '{"__REALTIME_TIMESTAMP":"1000001","MESSAGE":"hello","_STREAM_ID":"ab"}',
  )!;
  assert.equal(text.streamID, "ab");
  assert.equal(new TextDecoder().decode(formatLogLine(text, false)), "hello\n");
  assert.equal(
    new TextDecoder().decode(formatLogLine(text, true)),
    "1970-01-01T00:00:01.000001000Z hello\n",
  );
  const bytes = parseJournalLine('{"__REALTIME_TIMESTAMP":"1","MESSAGE":[120,255]}')!;
  assert.deepEqual([...formatLogLine(bytes, false)], [120, 255, 10]);
  assert.equal(parseJournalLine("-- No entries --"), undefined);
});
