/**
 * End to end against a booted systemd 252 (tests/harness/systemd.ts): units written with this
 * module's encoders are started, and what the process really receives — argv, environment,
 * working directory, a bind mount, a read-only path, a tmpfs — is compared with what was
 * intended.
 * Needs root (namespaces); skipped with the reason printed otherwise.
 */
import assert from "node:assert/strict";
import fc from "fast-check";
import { bootTestSystemd } from "../harness/systemd.ts";
import { serializeUnit } from "../../src/unit/codec.ts";
import {
  bindPath,
  environmentAssignment,
  environmentFileAssignment,
  execCommandLine,
  pathValue,
  temporaryFileSystemValue,
  workingDirectoryValue,
} from "../../src/unit/escape.ts";
import { unitName } from "../../src/unit/name.ts";
import type { UnitLine } from "../../src/unit/types.ts";
import {
  cleanString,
  hostilePath,
  safeFileName,
  simplifyPath,
} from "../../src/unit/_test_arbitraries.ts";

const skipReason = Deno.uid() === 0 ? undefined : "booting a test systemd needs root";
if (skipReason) console.log(`runtime tests skipped: ${skipReason}`);

/** What each unit runs: it writes what it received into files named after $OUT. */
const SCRIPT = [
  `printf '%s\\0' start "$@" > "$OUT.argv"`,
  `printf '%s\\0' "$V0" "$V1" "$V2" "$F0" "$F1" > "$OUT.env"`,
  `pwd -P > "$OUT.pwd"`,
  `cat "$DEST/marker" > "$OUT.bind"`,
  `if touch "$RO/probe" 2>/dev/null; then echo writable; else echo read-only; fi > "$OUT.ro"`,
  `stat -f -c %T "$TMPFS" > "$OUT.tmpfs"`,
].join("\n");

const directive = (key: string, value: string): UnitLine => ({ kind: "directive", key, value });

/** A path under `base` made of hostile components, simplified like systemd does. */
const under = (base: string, path: string) => simplifyPath(`${base}/${path}`);

Deno.test({
  name: "a booted systemd runs generated units with exactly the intended argv, env and paths",
  ignore: skipReason !== undefined,
  fn: async () => {
    const seed = Number(Deno.env.get("UNIT_TEST_SEED") ?? Math.floor(Math.random() * 2 ** 31));
    console.log(`  UNIT_TEST_SEED=${seed}`);
    // Words systemd would expand or split, in both modes (even index: ':' prefix, odd: "$$").
    const expansions = ["$HOME", "$", "${HOME}", "$$", "a$b", "$HOME$", "%n", "%%", ";", "\\;", ""];
    const fixed = [0, 1].map(() => ({
      args: expansions,
      env: ["$HOME", "%n", "\x01\n\t\"'\\"] as [string, string, string],
      envFile: ["$HOME ${X} `id` %n", "\\\n\r\"'\\\\"] as [string, string],
      workingDirectory: "a b/%n",
      bindDestination: "c:d/e f",
      readOnly: 'g "h"',
      tmpfs: "i j/%n",
    }));
    const cases = [
      ...fixed,
      ...fc.sample(
        fc.record({
          args: fc.array(cleanString, { maxLength: 6 }),
          env: fc.tuple(cleanString, cleanString, cleanString),
          envFile: fc.tuple(cleanString, cleanString),
          workingDirectory: fc.array(safeFileName, { minLength: 1, maxLength: 2 })
            .map((parts) => parts.join("/"))
            .filter((p) => !/[ \t\\]$/.test(p)),
          bindDestination: hostilePath,
          readOnly: hostilePath,
          tmpfs: hostilePath.filter((p) => !/[:\\]/.test(p)),
        }),
        { numRuns: 16, seed },
      ),
    ];

    const sd = await bootTestSystemd();
    try {
      const names: string[] = [];
      const expected = await Promise.all(cases.map(async (c, i) => {
        const name = unitName({ namespace: "runtime", name: `case-${i}` }, "probe");
        names.push(name);
        const out = `/tmp/out/${i}`;
        const source = `/srv/source/${i}`;
        const workingDirectory = under(`/srv/wd/${i}`, c.workingDirectory);
        const destination = under(`/srv/bind/${i}`, c.bindDestination);
        const readOnly = under(`/srv/ro/${i}`, c.readOnly);
        const tmpfs = under(`/srv/tmpfs/${i}`, c.tmpfs);
        for (const dir of ["/tmp/out", source, workingDirectory, destination, readOnly, tmpfs]) {
          await Deno.mkdir(sd.root + dir, { recursive: true });
        }
        await Deno.writeTextFile(`${sd.root}${source}/marker`, `marker ${i}`);
        const envFile = `/srv/env/${i}.env`;
        await Deno.mkdir(`${sd.root}/srv/env`, { recursive: true });
        await Deno.writeTextFile(
          sd.root + envFile,
          c.envFile.map((v, j) => environmentFileAssignment(`F${j}`, v) + "\n").join(""),
        );
        const argv = ["/bin/sh", "-c", SCRIPT, "sh", ...c.args];
        const text = serializeUnit({
          header: [],
          sections: [{
            name: "Service",
            lines: [
              directive("Type", "oneshot"),
              // Odd cases keep $VAR expansion on and rely on "$$".
              directive("ExecStart", execCommandLine(argv, { expandable: i % 2 === 1 })),
              ...c.env.map((v, j) => directive("Environment", environmentAssignment(`V${j}`, v))),
              directive("Environment", environmentAssignment("OUT", out)),
              directive("Environment", environmentAssignment("DEST", destination)),
              directive("Environment", environmentAssignment("RO", readOnly)),
              directive("Environment", environmentAssignment("TMPFS", tmpfs)),
              directive("EnvironmentFile", workingDirectoryValue(envFile)),
              directive("WorkingDirectory", workingDirectoryValue(workingDirectory)),
              directive("BindReadOnlyPaths", bindPath(source, destination)),
              directive("ReadOnlyPaths", pathValue(readOnly)),
              directive("TemporaryFileSystem", temporaryFileSystemValue(tmpfs, "mode=0755")),
            ],
          }],
        });
        await Deno.writeTextFile(`${sd.root}/run/systemd/system/${name}`, text);
        const env = [...c.env, ...c.envFile];
        return { out, args: c.args, env, workingDirectory, marker: `marker ${i}` };
      }));

      assert.equal((await sd.exec(["systemctl", "daemon-reload"])).code, 0);
      const started = await sd.exec(["systemctl", "start", ...names]);
      if (started.code !== 0) {
        const status = await sd.exec(["systemctl", "status", "--no-pager", "-l", ...names]);
        assert.fail(`units failed: ${started.stderr}\n${status.stdout.slice(-4000)}`);
      }

      const nulSeparated = (text: string) => text.split("\0").slice(0, -1);
      for (const e of expected) {
        const read = (suffix: string) => Deno.readTextFile(`${sd.root}${e.out}.${suffix}`);
        assert.deepEqual(nulSeparated(await read("argv")), ["start", ...e.args]);
        assert.deepEqual(nulSeparated(await read("env")), e.env);
        assert.equal(await read("pwd"), e.workingDirectory + "\n");
        assert.equal(await read("bind"), e.marker);
        assert.equal(await read("ro"), "read-only\n");
        assert.equal(await read("tmpfs"), "tmpfs\n");
      }
      console.log(`  ${cases.length} units ran with exactly the intended values`);
    } finally {
      await sd.stop();
    }
  },
});
