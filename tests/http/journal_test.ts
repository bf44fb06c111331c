/**
 * Container logs against a real journald: runs of one unit name, one of them standing for an
 * earlier pod of the same name, read back the way `/containerLogs` reads them.
 */
import assert from "node:assert/strict";
import { bootTestSystemd } from "../harness/systemd.ts";
import { Journal } from "../../src/http/journal.ts";
import type { LogOptions } from "../../src/http/logs.ts";
import { waitFor } from "../e2e/_node_env.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };
const UNIT = "systemk.default.web.app.service";
const plain: LogOptions = { follow: false, previous: false, timestamps: false };

Deno.test(
  "journal: current and previous runs of this pod only; tail, limit, since, follow",
  opts,
  async (t) => {
    const system = await bootTestSystemd({});
    // The host's journalctl reads the test system's journal files directly.
    const journal = new Journal({ command: ["journalctl", `--root=${system.root}`] });
    const run = async (script: string) => {
      await system.exec(
        ["systemd-run", `--unit=${UNIT}`, "--collect", "--wait", "/bin/bash", "-c", script],
      );
    };
    /** systemd's ExecMainStartTimestamp of the unit in µs (the handler reads it over D-Bus). */
    const started = async () => {
      const out = await system.exec(
        ["systemctl", "show", "-P", "ExecMainStartTimestamp", "--timestamp=us+utc", UNIT],
      );
      const m = out.stdout.match(/(\d{4}-\d\d-\d\d) (\d\d:\d\d:\d\d)\.(\d{6}) UTC/);
      return m ? BigInt(Date.parse(`${m[1]}T${m[2]}Z`)) * 1000n + BigInt(m[3]) : undefined;
    };
    const text = (stream: ReadableStream<Uint8Array>) => new Response(stream).text();
    try {
      await run("echo earlier pod");
      // The pod's creation time has whole seconds: the earlier pod ended in an earlier second.
      await new Promise((r) => setTimeout(r, 1000 - (Date.now() % 1000) + 10));
      const created = BigInt(Math.floor(Date.now() / 1000)) * 1_000_000n;
      await run("echo first run; echo exits; exit 1");
      await system.exec([
        "systemd-run",
        `--unit=${UNIT}`,
        "--collect",
        "/bin/bash",
        "-c",
        "for i in 1 2 3; do echo line $i; done; while :; do echo tick; sleep 0.1; done",
      ]);
      const startedMicros = await waitFor("the current run's start", started);
      const current = await waitFor("a tick of the current run", async () => {
        const stream = await journal.findRun(UNIT, { startedMicros, previous: false });
        return stream && (await text(journal.read(UNIT, stream, plain))).includes("tick")
          ? stream
          : undefined;
      });

      await t.step("the current run: its whole stream; tail and limit", async () => {
        const all = await text(journal.read(UNIT, current, plain));
        assert.match(all, /^line 1\nline 2\nline 3\ntick\n/);
        assert.doesNotMatch(all, /first run|earlier pod/);
        assert.equal(await text(journal.read(UNIT, current, { ...plain, tailLines: 0 })), "");
        assert.equal(
          await text(journal.read(UNIT, current, { ...plain, limitBytes: 9 })),
          "line 1\nli",
        );
        const stamped = await text(
          journal.read(UNIT, current, { ...plain, timestamps: true, limitBytes: 200 }),
        );
        assert.match(stamped, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}000Z line 1\n/);
      });

      await t.step("previous: the run before, never the earlier pod's", async () => {
        const previous = await journal.findRun(UNIT, {
          startedMicros,
          previous: true,
          sinceMicros: created,
        });
        assert.ok(previous && previous !== current);
        assert.equal(await text(journal.read(UNIT, previous, plain)), "first run\nexits\n");
        // Had the first run been the current one, the earlier pod's run would come before it
        // in the journal: the creation bound is what keeps it out.
        const firstStart = created + 1n;
        assert.equal(
          await journal.findRun(UNIT, {
            startedMicros: firstStart,
            previous: true,
            sinceMicros: created,
          }),
          undefined,
        );
        assert.notEqual(
          await journal.findRun(UNIT, { startedMicros: firstStart, previous: true }),
          undefined,
        );
      });

      await t.step("since: only lines from then on", async () => {
        const since = BigInt(Date.now()) * 1000n;
        await new Promise((r) => setTimeout(r, 350));
        const out = await text(journal.read(UNIT, current, { ...plain, sinceMicros: since }));
        assert.match(out, /^(tick\n)+$/);
        assert.ok(out.split("\n").length < 10, out);
      });

      await t.step(
        "follow streams new lines and ends journalctl when the reader goes",
        async () => {
          const stream = journal.read(UNIT, current, { ...plain, follow: true, tailLines: 1 });
          const reader = stream.getReader();
          const lines: string[] = [];
          for (let i = 0; i < 4; i++) {
            const { value } = await reader.read();
            lines.push(new TextDecoder().decode(value));
          }
          assert.deepEqual(lines, ["tick\n", "tick\n", "tick\n", "tick\n"]);
          const following = async () => {
            const ps = await new Deno.Command("pgrep", {
              args: ["-f", `journalctl.*--follow.*${current}`],
            }).output();
            return ps.success;
          };
          assert.equal(await following(), true);
          await reader.cancel();
          await waitFor("journalctl --follow to end", async () => !await following(), 5000);
        },
      );
    } finally {
      await system.stop();
    }
  },
);
