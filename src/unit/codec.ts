/**
 * Parsing and serializing systemd unit files, following systemd 252's `config_parse()`
 * (src/shared/conf-parser.c) line by line:
 *
 * - a physical line ends at `\n`, `\r`, `\r\n` or NUL (`read_line()`);
 * - a line whose first non-blank character is `#` or `;` is a comment — even in the middle of a
 *   continuation, where it is skipped and the continuation goes on after it;
 * - a line ending in an odd number of backslashes continues on the next line, the last
 *   backslash replaced by a space (the next line is appended with its leading blanks);
 * - the joined logical line is stripped of blanks; `[Name]` starts a section; `Key=value` is an
 *   assignment with blanks around `=` dropped; other lines are ignored (systemd warns).
 *
 * Values stay raw (see types.ts): what systemd hands to the setting's own parser.
 *
 * @module
 */
import { UnitValueError } from "./errors.ts";
import { findNoncharacter, isSafeString, trailingBackslashes } from "./text.ts";
import type { UnitFile, UnitLine, UnitSection } from "./types.ts";

/** systemd's WHITESPACE set, stripped around lines, keys and values. */
const BLANKS = " \t\n\r";
const COMMENT_MARKERS = "#;";
const BYTE_ORDER_MARK = "\uFEFF";

/** The `read_line()` line terminators, longest first. */
const LINE_BREAK = /\r\n\0|\r\n|\n\0|\r\0|\n|\r|\0/;

/** Keys this codec writes: systemd's own are alphanumeric, `X-` extensions add `-`. */
const KEY = /^[A-Za-z0-9_][A-Za-z0-9_.:@-]*$/;

function stripStart(s: string): string {
  let i = 0;
  while (i < s.length && BLANKS.includes(s[i])) i++;
  return s.slice(i);
}

function strip(s: string): string {
  let end = s.length;
  while (end > 0 && BLANKS.includes(s[end - 1])) end--;
  return stripStart(s.slice(0, end));
}

/**
 * Parses unit file text the way systemd does. Lines systemd ignores with a warning (no `=`,
 * empty key, an assignment before the first section) are dropped; comments found inside a
 * continuation are kept, placed before the directive they interrupted. Where systemd refuses the
 * whole file — a section header `[Name` without `]` or with quotes/backslashes/control characters
 * in the name, a Unicode noncharacter (U+FFFF ...) in a non-comment line — it throws
 * {@link UnitValueError}.
 *
 * @example
 * ```ts
 * const unit = parseUnit("[Service]\nExecStart=/bin/true \\\n  --flag\n");
 * // unit.sections[0].lines[0] → { kind: "directive", key: "ExecStart", value: "/bin/true   --flag" }
 * ```
 */
export function parseUnit(text: string): UnitFile {
  const unit: UnitFile = { header: [], sections: [] };
  let section: UnitSection | undefined;
  let continuation: string | undefined;
  let pendingComments: UnitLine[] = [];
  let byteOrderMarkSeen = false;
  let lineNumber = 0;

  const target = (): UnitLine[] => section?.lines ?? unit.header;

  const logicalLine = (raw: string) => {
    const line = strip(raw);
    target().push(...pendingComments);
    pendingComments = [];
    if (line === "") return;
    const noncharacter = findNoncharacter(line);
    if (noncharacter) {
      throw new UnitValueError(
        `line ${lineNumber}: ${noncharacter} is not UTF-8 clean for systemd, which refuses the file`,
      );
    }
    if (line.startsWith("[")) {
      if (!line.endsWith("]") || line.length < 2) {
        throw new UnitValueError(
          `line ${lineNumber}: invalid section header ${JSON.stringify(line)}`,
        );
      }
      const name = line.slice(1, -1);
      if (!isSafeString(name)) {
        throw new UnitValueError(`line ${lineNumber}: bad characters in section header ${line}`);
      }
      section = { name, lines: [] };
      unit.sections.push(section);
      return;
    }
    const eq = line.indexOf("=");
    // systemd ignores these lines with a warning; so do we (they carry no setting).
    if (!section || eq <= 0) return;
    section.lines.push({
      kind: "directive",
      key: strip(line.slice(0, eq)),
      value: strip(line.slice(eq + 1)),
    });
  };

  const physical = text.split(LINE_BREAK);
  // A final terminator does not start another line.
  if (physical.length > 1 && physical[physical.length - 1] === "") physical.pop();
  for (const buf of physical) {
    lineNumber++;
    const trimmed = stripStart(buf);
    if (trimmed !== "" && COMMENT_MARKERS.includes(trimmed[0])) {
      const comment: UnitLine = { kind: "comment", text: trimmed };
      if (continuation === undefined) target().push(comment);
      else pendingComments.push(comment);
      continue;
    }
    let l = buf;
    if (!byteOrderMarkSeen && l.startsWith(BYTE_ORDER_MARK)) {
      l = l.slice(1);
      byteOrderMarkSeen = true;
    }
    // The text before `l` always ends unescaped (its continuation backslash became a space),
    // so the parity of `l`'s own trailing backslashes decides.
    if (trailingBackslashes(l) % 2 === 1) {
      continuation = (continuation ?? "") + l.slice(0, -1) + " ";
      continue;
    }
    logicalLine((continuation ?? "") + l);
    continuation = undefined;
  }
  if (continuation !== undefined) logicalLine(continuation);
  target().push(...pendingComments);
  return unit;
}

function checkLineText(what: string, s: string, { inComment = false } = {}): void {
  if (s.includes("\0")) throw new UnitValueError(`${what} contains a NUL byte`);
  if (/[\n\r]/.test(s)) throw new UnitValueError(`${what} contains a line break`);
  if (!s.isWellFormed()) {
    throw new UnitValueError(
      `${what} contains a lone UTF-16 surrogate (not representable in UTF-8)`,
    );
  }
  // Comments are skipped before systemd's UTF-8 check; every other line is checked.
  const noncharacter = inComment ? undefined : findNoncharacter(s);
  if (noncharacter) {
    throw new UnitValueError(
      `${what} contains ${noncharacter}, which makes systemd refuse the file`,
    );
  }
}

function serializeLine(line: UnitLine, where: string): string {
  if (line.kind === "comment") {
    checkLineText(`comment ${where}`, line.text, { inComment: true });
    if (!COMMENT_MARKERS.includes(line.text[0] ?? "")) {
      throw new UnitValueError(
        `comment ${where} must start with '#' or ';': ${JSON.stringify(line.text)}`,
      );
    }
    return line.text;
  }
  const { key, value } = line;
  if (!KEY.test(key)) throw new UnitValueError(`invalid key ${JSON.stringify(key)} ${where}`);
  const what = `value of ${key}= ${where}`;
  checkLineText(what, value);
  if (value !== strip(value)) {
    throw new UnitValueError(`${what} starts or ends with whitespace, which systemd strips`);
  }
  if (trailingBackslashes(value) % 2 === 1) {
    throw new UnitValueError(`${what} ends in a backslash, which would continue the line`);
  }
  return `${key}=${value}`;
}

/**
 * Serializes a unit file: header comments, then each section (a blank line between them) with
 * its lines in order, one per line, `\n` terminated. Comments are written verbatim and must start
 * with `#` or `;` (their text includes the marker, as {@link parseUnit} returns it).
 *
 * Throws {@link UnitValueError} for anything systemd would read back differently: a NUL or line
 * break anywhere, a lone surrogate, a Unicode noncharacter outside comments (systemd 252 then
 * refuses the whole file), a key outside `[A-Za-z0-9_][A-Za-z0-9_.:@-]*`, a section name
 * that is empty or holds `[`, `]`, quotes, backslashes or control characters, a value with blanks
 * at either end (stripped by systemd), a value ending in an odd number of backslashes (a line
 * continuation), or a directive in the header (systemd ignores assignments outside a section).
 *
 * @example
 * ```ts
 * serializeUnit({
 *   header: [{ kind: "comment", text: "# written by systemk" }],
 *   sections: [{ name: "Service", lines: [{ kind: "directive", key: "ExecStart", value: "/bin/true" }] }],
 * }); // "# written by systemk\n\n[Service]\nExecStart=/bin/true\n"
 * ```
 */
export function serializeUnit(unit: UnitFile): string {
  const out: string[] = [];
  for (const line of unit.header) {
    if (line.kind !== "comment") {
      throw new UnitValueError(`directive ${line.key}= outside of any section`);
    }
    out.push(serializeLine(line, "in the header"));
  }
  for (const section of unit.sections) {
    const name = section.name;
    checkLineText("section name", name);
    if (name === "" || /[[\]]/.test(name) || !isSafeString(name)) {
      throw new UnitValueError(`invalid section name ${JSON.stringify(name)}`);
    }
    if (out.length > 0) out.push("");
    out.push(`[${name}]`);
    for (const line of section.lines) out.push(serializeLine(line, `in [${name}]`));
  }
  return out.length === 0 ? "" : out.join("\n") + "\n";
}

/**
 * A comment line with `text` after `# `.
 *
 * @example
 * ```ts
 * comment("managed by systemk"); // { kind: "comment", text: "# managed by systemk" }
 * ```
 */
export function comment(text: string): UnitLine {
  checkLineText("comment", text, { inComment: true });
  return { kind: "comment", text: text === "" ? "#" : `# ${text}` };
}
