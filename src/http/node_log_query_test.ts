import assert from "node:assert/strict";
import {
  directoryListing,
  hasOptions,
  logPathSegments,
  logsToJournal,
  nodeLogJournalctlArgs,
  NodeLogQueryError,
  parseNodeLogQuery,
  serviceLogFiles,
  sniffContentType,
} from "./node_log_query.ts";

const parse = (query: string) => parseNodeLogQuery(new URLSearchParams(query));
const refused = (query: string, message: RegExp) =>
  assert.throws(() => parse(query), (e: Error) => {
    assert.ok(e instanceof NodeLogQueryError, `${query}: ${e}`);
    assert.match(e.message, message, query);
    return true;
  });

Deno.test("parseNodeLogQuery: units, a file, every option", () => {
  assert.equal(parse(""), undefined, "no query: /logs/ serves files");
  assert.equal(parse("other=1"), undefined, "unknown parameters are ignored");
  const q = parse(
    "query=ssh&query=systemk.default.web.app.service&sinceTime=2026-01-01T00:00:00Z" +
      "&untilTime=2026-01-01T01:00:00.5%2B01:00&tailLines=5&boot=-1&pattern=err(or)?",
  )!;
  assert.deepEqual(q.services, ["ssh", "systemk.default.web.app.service"]);
  assert.deepEqual(q.files, []);
  assert.equal(q.sinceMicros, BigInt(Date.parse("2026-01-01T00:00:00Z")) * 1000n);
  assert.equal(q.untilMicros, BigInt(Date.parse("2026-01-01T00:00:00.5Z")) * 1000n);
  assert.equal(q.tailLines, 5);
  assert.equal(q.boot, -1);
  assert.equal(q.pattern, "err(or)?");
  assert.equal(hasOptions(q), true);
  const file = parse("query=/apt/history.log")!;
  assert.deepEqual(file.files, ["/apt/history.log"]);
  assert.equal(hasOptions(file), false);
  assert.deepEqual(parse("query=getty@tty1.service&query=a:b&tailLines=0")!.services, [
    "getty@tty1.service",
    "a:b",
  ]);
});

Deno.test("parseNodeLogQuery refuses what the kubelet refuses, naming the parameter", () => {
  refused("query=", /^query: Invalid value: \[""\]: query cannot be empty$/);
  refused("query=%20%20", /query cannot be empty/);
  refused("tailLines=5", /^query: Required value: cannot be empty with options$/);
  refused("query=ssh;reboot", /query: Invalid value: "ssh;reboot": a unit name may only have/);
  refused("query=ssh%20-f", /a unit name may only have letters, digits/);
  refused("query=--output%3Djson", /a unit name may only have/);
  refused(`query=${"a".repeat(257)}`, /must be no more than 256 characters/);
  refused("query=a&query=b&query=c&query=d&query=e", /query: Too many: 5: must have at most 4/);
  refused("query=ssh&query=/syslog", /cannot specify a file and service/);
  refused("query=/a.log&query=/b.log", /cannot specify more than one file/);
  refused("query=/a.log&tailLines=3", /cannot specify file with options/);
  refused("query=/apt/../../etc/shadow", /query: Invalid value: .*has a "\.\." segment/);
  refused("query=ssh&sinceTime=yesterday", /^sinceTime: Invalid value: "yesterday": invalid time/);
  refused("query=ssh&untilTime=2026-01-01", /^untilTime: Invalid value: .*RFC 3339/);
  refused(
    "query=ssh&sinceTime=2026-01-02T00:00:00Z&untilTime=2026-01-01T00:00:00Z",
    /untilTime: Invalid value: must be after `sinceTime`/,
  );
  refused("query=ssh&tailLines=100001", /tailLines: Invalid value: 100001: must be between 0/);
  refused("query=ssh&tailLines=-1", /must be between 0 and 100000, inclusive/);
  refused("query=ssh&tailLines=ten", /^tailLines: Invalid value: "ten": must be an integer$/);
  refused("query=ssh&boot=1", /^boot: Invalid value: 1: must be less than 1$/);
  refused("query=ssh&boot=last", /boot: Invalid value: "last": must be an integer/);
  refused("query=ssh&pattern=a%00b", /pattern: .*must not contain NUL/);
  // Several problems are all named.
  refused("query=a%20b&tailLines=-1&boot=2", /^\[query: .*, boot: .*, tailLines: .*\]$/);
});

Deno.test("nodeLogJournalctlArgs: the kubelet's command line, values attached", () => {
  const q = parse(
    "query=ssh&query=cron&sinceTime=2026-01-01T00:00:00Z&untilTime=2026-01-01T00:00:01Z" +
      "&tailLines=5&boot=-1&pattern=-f",
  )!;
  assert.deepEqual(nodeLogJournalctlArgs(q, q.services), [
    "--utc",
    "--no-pager",
    `--since=@${Date.parse("2026-01-01T00:00:00Z") / 1000}.000000`,
    `--until=@${Date.parse("2026-01-01T00:00:01Z") / 1000}.000000`,
    "--pager-end",
    "--lines=5",
    "--unit=ssh",
    "--unit=cron",
    "--grep=-f",
    "--boot=-1",
    "--output=short-precise",
  ]);
  assert.deepEqual(nodeLogJournalctlArgs(parse("query=ssh")!, ["ssh"]), [
    "--utc",
    "--no-pager",
    "--unit=ssh",
    "--output=short-precise",
  ]);
});

Deno.test("logsToJournal and serviceLogFiles: the kubelet's fallback to /var/log", () => {
  const units = new Set(["ssh.service", "systemk.default.web.app.service"]);
  assert.equal(logsToJournal("ssh", units), true);
  assert.equal(logsToJournal("ssh.service", units), true);
  assert.equal(logsToJournal("systemk.default.web.app.service", units), true);
  assert.equal(logsToJournal("nginx", units), false);
  assert.deepEqual(serviceLogFiles("nginx"), [["nginx"], ["nginx.log"], ["nginx", "nginx.log"]]);
});

Deno.test("logPathSegments: under the log directory only", () => {
  assert.deepEqual(logPathSegments(""), []);
  assert.deepEqual(logPathSegments("/"), []);
  assert.deepEqual(logPathSegments("/apt/./history.log"), ["apt", "history.log"]);
  assert.deepEqual(logPathSegments("a..b/..c"), ["a..b", "..c"]);
  for (const path of ["..", "/../etc/shadow", "apt/../../x", "a/..", "a\0b"]) {
    assert.throws(() => logPathSegments(path), NodeLogQueryError, path);
  }
});

Deno.test("directoryListing: Go's FileServer listing, sorted, escaped", () => {
  assert.equal(
    directoryListing([
      { name: "syslog", isDirectory: false },
      { name: "apt", isDirectory: true },
      { name: `a<b>&"c'.log`, isDirectory: false },
      { name: "with space", isDirectory: false },
    ]),
    `<!doctype html>\n<meta name="viewport" content="width=device-width">\n<pre>\n` +
      `<a href="a%3Cb%3E%26%22c'.log">a&lt;b&gt;&amp;&#34;c&#39;.log</a>\n` +
      `<a href="apt/">apt/</a>\n` +
      `<a href="syslog">syslog</a>\n` +
      `<a href="with%20space">with space</a>\n` +
      `</pre>\n`,
  );
});

Deno.test("sniffContentType tells text logs from binary files", () => {
  const enc = new TextEncoder();
  assert.equal(sniffContentType(enc.encode("line 1\nline 2\n")), "text/plain; charset=utf-8");
  assert.equal(sniffContentType(new Uint8Array()), "text/plain; charset=utf-8");
  // A character cut at the end of the sample.
  assert.equal(sniffContentType(enc.encode("é").subarray(0, 1)), "text/plain; charset=utf-8");
  assert.equal(sniffContentType(Uint8Array.of(0x4c, 0x50, 0, 1)), "application/octet-stream");
  assert.equal(sniffContentType(Uint8Array.of(0xff, 0xfe, 0x41)), "application/octet-stream");
});
