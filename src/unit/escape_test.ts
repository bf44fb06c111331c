import assert from "node:assert/strict";
import fc from "fast-check";
import { parseUnit, serializeUnit } from "./codec.ts";
import { UnitValueError } from "./errors.ts";
import {
  bindPath,
  decodeBindPaths,
  decodeEnvironment,
  decodeExecCommandLine,
  decodePathList,
  decodeTemporaryFileSystems,
  environmentAssignment,
  environmentFileAssignment,
  escapeSpecifiers,
  execArguments,
  execCommandLine,
  executableWord,
  pathValue,
  readExecutableWord,
  temporaryFileSystemValue,
  workingDirectoryValue,
} from "./escape.ts";
import { resolvePercentEscapes } from "./extract.ts";
import { cleanString, hostilePath, hostileString, simplifyPath } from "./_test_arbitraries.ts";

/** What systemd accepts as argv[0] (see escape.ts): a safe file name. */
const executable = fc.oneof(
  fc.constantFrom("/bin/sh", "echo", "/opt/my app/bin/ru n", "/x/100%/$HOME", "/ü/😀"),
  fc.stringMatching(/^\/[A-Za-z0-9 ._$%@:;=+!-]{1,30}$/),
);

Deno.test("execCommandLine: examples", () => {
  assert.equal(execCommandLine(["/bin/true"]), '":/bin/true"');
  assert.equal(
    execCommandLine(["/bin/sh", "-c", 'echo "$HOME" 100%', "", ";"]),
    '":/bin/sh" "-c" "echo \\"$HOME\\" 100%%" "" ";"',
  );
  assert.equal(
    execCommandLine(["a", "x\ny\t\x01\x7f\u0085\\"]),
    '":a" "x\\ny\\t\\x01\\x7f\\u0085\\\\"',
  );
  // systemd would run a noncharacter written as \xNN bytes, but could not report the unit.
  assert.throws(() => execCommandLine(["a", "\uffff\u{1fffe}"]), /U\+FFFF.*cannot report/);
  assert.throws(() => execArguments(["\ufdd0"]), /U\+FDD0/);
});

Deno.test("execCommandLine expandable / execArguments: '$' doubled, no ':' prefix", () => {
  assert.equal(
    execCommandLine(["/bin/echo", "$HOME", "$$", "${X}"], { expandable: true }),
    '"/bin/echo" "$$HOME" "$$$$" "$${X}"',
  );
  assert.equal(execArguments(["a b", "$x", "100%"]), '"a b" "$$x" "100%%"');
  assert.equal(execArguments([]), "");
  assert.throws(() => execCommandLine(["/opt/$x/run"], { expandable: true }), UnitValueError);
  assert.throws(() => execArguments(["\0"]), UnitValueError);
  assert.equal(execCommandLine(["/opt/$x/run"]), '":/opt/$x/run"');
});

Deno.test("execCommandLine: refuses what systemd cannot run as given", () => {
  const refused: Array<[string, string[]]> = [
    ["empty argv", []],
    ["empty argv[0]", [""]],
    ["NUL in argument", ["/bin/echo", "a\0b"]],
    ["NUL in argv[0]", ["/bin/a\0"]],
    ["lone surrogate", ["/bin/echo", "\udc00"]],
    ["'-' prefix", ["-/bin/true"]],
    ["'@' prefix", ["@/bin/true"]],
    ["':' prefix", [":true"]],
    ["'+' prefix", ["+/bin/true"]],
    ["'!' prefix", ["!/bin/true"]],
    ["';' as argv[0]", [";"]],
    ["quote in argv[0]", ['/bin/a"b']],
    ["backslash in argv[0]", ["/bin/a\\b"]],
    ["newline in argv[0]", ["/bin/a\nb"]],
    ["relative path with a slash", ["bin/true"]],
    ["directory", ["/bin/"]],
    ["dot", ["."]],
    ["long component", ["/" + "a".repeat(256)]],
  ];
  for (const [why, argv] of refused) {
    assert.throws(() => execCommandLine(argv), UnitValueError, why);
  }
  assert.throws(() => execCommandLine(["/bin/echo", "\0"]), /NUL/);
});

Deno.test("decodeExecCommandLine follows systemd's rules on hand-written lines", () => {
  assert.deepEqual(decodeExecCommandLine('/bin/echo a  \'b c\' "d\\"e" \\;'), [
    "/bin/echo",
    "a",
    "b c",
    'd"e',
    ";",
  ]);
  // Prefixes are stripped from the unquoted first word; '@' takes argv[0] from the next word.
  assert.deepEqual(decodeExecCommandLine('"-@:/bin/sh" sh -c "%%"'), ["sh", "-c", "%"]);
  assert.deepEqual(decodeExecCommandLine(':/bin/echo "\\x41\\u00e9\\101"'), ["/bin/echo", "AéA"]);
  assert.deepEqual(decodeExecCommandLine(":/bin/echo a$b"), ["/bin/echo", "a$b"]);
  // Without ':', "$$" is "$" at start time and a '$' before other characters stays.
  assert.deepEqual(decodeExecCommandLine("/bin/echo $$HOME a$b $$ b$ $${X}"), [
    "/bin/echo",
    "$HOME",
    "a$b",
    "$",
    "b$",
    "${X}",
  ]);
  for (
    const bad of [
      "", // a reset, not a command
      "/bin/echo $HOME", // environment expansion
      "/bin/echo a${HOME}", // environment expansion inside a word
      "/bin/echo $", // a whole-word variable with an empty name: the word is dropped
      "/opt/$$x/run", // argv[0] expanded, the executed path not
      "/bin/echo %n", // a unit-dependent specifier
      "/bin/a ; /bin/b", // two commands
      '/bin/echo "unbalanced',
      "/bin/echo \\q", // systemd warns and keeps "\q"
      "/bin/echo \\x00", // NUL refused
      "/bin/echo \\xff", // not UTF-8
      '"/bin/a\\"b"', // unsafe executable
    ]
  ) {
    assert.throws(() => decodeExecCommandLine(bad), UnitValueError, bad);
  }
});

Deno.test("environmentAssignment: examples and refusals", () => {
  assert.equal(environmentAssignment("A", "x y"), '"A=x y"');
  assert.equal(environmentAssignment("_a1", '$HOME %h "q"\n'), '"_a1=$HOME %%h \\"q\\"\\n"');
  for (const name of ["", "1A", "A-B", "A.B", "A=B", "Ä", "A B", "A\0"]) {
    assert.throws(() => environmentAssignment(name, "x"), UnitValueError, name);
  }
  assert.throws(() => environmentAssignment("A", "x\0"), /NUL/);
  assert.throws(() => environmentAssignment("A", "\ud800"), UnitValueError);
  // env_value_is_valid() refuses noncharacters however they are written.
  assert.throws(() => environmentAssignment("A", "\ufdd0"), /U\+FDD0/);
  assert.throws(() => decodeEnvironment('"A=\\xef\\xbf\\xbf"'), /U\+FFFF/);
});

Deno.test("environmentFileAssignment: shell-style double quotes, four escapes", () => {
  assert.equal(
    environmentFileAssignment("A", 'x "y" \\ `z` $HOME\n%'),
    'A="x \\"y\\" \\\\ \\`z\\` \\$HOME\n%"',
  );
  assert.throws(() => environmentFileAssignment("1A", "x"), UnitValueError);
  assert.throws(() => environmentFileAssignment("A", "\0"), UnitValueError);
  assert.throws(() => environmentFileAssignment("A", "\uffff"), UnitValueError);
});

Deno.test("decodeEnvironment follows systemd's rules", () => {
  assert.deepEqual(decodeEnvironment("A=b"), ["A", "b"]);
  assert.deepEqual(decodeEnvironment("'A=b c=d'"), ["A", "b c=d"]);
  assert.deepEqual(decodeEnvironment('"A=\\t%%$X"'), ["A", "\t%$X"]);
  for (const bad of ["", "A=1 B=2", "1A=x", "A", "A=%n", '"A=x'] as const) {
    assert.throws(() => decodeEnvironment(bad), UnitValueError, bad);
  }
});

Deno.test("escapeSpecifiers doubles every %", () => {
  assert.equal(escapeSpecifiers("%%i%"), "%%%%i%%");
});

Deno.test("pathValue / workingDirectoryValue / bindPath: examples and refusals", () => {
  assert.equal(pathValue("/usr//lib/./x/"), "/usr/lib/x");
  assert.equal(pathValue("/"), "/");
  assert.equal(pathValue("/srv/my data"), '"/srv/my data"');
  assert.equal(pathValue('/a"b\\c%'), '"/a\\"b\\\\c%%"');
  assert.equal(workingDirectoryValue("/srv/my data/"), "/srv/my data");
  assert.equal(bindPath("/a", "/b"), "/a:/b");
  assert.equal(bindPath("/a:b", '/c "d'), `"/a:b":"/c "'"'"d"`);
  for (
    const bad of ["", "rel", "./x", "/a/../b", "/a\nb", "/a\rb", "/a\0", "/" + "x".repeat(256)]
  ) {
    assert.throws(() => pathValue(bad), UnitValueError, bad);
    assert.throws(() => bindPath(bad, "/x"), UnitValueError, bad);
    assert.throws(() => bindPath("/x", bad), UnitValueError, bad);
    assert.throws(() => workingDirectoryValue(bad), UnitValueError, bad);
  }
  assert.throws(() => workingDirectoryValue("/a "), UnitValueError);
  assert.equal(temporaryFileSystemValue("/var/lib/x"), "/var/lib/x");
  assert.equal(temporaryFileSystemValue("/a b/", "mode=0700"), '"/a b:mode=0700"');
  assert.throws(() => temporaryFileSystemValue("/a:b"), UnitValueError);
  assert.throws(() => temporaryFileSystemValue("/a\\b"), UnitValueError);
  assert.throws(() => temporaryFileSystemValue("/a", "mode=0700 x"), UnitValueError);
  assert.deepEqual(decodeTemporaryFileSystems('/a "/b c:mode=0700" /d\\\\:e:ro'), [
    { path: "/a", options: "" },
    { path: "/b c", options: "mode=0700" },
    { path: "/d:e", options: "ro" },
  ]);
});

/** The argv an `ExecStart=` line of a serialized and re-parsed unit runs. */
function throughUnitFile(key: string, raw: string): string {
  const text = serializeUnit({
    header: [],
    sections: [{ name: "Service", lines: [{ kind: "directive", key, value: raw }] }],
  });
  const parsed = parseUnit(text);
  assert.equal(parsed.sections.length, 1);
  assert.equal(parsed.sections[0].lines.length, 1);
  const line = parsed.sections[0].lines[0];
  assert.ok(line.kind === "directive" && line.key === key);
  return line.value;
}

Deno.test("property: argv survives encode → unit file → parse → systemd's reading", () => {
  fc.assert(
    fc.property(executable, fc.array(cleanString, { maxLength: 6 }), (exe, args) => {
      const argv = [exe, ...args];
      const raw = execCommandLine(argv);
      assert.deepEqual(decodeExecCommandLine(raw), argv);
      assert.deepEqual(decodeExecCommandLine(throughUnitFile("ExecStart", raw)), argv);
    }),
    { numRuns: 3000 },
  );
});

Deno.test("readExecutableWord: prefixes as systemd takes them, after unquoting", () => {
  const read = (raw: string) => {
    const { prefixes, executable } = readExecutableWord(raw);
    return [prefixes, executable];
  };
  assert.deepEqual(read("/bin/a"), ["", "/bin/a"]);
  assert.deepEqual(read("-@:+/bin/a"), ["-@:+", "/bin/a"]);
  assert.deepEqual(read("!!/bin/a"), ["!!", "/bin/a"]);
  assert.deepEqual(read("!-!/bin/a"), ["!-!", "/bin/a"]);
  assert.deepEqual(read("--/bin/a"), ["-", "-/bin/a"], "each prefix once");
  assert.deepEqual(read("+!/bin/a"), ["+", "!/bin/a"], "no ! after +");
  assert.deepEqual(read("!!!/bin/a"), ["!!", "!/bin/a"]);
  assert.deepEqual(read('"+/bin/a"'), ["+", "/bin/a"]);
  assert.deepEqual(read("'!'/bin/a"), ["!", "/bin/a"]);
  assert.deepEqual(read("\\x2b/bin/a"), ["+", "/bin/a"]);
  assert.deepEqual(read("%n/x"), ["", "%n/x"], "specifiers are resolved later");
});

Deno.test("property: executableWord is read back as written", () => {
  const prefixes = fc.constantFrom("", "-", "@", ":", "-:", "+", "!", "!!", "-+");
  const rest = fc.string({ unit: "grapheme", minLength: 1, maxLength: 20 })
    .filter((s) => !s.includes("\0") && !/^[-@:+!]/.test(s));
  fc.assert(
    fc.property(prefixes, rest, (p, executable) => {
      assert.deepEqual(readExecutableWord(executableWord(p, executable)), {
        prefixes: p,
        executable,
      });
    }),
    { numRuns: 1000 },
  );
});

Deno.test("property: expandable command lines and appended arguments run exactly", () => {
  fc.assert(
    fc.property(
      executable.filter((e) => !e.includes("$")),
      fc.array(cleanString, { maxLength: 4 }),
      fc.array(cleanString, { maxLength: 4 }),
      (exe, args, more) => {
        const raw = execCommandLine([exe, ...args], { expandable: true });
        assert.deepEqual(decodeExecCommandLine(throughUnitFile("ExecStart", raw)), [exe, ...args]);
        const appended = more.length === 0 ? raw : `${raw} ${execArguments(more)}`;
        assert.deepEqual(decodeExecCommandLine(throughUnitFile("ExecStart", appended)), [
          exe,
          ...args,
          ...more,
        ]);
      },
    ),
    { numRuns: 2000 },
  );
});

Deno.test("property: hostile argv is either refused with UnitValueError or run exactly", () => {
  let refused = 0;
  fc.assert(
    fc.property(fc.array(hostileString, { maxLength: 5 }), (argv) => {
      let raw: string;
      try {
        raw = execCommandLine(argv);
      } catch (e) {
        assert.ok(e instanceof UnitValueError, String(e));
        refused++;
        return;
      }
      assert.deepEqual(decodeExecCommandLine(throughUnitFile("ExecStart", raw)), argv);
    }),
    { numRuns: 3000 },
  );
  console.log(`  ${refused} of 3000 refused (mostly unsafe argv[0]), the rest decoded exactly`);
});

const envName = fc.stringMatching(/^[A-Za-z_][A-Za-z0-9_]{0,20}$/);

Deno.test("property: environment values survive encode → unit file → systemd's reading", () => {
  fc.assert(
    fc.property(envName, cleanString, (name, value) => {
      const raw = environmentAssignment(name, value);
      assert.deepEqual(decodeEnvironment(raw), [name, value]);
      assert.deepEqual(decodeEnvironment(throughUnitFile("Environment", raw)), [name, value]);
    }),
    { numRuns: 3000 },
  );
});

Deno.test("property: hostile environment is either refused or set exactly", () => {
  fc.assert(
    fc.property(hostileString, hostileString, (name, value) => {
      let raw: string;
      try {
        raw = environmentAssignment(name, value);
      } catch (e) {
        assert.ok(e instanceof UnitValueError, String(e));
        return;
      }
      assert.deepEqual(decodeEnvironment(throughUnitFile("Environment", raw)), [name, value]);
    }),
    { numRuns: 3000 },
  );
});

const simplified = simplifyPath;

Deno.test("property: paths survive pathValue/bindPath → unit file → systemd's reading", () => {
  fc.assert(
    fc.property(hostilePath, hostilePath, (a, b) => {
      assert.deepEqual(decodePathList(throughUnitFile("ReadOnlyPaths", pathValue(a))), [
        simplified(a),
      ]);
      assert.deepEqual(
        decodePathList(throughUnitFile("ReadOnlyPaths", `${pathValue(a)} ${pathValue(b)}`)),
        [simplified(a), simplified(b)],
      );
      assert.deepEqual(
        decodeBindPaths(throughUnitFile("BindPaths", `${bindPath(a, b)} ${bindPath(b, a)}`)),
        [
          { source: simplified(a), destination: simplified(b), recursive: true },
          { source: simplified(b), destination: simplified(a), recursive: true },
        ],
      );
      if (!/[:\\]/.test(a)) {
        assert.deepEqual(
          decodeTemporaryFileSystems(
            throughUnitFile("TemporaryFileSystem", temporaryFileSystemValue(a, "mode=0755")),
          ),
          [{ path: simplified(a), options: "mode=0755" }],
        );
      }
      const wd = simplified(a);
      if (!/[ \t]$|(?<!\\)(\\\\)*\\$/.test(wd)) {
        // WorkingDirectory= takes the whole line, specifiers resolved.
        assert.equal(
          resolvePercentEscapes(throughUnitFile("WorkingDirectory", workingDirectoryValue(a))),
          wd,
        );
      }
    }),
    { numRuns: 2000 },
  );
});
