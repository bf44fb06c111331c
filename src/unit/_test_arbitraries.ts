/**
 * fast-check arbitraries shared by the unit tests (and usable by later fuzz suites): strings
 * built to break escaping.
 *
 * @module
 */
import fc from "fast-check";
import { isNoncharacter, isSafeString } from "./text.ts";

/** Fragments that mean something to systemd, shells or the unit-file syntax. */
const NASTY = [
  "$",
  "$$",
  "${HOME}",
  "$HOME",
  "%",
  "%%",
  "%n",
  "%i",
  ";",
  " ; ",
  "\\;",
  '"',
  "'",
  "\\",
  "\\\\",
  "\n",
  "\r",
  "\t",
  "\0",
  "\x01",
  "\x1b",
  "\x7f",
  "\u0085",
  "\u00a0",
  "\u2028",
  "\uFEFF",
  "é",
  "😀",
  "\ud800",
  "\udfff",
  "\uffff",
  "\ufdd0",
  "\u{1fffe}",
  "[Service]",
  "\n[Unit]\nExecStart=/bin/evil",
  "ExecStart=",
  " ",
  "  ",
  "#",
  "=",
  ":",
  "-",
  "@",
  "+",
  "!",
  "\\x41",
  "\\n",
  "\\u00e9",
  "\\\n",
];

/**
 * Any string: full Unicode (lone surrogates included), ASCII controls, and fragments that mean
 * something to systemd (`$`, `%`, `;`, quotes, backslashes, `[Section]`, line breaks).
 */
export const hostileString: fc.Arbitrary<string> = fc
  .array(
    fc.oneof(
      { weight: 3, arbitrary: fc.constantFrom(...NASTY) },
      { weight: 3, arbitrary: fc.string({ unit: "binary", maxLength: 4 }) },
      {
        weight: 2,
        arbitrary: fc.string({
          unit: fc.integer({ min: 0, max: 0x7f }).map((c) => String.fromCharCode(c)),
          maxLength: 6,
        }),
      },
      {
        weight: 1,
        arbitrary: fc.string({
          unit: fc.integer({ min: 0, max: 0xffff }).map((c) => String.fromCharCode(c)),
          maxLength: 3,
        }),
      },
    ),
    { maxLength: 8 },
  )
  .map((parts) => parts.join(""));

/** Like {@link hostileString} but well-formed Unicode without NUL: what systemd can carry. */
export const representableString: fc.Arbitrary<string> = hostileString.map((s) =>
  s.replaceAll("\0", "").toWellFormed()
);

/**
 * Like {@link representableString} without Unicode noncharacters (U+FFFF ...), which systemd
 * refuses in unit-file lines, environment values and paths, and cannot report in argv words.
 */
export const cleanString: fc.Arbitrary<string> = representableString.map((s) =>
  [...s].filter((ch) => !isNoncharacter(ch.codePointAt(0)!)).join("")
);

/** A file name systemd accepts in an executable path (no quotes, backslashes, controls). */
export const safeFileName: fc.Arbitrary<string> = cleanString
  .map((s) => s.replaceAll("/", ""))
  .filter((s) =>
    s !== "" && s !== "." && s !== ".." && isSafeString(s) &&
    new TextEncoder().encode(s).length <= 200
  );

/**
 * Absolute paths with hostile components, not simplified (`//`, `.` and a trailing `/` occur);
 * without `..` and line breaks, which the encoders refuse.
 */
export const hostilePath: fc.Arbitrary<string> = fc
  .array(cleanString, { minLength: 1, maxLength: 4 })
  .map((parts) =>
    "/" + parts.map((p) => p.replace(/[\n\r/]/g, "").replace(/^\.\.$/, "x")).join("/")
  );

/** systemd's simplification of an absolute path: the meaning the encoders must keep. */
export function simplifyPath(path: string): string {
  return "/" + path.split("/").filter((c) => c !== "" && c !== ".").join("/");
}

/**
 * Raw values `serializeUnit` accepts: {@link cleanString} without line breaks, without blanks at
 * either end (systemd strips them) and not ending in an odd number of backslashes.
 */
export const rawValue: fc.Arbitrary<string> = cleanString.map((s) =>
  s.replace(/[\n\r]/g, "").replace(/^[ \t]+|[ \t]+$/g, "").replace(/(?<!\\)(\\\\)*\\$/, "$&x")
);
