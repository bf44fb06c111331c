import assert from "node:assert/strict";
import fc from "fast-check";
import { decodeExecCommandLine, parseUnit, UnitValueError } from "../unit/mod.ts";
import {
  CommandError,
  execStart,
  keptServiceDirectives,
  packageCommands,
  splitRawWords,
} from "./exec.ts";

const pkg = (execStartLines: string[]) =>
  packageCommands(
    parseUnit(`[Service]\n${execStartLines.map((l) => `ExecStart=${l}`).join("\n")}\n`),
  );

Deno.test("splitRawWords: systemd's word boundaries, words kept raw", () => {
  assert.deepEqual(splitRawWords(`/bin/x a "b c" 'd e' f\\ g  h"i j"k $ARGS`), [
    "/bin/x",
    "a",
    `"b c"`,
    `'d e'`,
    "f\\ g",
    `h"i j"k`,
    "$ARGS",
  ]);
  assert.deepEqual(splitRawWords("  "), []);
});

Deno.test("packageCommands: resets, prefixes stripped, @ drops argv[0], ':' doubles $", () => {
  assert.deepEqual(pkg(["/bin/a one", "", "/bin/b two"]), [{ words: ["/bin/b", "two"] }]);
  assert.deepEqual(pkg(["-/bin/a $X"]), [{ words: ["/bin/a", "$X"] }]);
  assert.deepEqual(pkg(["!!/bin/a"]), [{ words: ["/bin/a"] }]);
  assert.deepEqual(pkg(["!-!/bin/a"]), [{ words: ["/bin/a"] }]);
  // systemd reads prefixes after unquoting and unescaping the word.
  assert.deepEqual(pkg(['"+/bin/a" x']), [{ words: ['"/bin/a"', "x"] }]);
  assert.deepEqual(pkg(["\\x2b/bin/a"]), [{ words: ['"/bin/a"'] }]);
  // systemd takes `+` once and no `+` after `!`: the rest would be the path (and refused).
  assert.throws(() => pkg(["+!/bin/a"]), UnitValueError);
  assert.throws(() => pkg(["++a"]), UnitValueError);
  assert.deepEqual(pkg(["@/bin/a argv0 x"]), [{ words: ["/bin/a", "x"] }]);
  assert.deepEqual(pkg([":/bin/a $X $$Y"]), [{ words: ["/bin/a", "$$X", "$$$$Y"] }]);
  assert.deepEqual(pkg(["/bin/a one", "/bin/b two"]).length, 2);
});

Deno.test("keptServiceDirectives: the package's other commands lose + ! !! only", () => {
  const kept = keptServiceDirectives(parseUnit(`[Service]
ExecStartPre=+/usr/bin/install -d /run/x
ExecStartPre=-!/bin/true ; "!!/bin/sh" -c "a ; b" \\; ; @+/bin/echo argv0 x
ExecStartPost=:/bin/echo $X
ExecReload=!/bin/kill -HUP $MAINPID
ExecStop=
ExecStopPost=+-/bin/rm -f /run/x
`));
  assert.deepEqual(kept, [
    ["ExecStartPre", "/usr/bin/install -d /run/x"],
    ["ExecStartPre", '-/bin/true ; "/bin/sh" -c "a ; b" \\; ; @/bin/echo argv0 x'],
    ["ExecStartPost", ":/bin/echo $X"],
    ["ExecReload", "/bin/kill -HUP $MAINPID"],
    ["ExecStop", ""],
    ["ExecStopPost", "-/bin/rm -f /run/x"],
  ]);
});

Deno.test("execStart: the seed's rules", () => {
  const daemon = pkg(["/usr/sbin/d --opt $ARGS"]);
  // package only → verbatim
  assert.deepEqual(execStart({}, daemon), ["/usr/sbin/d --opt $ARGS"]);
  assert.deepEqual(execStart({ command: [], args: [] }, daemon), ["/usr/sbin/d --opt $ARGS"]);
  // command replaces the first word, options kept raw, $ in command doubled
  assert.deepEqual(execStart({ command: ["/opt/d", "-x$"] }, daemon), [
    `"/opt/d" "-x$$" --opt $ARGS`,
  ]);
  // args replace the options, executable kept
  assert.deepEqual(execStart({ args: ["a b", "$HOME", "5%"] }, daemon), [
    `/usr/sbin/d "a b" "$$HOME" "5%%"`,
  ]);
  // both → full replacement with the unit module's literal (':') encoding
  assert.deepEqual(
    decodeExecCommandLine(
      execStart({ command: ["/bin/sh", "-c"], args: ["echo $HOME"] }, daemon)[0],
    ),
    ["/bin/sh", "-c", "echo $HOME"],
  );
  // synthesized
  assert.deepEqual(decodeExecCommandLine(execStart({ command: ["/bin/true"] }, undefined)[0]), [
    "/bin/true",
  ]);
  assert.throws(() => execStart({ args: ["x"] }, undefined), CommandError);
  assert.throws(() => execStart({}, undefined), CommandError);
  assert.throws(() => execStart({}, []), CommandError);
  assert.throws(() => execStart({ command: ["/x"] }, pkg(["/a", "/b"])), CommandError);
  assert.deepEqual(execStart({ command: ["/x"], args: ["y"] }, pkg(["/a", "/b"])).length, 1);
});

Deno.test("execStart: command+args reach the process exactly, as one word each (property)", () => {
  const word = fc.string({ unit: "grapheme", maxLength: 20 }).filter((s) => !s.includes("\0"));
  fc.assert(
    fc.property(
      fc.constantFrom("/bin/bash", "/usr/bin/env", "sh"),
      fc.array(word, { maxLength: 5 }),
      fc.array(word, { maxLength: 5 }),
      (exe, options, args) => {
        const line = execStart({ command: [exe, ...options], args }, undefined);
        assert.deepEqual(decodeExecCommandLine(line[0]), [exe, ...options, ...args]);
      },
    ),
    { numRuns: 500 },
  );
});

Deno.test("execStart: args after a package executable survive systemd's $ expansion (property)", () => {
  // systemd expands `$$` to `$` in lines without the ':' prefix; decoding the line with ':'
  // added and then undoing `$$` is what the process receives.
  const received = (line: string) =>
    decodeExecCommandLine(line.startsWith('"') ? `":${line.slice(1)}` : `:${line}`)
      .map((w) => w.replaceAll("$$", "$"));
  const word = fc.string({ unit: "grapheme", maxLength: 20 }).filter((s) => !s.includes("\0"));
  fc.assert(
    fc.property(fc.array(word, { minLength: 1, maxLength: 5 }), (args) => {
      const [line] = execStart({ args }, pkg(["/usr/sbin/d --opt"]));
      assert.deepEqual(received(line), ["/usr/sbin/d", ...args]);
      const [replaced] = execStart({ command: ["/opt/d", ...args] }, pkg(["/usr/sbin/d --opt"]));
      assert.deepEqual(received(replaced), ["/opt/d", ...args, "--opt"]);
    }),
    { numRuns: 500 },
  );
});
