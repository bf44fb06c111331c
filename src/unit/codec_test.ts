import assert from "node:assert/strict";
import fc from "fast-check";
import { comment, parseUnit, serializeUnit } from "./codec.ts";
import { UnitValueError } from "./errors.ts";
import type { UnitFile, UnitLine } from "./types.ts";
import { hostileString, rawValue } from "./_test_arbitraries.ts";

// Plain objects, comparable with deepEqual against parser output.
const record = <T>(model: { [K in keyof T]: fc.Arbitrary<T[K]> }) =>
  fc.record<T>(model, { noNullPrototype: true });

const directive = (key: string, value: string): UnitLine => ({ kind: "directive", key, value });

/** Every directive as [section, key, value], in file order. */
function directives(unit: UnitFile): string[][] {
  return unit.sections.flatMap((s) =>
    s.lines.flatMap((l) => (l.kind === "directive" ? [[s.name, l.key, l.value]] : []))
  );
}

Deno.test("parse: sections in order, repeated keys kept, blanks around '=' dropped", () => {
  const unit = parseUnit(
    "[Unit]\nDescription = hello world \n\n[Service]\nExecStart=\nExecStart= /bin/a b\n" +
      'Environment=A=1\nEnvironment=B=2\n[X-Kubernetes]\nNamespace="x"\n',
  );
  assert.deepEqual(unit, {
    header: [],
    sections: [
      { name: "Unit", lines: [directive("Description", "hello world")] },
      {
        name: "Service",
        lines: [
          directive("ExecStart", ""),
          directive("ExecStart", "/bin/a b"),
          directive("Environment", "A=1"),
          directive("Environment", "B=2"),
        ],
      },
      { name: "X-Kubernetes", lines: [directive("Namespace", '"x"')] },
    ],
  });
});

Deno.test("parse: comments with # and ; (leading blanks allowed), header comments", () => {
  const unit = parseUnit("# top\n  ; also top\n[Unit]\n\t# inner\nA=1 # not a comment\n");
  assert.deepEqual(unit.header, [
    { kind: "comment", text: "# top" },
    { kind: "comment", text: "; also top" },
  ]);
  assert.deepEqual(unit.sections[0].lines, [
    { kind: "comment", text: "# inner" },
    directive("A", "1 # not a comment"),
  ]);
});

Deno.test("parse: continuation replaces the backslash by a space and skips comment lines", () => {
  // The example of systemd.syntax(7), section C.
  const unit = parseUnit(
    "[C]\nKeyThree=value 3\\\n# this line is ignored\n; this line is ignored too\n" +
      "       value 3 continued\nKeyTwo=value 2 \\\n       value 2 continued\n",
  );
  assert.deepEqual(directives(unit), [
    ["C", "KeyThree", "value 3        value 3 continued"],
    ["C", "KeyTwo", "value 2         value 2 continued"],
  ]);
  // The skipped comments are kept, before the directive they interrupted.
  assert.deepEqual(unit.sections[0].lines.slice(0, 2).map((l) => l.kind), ["comment", "comment"]);
});

Deno.test("parse: only an odd number of trailing backslashes continues a line", () => {
  const unit = parseUnit("[S]\nA=x\\\\\nB=y\\\\\\\nC=z\n");
  assert.deepEqual(directives(unit), [["S", "A", "x\\\\"], ["S", "B", "y\\\\ C=z"]]);
});

Deno.test("parse: continuation at end of file, CR/CRLF line ends, byte order mark", () => {
  assert.deepEqual(directives(parseUnit("[S]\nA=1\\")), [["S", "A", "1"]]);
  assert.deepEqual(directives(parseUnit("[S]\r\nA=1\r\nB=2\rC=3")), [
    ["S", "A", "1"],
    ["S", "B", "2"],
    ["S", "C", "3"],
  ]);
  assert.deepEqual(directives(parseUnit("\uFEFF[S]\nA=1\n")), [["S", "A", "1"]]);
});

Deno.test("parse: lines systemd ignores are dropped; a broken section header throws", () => {
  assert.deepEqual(directives(parseUnit("A=outside\n[S]\nno equals sign\n=novalue\nB=1\n")), [
    ["S", "B", "1"],
  ]);
  assert.throws(() => parseUnit("[S\nA=1\n"), UnitValueError);
  assert.throws(() => parseUnit('[S"x]\nA=1\n'), UnitValueError);
  // A noncharacter outside a comment makes systemd 252 refuse the file.
  assert.throws(() => parseUnit("[S]\nA=\ufffe\n"), /U\+FFFE/);
  assert.deepEqual(parseUnit("# \ufffe\n").header, [{ kind: "comment", text: "# \ufffe" }]);
});

Deno.test("serialize: layout and the comment helper", () => {
  const text = serializeUnit({
    header: [comment("managed by systemk")],
    sections: [
      { name: "Unit", lines: [directive("Description", "x")] },
      { name: "Service", lines: [directive("ExecStart", ""), comment("")] },
    ],
  });
  assert.equal(text, "# managed by systemk\n\n[Unit]\nDescription=x\n\n[Service]\nExecStart=\n#\n");
});

Deno.test("serialize: refuses what systemd would read differently", () => {
  const section = (lines: UnitLine[], name = "Service"): UnitFile => ({
    header: [],
    sections: [{ name, lines }],
  });
  const refused: Array<[string, UnitFile]> = [
    ["newline in value", section([directive("A", "x\nB=y")])],
    ["CR in value", section([directive("A", "x\rB=y")])],
    ["NUL in value", section([directive("A", "x\0")])],
    ["lone surrogate", section([directive("A", "\ud800")])],
    ["trailing backslash", section([directive("A", "x\\")])],
    ["three trailing backslashes", section([directive("A", "x\\\\\\")])],
    ["leading blank", section([directive("A", " x")])],
    ["trailing tab", section([directive("A", "x\t")])],
    ["empty key", section([directive("", "x")])],
    ["key with =", section([directive("A=B", "x")])],
    ["key with blank", section([directive("A B", "x")])],
    ["key starting with [", section([directive("[S]", "x")])],
    ["key starting with #", section([directive("#A", "x")])],
    ["section with ]", section([], "A]B")],
    ["section with newline", section([], "A\n[B")],
    ["empty section name", section([], "")],
    ["comment without marker", section([{ kind: "comment", text: "text" }])],
    ["comment with newline", section([{ kind: "comment", text: "# a\nB=1" }])],
    ["directive in header", { header: [directive("A", "1")], sections: [] }],
    ["noncharacter in value", section([directive("A", "x\uffff")])],
    ["astral noncharacter in value", section([directive("A", "\u{10fffe}")])],
    ["noncharacter in section name", section([], "X-\ufdd0")],
  ];
  for (const [why, unit] of refused) {
    assert.throws(() => serializeUnit(unit), UnitValueError, why);
  }
  assert.equal(serializeUnit(section([directive("A", "x\\\\")])), "[Service]\nA=x\\\\\n");
  // systemd skips comments before its UTF-8 check, so they may hold noncharacters.
  assert.equal(serializeUnit({ header: [comment("\uffff")], sections: [] }), "# \uffff\n");
});

const key = fc.stringMatching(/^[A-Za-z0-9_][A-Za-z0-9_.:@-]{0,15}$/);
const sectionName = fc.stringMatching(/^[A-Za-z0-9 _.:@-]{1,16}$/);

const commentLine = fc.tuple(fc.constantFrom("#", ";"), hostileString).map(([m, s]) => ({
  kind: "comment" as const,
  text: m + s.replace(/[\n\r\0]/g, "").toWellFormed(),
}));
const line: fc.Arbitrary<UnitLine> = fc.oneof(
  { weight: 4, arbitrary: fc.tuple(key, rawValue).map(([k, v]) => directive(k, v)) },
  { weight: 1, arbitrary: commentLine },
);
const unitFile: fc.Arbitrary<UnitFile> = record({
  header: fc.array(commentLine, { maxLength: 3 }),
  sections: fc.array(record({ name: sectionName, lines: fc.array(line, { maxLength: 8 }) }), {
    maxLength: 5,
  }),
});

Deno.test("property: parse(serialize(x)) deep-equals x for generated unit files", () => {
  fc.assert(
    fc.property(unitFile, (unit) => {
      assert.deepEqual(parseUnit(serializeUnit(unit)), unit);
    }),
    { numRuns: 2000 },
  );
});

Deno.test("property: hostile raw values either are refused or round-trip (never add a line)", () => {
  const hostileUnit = record({
    header: fc.constant<UnitLine[]>([]),
    sections: fc.array(
      record({
        name: hostileString,
        lines: fc.array(fc.tuple(key, hostileString).map(([k, v]) => directive(k, v)), {
          maxLength: 4,
        }),
      }),
      { maxLength: 3 },
    ),
  });
  let refused = 0;
  fc.assert(
    fc.property(hostileUnit, (unit) => {
      let text: string;
      try {
        text = serializeUnit(unit);
      } catch (e) {
        assert.ok(e instanceof UnitValueError, String(e));
        refused++;
        return;
      }
      assert.deepEqual(parseUnit(text), unit);
    }),
    { numRuns: 3000 },
  );
  console.log(`  ${refused} of 3000 hostile unit files refused, the rest round-tripped`);
});

Deno.test("real unit files of this machine keep every directive through serialize", async () => {
  let files = 0;
  let count = 0;
  for await (const entry of Deno.readDir("/lib/systemd/system")) {
    if (!/\.(service|socket|timer)$/.test(entry.name) || entry.isDirectory) continue;
    const text = await Deno.readTextFile(`/lib/systemd/system/${entry.name}`);
    const unit = parseUnit(text);
    const again = parseUnit(serializeUnit(unit));
    assert.deepEqual(directives(again), directives(unit), entry.name);
    assert.deepEqual(again, unit, entry.name);
    files++;
    count += directives(unit).length;
  }
  console.log(`  ${files} unit files, ${count} directives round-tripped`);
  assert.ok(files > 0, "no unit files found under /lib/systemd/system");
});
