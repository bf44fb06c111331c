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
  "journal: current and previous runs of this pod only; tail, limit, follow",
  opts,
  async (t) => {
    const system = await bootTestSystemd({});
    // The host's journalctl reads the test system's journal files directly.
    const journal = new Journal({ command: ["journalctl", `--root=${system.root}`] });
    const run = async (script: string) => {
      const out = await system.exec([
        "systemd-run",
        `--unit=${UNIT}`,
        "--collect",
        "--wait",
        "/bin/bash",
        "-c",
        script,
      ]);
      assert.ok(out.code === 0 || /status=1/.test(out.stdout + out.stderr), out.stderr);
    };
    const invocation = async () =>
      (await system.exec(["systemctl", "show", "-P", "InvocationID", UNIT])).stdout.trim();
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
      const current = await waitFor("the current run", async () => await invocation() || undefined);
      await waitFor("a tick in the journal", async () => {
        const out = await text(journal.read(UNIT, current, plain));
        return out.includes("tick");
      });

      await t.step("the current run is systemd's invocation; tail and limit", async () => {
        assert.equal(await journal.findRun(UNIT, { current, previous: false }), current);
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
          current,
          previous: true,
          sinceMicros: created,
        });
        assert.ok(previous && previous !== current);
        assert.equal(await text(journal.read(UNIT, previous, plain)), "first run\nexits\n");
        // Without the creation bound the earlier pod's run would be next: the bound is what keeps it out.
        const before = await journal.findRun(UNIT, {
          current: previous,
          previous: true,
          sinceMicros: created,
        });
        assert.equal(before, undefined);
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
              args: ["-f", `journalctl.*--follow.*${UNIT}`],
            })
              .output();
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
