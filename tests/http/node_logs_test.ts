/**
 * `/logs/` against a real journald and a real log directory: the node log query's options as
 * `journalctl` applies them, its refusals, the fallback to log files, and the file server's
 * listings and files — with every way out of the directory (`..`, symlinks, a swapped
 * directory) refused.
 */
import assert from "node:assert/strict";
import { bootTestSystemd } from "../harness/systemd.ts";
import { NodeLogs } from "../../src/http/node_logs.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };
const UNIT = "nlq-demo";

/** Status, body and media type of an answer. */
async function answer(response: Promise<Response>) {
  const r = await response;
  return {
    status: r.status,
    body: await r.text(),
    type: r.headers.get("content-type"),
    location: r.headers.get("location"),
  };
}

/** The messages of `short-precise` lines (`Mon DD HH:MM:SS.ffffff host unit[pid]: message`). */
function messages(body: string): string[] {
  return body.trimEnd().split("\n").map((l) => l.replace(/^.*?\]: /, ""));
}

Deno.test(
  "node logs: the query from journald, its refusals, files under the log directory only",
  opts,
  async (t) => {
    const system = await bootTestSystemd({});
    const dir = await Deno.makeTempDir({ prefix: "systemk-node-logs-" });
    const outside = await Deno.makeTempDir({ prefix: "systemk-outside-" });
    // The host's journalctl reads the test system's journal files directly.
    const journalctl = ["journalctl", `--root=${system.root}`];
    const logs = new NodeLogs({ query: true, logDir: dir, journalctl });
    const serve = (path: string, query = "") =>
      answer(logs.serve(path, new URLSearchParams(query)));
    const run = async (unit: string, script: string) => {
      const out = await system.exec(
        ["systemd-run", `--unit=${unit}`, "--collect", "--wait", "/bin/bash", "-c", script],
      );
      assert.equal(out.code, 0, out.stderr);
    };
    try {
      await run(UNIT, "echo early; echo 'ERROR early failure'");
      // The next whole second: the cut between the two runs for sinceTime/untilTime.
      await new Promise((r) => setTimeout(r, 1000 - (Date.now() % 1000) + 20));
      const cut = new Date(Math.floor(Date.now() / 1000) * 1000);
      await run(UNIT, "for i in $(seq 1 20); do echo line $i; done; echo 'ERROR boom'; echo done");
      await Deno.writeTextFile(`${dir}/app.log`, "app line 1\napp line 2\n");
      await Deno.mkdir(`${dir}/sub`);
      await Deno.writeTextFile(`${dir}/sub/x.log`, "x\n");
      await Deno.writeTextFile(`${dir}/cron.log`, "cron from its file\n");
      await Deno.writeTextFile(`${outside}/secret`, "secret\n");
      await Deno.symlink("sub/x.log", `${dir}/current.log`);
      await Deno.symlink(`${outside}/secret`, `${dir}/evil.log`);
      await Deno.symlink(outside, `${dir}/sub/out`);
      await Deno.symlink("../..", `${dir}/sub/up`);
      await Deno.symlink("/", `${dir}/sub/root`);

      await t.step("query=<unit>&tailLines: the unit's last lines", async () => {
        const r = await serve("/", `query=${UNIT}&tailLines=5`);
        assert.equal(r.status, 200, r.body);
        assert.equal(r.type, "text/plain; charset=utf-8");
        assert.deepEqual(messages(r.body), ["line 18", "line 19", "line 20", "ERROR boom", "done"]);
        assert.match(r.body, /^\w{3} \d\d \d\d:\d\d:\d\d\.\d{6} \S+ \S+\[\d+\]: /m);
        assert.equal(
          (await serve("", `query=${UNIT}.service&tailLines=1`)).body.includes("done"),
          true,
        );
      });

      await t.step("pattern filters; a pattern PCRE2 refuses is a 400 naming it", async () => {
        const r = await serve("/", `query=${UNIT}&pattern=ERROR`);
        assert.deepEqual(messages(r.body), ["ERROR early failure", "ERROR boom"]);
        const bad = await serve("/", `query=${UNIT}&pattern=(`);
        assert.equal(bad.status, 400);
        assert.match(bad.body, /^journalctl: Bad pattern "\(": missing closing parenthesis/);
      });

      await t.step("sinceTime and untilTime bound the entries", async () => {
        const since = await serve("/", `query=${UNIT}&sinceTime=${cut.toISOString()}`);
        assert.deepEqual(messages(since.body).filter((m) => /early|done/.test(m)), ["done"]);
        const until = new Date(cut.getTime() - 1).toISOString();
        const before = await serve("/", `query=${UNIT}&untilTime=${until}`);
        assert.deepEqual(
          messages(before.body).filter((m) => /early|line|done/.test(m)),
          ["early", "ERROR early failure"],
        );
      });

      await t.step(
        "boot: this boot's entries; an earlier boot the journal lacks is a 400",
        async () => {
          const now = await serve("/", `query=${UNIT}&boot=0&tailLines=1`);
          assert.deepEqual(messages(now.body), ["done"]);
          const earlier = await serve("/", `query=${UNIT}&boot=-1`);
          assert.equal(earlier.status, 400);
          assert.match(earlier.body, /^journalctl: .*boot/i);
          assert.equal((await serve("/", `query=${UNIT}&boot=1`)).status, 400);
        },
      );

      await t.step("units without journal entries: their log file, or a clear answer", async () => {
        const file = await serve("/", "query=cron");
        assert.equal(file.status, 200);
        assert.equal(file.body, "cron from its file\n");
        const both = await serve("/", `query=${UNIT}&query=cron`);
        assert.match(both.body, /: done\n(.|\n)*cron from its file\n$/);
        const mixed = await serve("/", `query=${UNIT}&query=nothing`);
        assert.match(mixed.body, /\nlog not found for nothing\n$/);
        const options = await serve("/", "query=cron&tailLines=1");
        assert.equal(options.status, 400);
        assert.match(options.body, /resolved to log files for \[cron\]/);
        const none = await serve("/", "query=nothing");
        assert.equal(none.status, 404);
        assert.match(none.body, /no journal entries of nothing, and no log file/);
      });

      await t.step("invalid queries are refused before journalctl runs", async () => {
        for (
          const [query, message] of [
            ["query=ssh%3Breboot", /a unit name may only have/],
            ["query=ssh&tailLines=100001", /tailLines: .*between 0 and 100000/],
            ["query=ssh&sinceTime=today", /sinceTime: .*RFC 3339/],
            ["tailLines=3", /query: Required value/],
          ] as const
        ) {
          const r = await serve("/", query);
          assert.equal(r.status, 400, query);
          assert.match(r.body, message, query);
        }
        const path = await serve("/app.log", `query=${UNIT}`);
        assert.equal(path.status, 400);
        assert.match(path.body, /path not allowed in query mode/);
      });

      await t.step("the file server: listing, files, redirect, query=<file>", async () => {
        const list = await serve("/");
        assert.equal(list.type, "text/html; charset=utf-8");
        assert.match(list.body, /<a href="app\.log">app\.log<\/a>\n/);
        assert.match(list.body, /<a href="sub\/">sub\/<\/a>\n/);
        assert.deepEqual(await serve("/app.log"), {
          status: 200,
          body: "app line 1\napp line 2\n",
          type: "text/plain; charset=utf-8",
          location: null,
        });
        assert.equal((await serve("/current.log")).body, "x\n", "a symlink inside is followed");
        assert.equal((await serve("/sub")).status, 301);
        assert.equal((await serve("/sub")).location, "sub/");
        assert.equal((await serve("")).location, "logs/");
        assert.match((await serve("/sub/")).body, /<a href="x\.log">x\.log<\/a>/);
        assert.equal((await serve("/", "query=/sub/x.log")).body, "x\n");
        assert.equal((await serve("/", "query=sub/x.log")).body, "x\n");
        assert.equal((await serve("/", "query=/sub/")).status, 400, "a directory by query");
        assert.equal((await serve("/missing.log")).status, 404);
      });

      await t.step(
        "no way out: '..' in any spelling, symlinks to files or directories outside",
        async () => {
          for (
            const path of [
              "/..%2F..%2Fetc%2Fpasswd",
              "/sub/..%2F..%2F..%2Fetc%2Fpasswd",
              "/%2e%2e/%2e%2e/etc/passwd",
            ]
          ) {
            const r = await serve(path);
            assert.equal(r.status, 400, path);
            assert.match(r.body, /"\.\." segment/, path);
          }
          for (
            const path of [
              "/evil.log",
              "/sub/out/secret",
              "/sub/out/",
              "/sub/up/",
              "/sub/root/etc/passwd",
            ]
          ) {
            const r = await serve(path);
            assert.equal(r.status, 403, path);
            assert.match(r.body, /leads outside/, path);
            assert.doesNotMatch(r.body, /secret\n/, path);
          }
          const byQuery = await serve("/", "query=/evil.log");
          assert.equal(byQuery.status, 403);
          const dotdot = await serve("/", "query=../../etc/passwd");
          assert.equal(dotdot.status, 400);
          // A unit name that would be a path through the fallback is no unit name.
          assert.equal((await serve("/", "query=..")).status, 404);
        },
      );

      await t.step(
        "only regular files: a FIFO is refused, not opened (it would block)",
        async () => {
          const mkfifo = await new Deno.Command("mkfifo", { args: [`${dir}/pipe`] }).output();
          assert.ok(mkfifo.success);
          const r = await serve("/pipe");
          assert.equal(r.status, 403);
          assert.match(r.body, /not a regular file/);
        },
      );

      await t.step("binary files are served as such", async () => {
        await Deno.writeFile(`${dir}/wtmp`, Uint8Array.of(7, 0, 0, 0, 1));
        const r = await logs.serve("/wtmp", new URLSearchParams());
        assert.equal(r.headers.get("content-type"), "application/octet-stream");
        assert.deepEqual(new Uint8Array(await r.arrayBuffer()), Uint8Array.of(7, 0, 0, 0, 1));
      });

      await t.step(
        "without --enable-system-log-query the query is ignored: files only",
        async () => {
          const plain = new NodeLogs({ query: false, logDir: dir, journalctl });
          const r = await answer(
            plain.serve("/", new URLSearchParams(`query=${UNIT}&tailLines=1`)),
          );
          assert.equal(r.status, 200);
          assert.match(r.body, /^<!doctype html>/);
          assert.match(r.body, /app\.log/);
        },
      );
    } finally {
      await system.stop();
      await Deno.remove(dir, { recursive: true });
      await Deno.remove(outside, { recursive: true });
    }
  },
);
