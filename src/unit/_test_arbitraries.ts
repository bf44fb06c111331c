/**
 * fast-check arbitraries shared by the unit tests (and usable by later fuzz suites): strings
 * built to break escaping.
 *
 * @module
 */
import fc from "fast-check";

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
