/**
 * systemd 252 itself as the oracle: generated units with hostile argv, environment and paths are
 * loaded by `systemd-analyze verify`, which must accept them without a warning, and its debug
 * dump of the loaded unit must show exactly the intended argv, environment and paths.
 *
 * `systemd-analyze verify` works offline without a running systemd (it starts a private
 * manager in test mode); with SYSTEMD_LOG_LEVEL=debug it prints the loaded unit on stdout.
 * When it cannot run here, the tests are skipped with the reason printed.
 */
import assert from "node:assert/strict";
import fc from "fast-check";
import { serializeUnit } from "./codec.ts";
import {
  bindPath,
  decodeEnvironment,
  decodeExecCommandLine,
  environmentAssignment,
  escapeSpecifiers,
  execCommandLine,
  pathValue,
  temporaryFileSystemValue,
  workingDirectoryValue,
} from "./escape.ts";
import { unitName } from "./name.ts";
import type { UnitLine } from "./types.ts";
import {
  cleanString,
  hostilePath,
  hostileString,
  rawValue,
  safeFileName,
  simplifyPath,
} from "./_test_arbitraries.ts";

const ANALYZE = "/usr/bin/systemd-analyze";

interface Verified {
  /** The unit file's path, which prefixes systemd's warnings about it. */
  file: string;
  code: number;
  stdout: string;
  stderr: string;
}

/**
 * Runs `systemd-analyze verify` on the unit `name` whose text `build` writes into a fresh
 * directory of its own (it may create files there first); the directory is removed afterwards.
 */
async function verify(name: string, build: (dir: string) => Promise<string>): Promise<Verified> {
  const dir = await Deno.makeTempDir({ prefix: "systemk-unit-verify-" });
  try {
    const file = `${dir}/${name}`;
    await Deno.writeTextFile(file, await build(dir));
    const out = await new Deno.Command(ANALYZE, {
      args: ["verify", "--man=no", file],
      env: { SYSTEMD_LOG_LEVEL: "debug", SYSTEMD_COLORS: "0", NO_COLOR: "1" },
      stdout: "piped",
      stderr: "piped",
    }).output();
    const decoder = new TextDecoder();
    return {
      file,
      code: out.code,
      stdout: decoder.decode(out.stdout),
      stderr: decoder.decode(out.stderr),
    };
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** Why `systemd-analyze verify` cannot serve as an oracle here, or undefined when it can. */
async function unavailable(): Promise<string | undefined> {
  try {
    const probe = await verify(
      "probe.service",
      () => Promise.resolve("[Service]\nType=oneshot\nExecStart=/bin/true\n"),
    );
    if (probe.code !== 0) return `verify of a trivial unit failed: ${probe.stderr.slice(-500)}`;
    if (!probe.stdout.includes("-> Unit probe.service:")) return "verify printed no unit dump";
    return undefined;
  } catch (e) {
    return `${ANALYZE} cannot run: ${e}`;
  }
}

const skipReason = await unavailable();

/** Seed of the generated values: random, printed, and fixed with UNIT_TEST_SEED to reproduce. */
const SEED = Number(Deno.env.get("UNIT_TEST_SEED") ?? Math.floor(Math.random() * 2 ** 31));
if (!skipReason) console.log(`systemd-analyze tests: UNIT_TEST_SEED=${SEED}`);
if (skipReason) console.log(`systemd-analyze tests skipped: ${skipReason}`);

/**
 * Reads one `Command Line:` of the dump, written by systemd's `quote_command_line()`: words
 * separated by a space; a word needing quotes is in `"..."` where control characters are C
 * escapes (`\n`, `\177` ...) and any other character may be backslash-escaped.
 */
function readDumpedCommandLine(line: string): string[] {
  const words: string[] = [];
  const bytes = new TextEncoder().encode(line);
  const simple: Record<string, number> = { a: 7, b: 8, f: 12, n: 10, r: 13, t: 9, v: 11 };
  let i = 0;
  while (i < bytes.length) {
    const word: number[] = [];
    if (bytes[i] === 0x22) {
      for (i++; bytes[i] !== 0x22; i++) {
        assert.ok(i < bytes.length, `unterminated quote in ${line}`);
        if (bytes[i] !== 0x5c) {
          word.push(bytes[i]);
          continue;
        }
        const c = String.fromCharCode(bytes[++i]);
        const octal = String.fromCharCode(...bytes.subarray(i, i + 3));
        if (c in simple) word.push(simple[c]);
        else if (/^[0-3][0-7]{2}$/.test(octal)) {
          word.push(parseInt(octal, 8));
          i += 2;
        } else word.push(bytes[i]);
      }
      i++;
    } else {
      for (; i < bytes.length && bytes[i] !== 0x20; i++) word.push(bytes[i]);
    }
    assert.ok(i >= bytes.length || bytes[i] === 0x20, `junk after a word in ${line}`);
    i++;
    words.push(
      new TextDecoder("utf-8", { fatal: true, ignoreBOM: true }).decode(new Uint8Array(word)),
    );
  }
  return words;
}

/** The dump of unit `name` only (verify may dump other units too). */
function unitDump(stdout: string, name: string): string {
  const start = stdout.indexOf(`-> Unit ${name}:`);
  assert.ok(start >= 0, `no dump of ${name}`);
  const end = stdout.indexOf("-> Unit ", start + 1);
  return stdout.slice(start, end < 0 ? undefined : end);
}

/**
 * The values of the `Environment:` lines for `names` (in dump order). Values may hold line
 * breaks, so each is cut at the next name; the last name is a sentinel whose value is not read.
 */
function dumpedEnvironment(dump: string, names: string[]): string[] {
  return names.slice(0, -1).map((n, i) => {
    const start = dump.indexOf(`\t\tEnvironment: ${n}=`);
    const end = dump.indexOf(`\n\t\tEnvironment: ${names[i + 1]}=`);
    assert.ok(start >= 0 && end > start, `Environment ${n} missing from the dump`);
    return dump.slice(start + `\t\tEnvironment: ${n}=`.length, end);
  });
}

/** Absolute paths made of safe file names (for a working directory). */
const path = fc.array(safeFileName, { minLength: 1, maxLength: 3 }).map((parts) =>
  "/" + parts.join("/")
);

const directive = (key: string, value: string): UnitLine => ({ kind: "directive", key, value });

Deno.test({
  name: "systemd-analyze verify: hostile argv, environment and paths load exactly as intended",
  ignore: skipReason !== undefined,
  fn: async () => {
    const rounds = 8;
    let checked = 0;
    for (let round = 0; round < rounds; round++) {
      const seed = SEED + round;
      const executables = fc.sample(safeFileName, { numRuns: 8, seed });
      const argvs = fc.sample(
        fc.tuple(fc.nat(executables.length + 1), fc.array(cleanString, { maxLength: 5 })),
        { numRuns: 25, seed },
      );
      const envs = fc.sample(
        fc.tuple(fc.stringMatching(/^[A-Za-z0-9_]{0,8}$/), cleanString),
        { numRuns: 25, seed },
      ).map(([name, value], i): [string, string] => [`E${i}_${name}`, value]);
      const readOnly = fc.sample(hostilePath, { numRuns: 8, seed });
      const binds = fc.sample(fc.tuple(hostilePath, hostilePath), { numRuns: 8, seed });
      const tmpfs = fc.sample(hostilePath.filter((p) => !/[:\\]/.test(p)), { numRuns: 4, seed });
      const [workingDirectory] = fc.sample(path.filter((p) => !/[ \t\\]$/.test(p)), {
        numRuns: 1,
        seed,
      });

      const name = unitName({ namespace: "verify", name: `round-${round}` }, "hostile");
      let intendedArgvs: string[][] = [];
      const result = await verify(name, async (dir) => {
        for (const exe of executables) {
          await Deno.writeTextFile(`${dir}/${exe}`, "#!/bin/sh\n", { mode: 0o755 });
        }
        // Some commands run a hostile-named executable, the others /bin/echo or echo via PATH.
        const executable = (i: number) =>
          i < executables.length ? `${dir}/${executables[i]}` : ["/bin/echo", "echo"][i % 2];
        intendedArgvs = argvs.map(([i, args]) => [executable(i), ...args]);
        return serializeUnit({
          header: [],
          sections: [{
            name: "Service",
            lines: [
              directive("Type", "oneshot"),
              ...intendedArgvs.map((argv) => directive("ExecStart", execCommandLine(argv))),
              ...envs.map(([n, v]) => directive("Environment", environmentAssignment(n, v))),
              directive("Environment", environmentAssignment("ZZ_END", "end")),
              directive("ReadOnlyPaths", readOnly.map(pathValue).join(" ")),
              ...binds.map(([s, d]) => directive("BindPaths", bindPath(s, d))),
              directive(
                "TemporaryFileSystem",
                tmpfs.map((p) => temporaryFileSystemValue(p, "mode=0755")).join(" "),
              ),
              directive("WorkingDirectory", workingDirectoryValue(workingDirectory)),
            ],
          }],
        });
      });

      const warnings = result.stderr.split("\n").filter((l) => l.startsWith(result.file));
      assert.deepEqual(warnings, [], "systemd warned about the generated unit");
      assert.equal(result.code, 0, result.stderr.slice(-2000));
      const dump = unitDump(result.stdout, name);

      const commandLines = [...dump.matchAll(/^\t+Command Line: ([^\n]*)$/gm)].map((m) => m[1]);
      assert.deepEqual(commandLines.map(readDumpedCommandLine), intendedArgvs);

      assert.deepEqual(
        dumpedEnvironment(dump, [...envs.map(([n]) => n), "ZZ_END"]),
        envs.map(([, v]) => v),
      );

      const simplify = simplifyPath;
      assert.ok(dump.includes(`\t\tReadOnlyPaths: ${readOnly.map(simplify).join(" ")}\n`));
      assert.deepEqual(
        [...dump.matchAll(/^\t\tBindPaths: ([^\n]*)$/gm)].map((m) => m[1]),
        binds.map(([s, d]) => `${simplify(s)}:${simplify(d)}:rbind`),
      );
      assert.ok(dump.includes(`\t\tWorkingDirectory: ${simplify(workingDirectory)}\n`));
      assert.deepEqual(
        [...dump.matchAll(/^\t\tTemporaryFileSystem: ([^\n]*)$/gm)].map((m) => m[1]),
        tmpfs.map((p) => `${simplify(p)}:mode=0755`),
      );
      checked += intendedArgvs.length + envs.length + readOnly.length + binds.length +
        tmpfs.length + 1;
    }
    console.log(
      `  ${rounds} units, ${checked} hostile values loaded by systemd exactly as intended`,
    );
  },
});

/** Hand-written raw values exercising systemd's word rules, for the decoders to agree on. */
const TRICKY_EXEC = [
  '"-/bin/echo" "x"', // a prefix inside quotes is still a prefix
  '"@/bin/echo" "argv0" "y"', // '@': argv[0] is the next word
  "-:+/bin/echo a$b", // stacked prefixes
  "/bin/echo a\"b c\"d 'e f'", // quotes in the middle of a word
  "/bin/echo \\; x;y \\\\;", // '\;' as an argument
  '/bin/echo "\\s\\a\\b\\f\\v\\101\\x42\\u00e9\\U0001F600\\\'"',
  "/bin/echo\ta\t\t b", // tabs separate words
  "/bin/echo %% 100%", // '%%' and a trailing '%'
  'echo ""', // an empty argument
];
const TRICKY_ENVIRONMENT = [
  "A=1",
  '"A=two words"',
  "'A=\"quoted\"'",
  'A="x"y',
  '"A=\\x01\\t\\n%%"',
  "A=trailing%",
  "A==",
];

/** Each tricky assignment sets its own variable, so all of them show in the dump. */
const renamed = (raw: string, i: number) => raw.replace(/^(['"]?)A/, `$1A${i}_`);

Deno.test({
  name: "systemd-analyze verify: the reference decoders read hand-written values like systemd",
  ignore: skipReason !== undefined,
  fn: async () => {
    const lines = [
      directive("Type", "oneshot"),
      ...TRICKY_EXEC.map((raw) => directive("ExecStart", raw)),
      ...TRICKY_ENVIRONMENT.map((raw, i) => directive("Environment", renamed(raw, i))),
      directive("Environment", "ZZ_END=end"),
    ];
    const name = "tricky.service";
    const result = await verify(
      name,
      () => Promise.resolve(serializeUnit({ header: [], sections: [{ name: "Service", lines }] })),
    );
    assert.equal(result.code, 0, result.stderr.slice(-2000));
    const dump = unitDump(result.stdout, name);
    const commandLines = [...dump.matchAll(/^\t+Command Line: ([^\n]*)$/gm)].map((m) => m[1]);
    assert.deepEqual(
      commandLines.map(readDumpedCommandLine),
      TRICKY_EXEC.map((raw) => decodeExecCommandLine(raw)),
    );
    const decoded = TRICKY_ENVIRONMENT.map((raw, i) => decodeEnvironment(renamed(raw, i)));
    assert.deepEqual(
      dumpedEnvironment(dump, [...decoded.map(([n]) => n), "ZZ_END"]),
      decoded.map(([, v]) => v),
    );
  },
});

Deno.test({
  name: "systemd-analyze verify: a quoted ';' first word separates commands (why it is refused)",
  ignore: skipReason !== undefined,
  fn: async () => {
    const unit = '[Service]\nType=oneshot\nExecStart=";" "/bin/echo" "y"\n';
    const result = await verify("semicolon.service", () => Promise.resolve(unit));
    const dump = unitDump(result.stdout, "semicolon.service");
    assert.match(dump, /Command Line: \/bin\/echo y\n/);
  },
});

Deno.test({
  name: "systemd-analyze verify: every unit file serializeUnit writes loads, raw values intact",
  ignore: skipReason !== undefined,
  fn: async () => {
    const runs = 10;
    const samples = fc.sample(
      fc.tuple(rawValue, fc.array(fc.tuple(rawValue, hostileString), { maxLength: 30 })),
      { numRuns: runs, seed: SEED },
    );
    for (const [[description, extra], i] of samples.map((s, i) => [s, i] as const)) {
      const lines: UnitLine[] = [];
      extra.forEach(([v, c], j) => {
        lines.push(directive(`Key${j}`, v));
        // Comments may hold anything but line breaks and NUL.
        lines.push({ kind: "comment", text: "#" + c.replace(/[\n\r\0]/g, "").toWellFormed() });
      });
      const name = `raw-${i}.service`;
      const result = await verify(name, () =>
        Promise.resolve(serializeUnit({
          header: [],
          sections: [
            { name: "Unit", lines: [directive("Description", escapeSpecifiers(description))] },
            {
              name: "Service",
              lines: [directive("Type", "oneshot"), directive("ExecStart", "true")],
            },
            { name: "X-Test", lines },
          ],
        })));
      const warnings = result.stderr.split("\n").filter((l) => l.startsWith(result.file));
      assert.deepEqual(warnings, [], "systemd warned about the generated unit");
      assert.equal(result.code, 0, result.stderr.slice(-2000));
      // An empty Description= is not shown.
      if (description !== "") {
        assert.ok(unitDump(result.stdout, name).includes(`\tDescription: ${description}\n`));
      }
    }
    console.log(`  ${runs} unit files with hostile raw values and comments loaded`);
  },
});
