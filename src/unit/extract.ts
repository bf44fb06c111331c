/**
 * How systemd 252 reads words out of a raw setting value: a port of `extract_first_word()`
 * (src/basic/extract-word.c), `cunescape_one()` (src/basic/escape.c) and `specifier_printf()`
 * (src/shared/specifier.c). It works on UTF-8 bytes like the C code, so `\xNN` escapes and
 * multi-byte characters behave exactly as in systemd.
 *
 * This is the *reading* side, used by the reference decoders; it is strict: where systemd
 * would only warn (an unknown escape it then keeps verbatim) or refuse, it throws
 * {@link UnitValueError}, so a decoder succeeding means systemd reads the value cleanly.
 *
 * @module
 */
import { UnitValueError } from "./errors.ts";
import { findNoncharacter, isNoncharacter } from "./text.ts";

/** systemd's WHITESPACE set, the default word separators. */
export const WHITESPACE = " \t\n\r";

const utf8 = new TextEncoder();
// ignoreBOM: a U+FEFF inside a word is data, not a byte order mark to drop.
const strictUtf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

/** Options of `extract_first_word()`. */
export interface ExtractOptions {
  /** `EXTRACT_UNQUOTE`: quotes group characters and are removed (default true). */
  unquote?: boolean;
  /** Characters that end a word (default {@link WHITESPACE}). */
  separators?: string;
  /** `EXTRACT_CUNESCAPE`: backslash starts a C escape (`\n`, `\x41`, `\u00e9`, ...). */
  cunescape?: boolean;
  /** `EXTRACT_UNESCAPE_SEPARATORS`: a backslash may escape a separator or a backslash. */
  unescapeSeparators?: boolean;
  /** `EXTRACT_DONT_COALESCE_SEPARATORS`: every separator ends a (possibly empty) word. */
  dontCoalesce?: boolean;
}

/** One extracted word and the separator that ended it (`undefined` at the end of the value). */
export interface ExtractedWord {
  /** The word, quotes and escapes removed. */
  word: string;
  /** The separator character after it. */
  endedBy: string | undefined;
}

/**
 * A position in a raw value, advanced word by word like systemd's `const char **p`.
 *
 * @example
 * ```ts
 * const words = new WordReader('"a b" c');
 * words.next(); // { word: "a b", endedBy: " " }
 * words.next(); // { word: "c", endedBy: undefined }
 * words.next(); // undefined
 * ```
 */
export class WordReader {
  readonly #bytes: Uint8Array;
  /** Index of the next byte; `undefined` once systemd's pointer would be NULL. */
  #pos: number | undefined = 0;

  /** Reads `raw`; throws {@link UnitValueError} where systemd would refuse the whole line. */
  constructor(raw: string) {
    if (!raw.isWellFormed()) throw new UnitValueError("value is not valid Unicode");
    const noncharacter = findNoncharacter(raw);
    if (noncharacter) {
      throw new UnitValueError(`value holds ${noncharacter}: systemd refuses the line`);
    }
    this.#bytes = utf8.encode(raw);
  }

  /** The unread rest of the value (what systemd's `p` points at); empty when none is left. */
  get rest(): string {
    return this.#pos === undefined ? "" : decodeUtf8(this.#bytes.subarray(this.#pos));
  }

  /** Skips `n` bytes and then any whitespace (the `p += ...; p += strspn(p, WHITESPACE)` idiom). */
  skip(n: number): void {
    if (this.#pos === undefined) return;
    let pos = this.#pos + n;
    while (pos < this.#bytes.length && WHITESPACE.includes(String.fromCharCode(this.#bytes[pos]))) {
      pos++;
    }
    this.#pos = pos;
  }

  /** `extract_first_word()`: the next word, or undefined when there is none. */
  next(options: ExtractOptions = {}): ExtractedWord | undefined {
    const separators = options.separators ?? WHITESPACE;
    const bytes = this.#bytes;
    const at = (i: number) => (i < bytes.length ? bytes[i] : 0);
    const isSeparator = (c: number) =>
      c !== 0 && c < 0x80 && separators.includes(String.fromCharCode(c));
    const finish = (word: number[] | undefined, endedBy?: number): ExtractedWord | undefined => {
      if (word === undefined) return undefined;
      const decoded = decodeUtf8(new Uint8Array(word));
      return {
        word: decoded,
        endedBy: endedBy === undefined ? undefined : String.fromCharCode(endedBy),
      };
    };

    if (this.#pos === undefined) return undefined;
    let pos = this.#pos;
    let word: number[] | undefined = options.dontCoalesce ? [] : undefined;

    // Leading separators.
    for (;; pos++) {
      const c = at(pos);
      if (c === 0) {
        this.#pos = undefined;
        return finish(word);
      }
      if (!isSeparator(c)) break;
      if (options.dontCoalesce) {
        this.#pos = pos + 1;
        return finish(word, c);
      }
    }
    word = [];

    let quote = 0;
    let backslash = false;
    for (;; pos++) {
      const c = at(pos);
      if (backslash) {
        if (c === 0) throw new UnitValueError("value ends in a lone backslash");
        if (options.cunescape) {
          const escape = cunescapeOne(bytes, pos);
          pos += escape.length - 1;
          word.push(...escape.bytes);
        } else if (options.unescapeSeparators) {
          if (!isSeparator(c) && c !== 0x5c) {
            throw new UnitValueError(`invalid escape "\\${String.fromCharCode(c)}"`);
          }
          word.push(c);
        } else {
          word.push(c);
        }
        backslash = false;
      } else if (quote !== 0) {
        if (c === 0) throw new UnitValueError("unbalanced quotes");
        if (c === quote) quote = 0;
        else if (c === 0x5c) backslash = true;
        else word.push(c);
      } else if (c === 0) {
        this.#pos = undefined;
        return finish(word);
      } else if ((c === 0x22 || c === 0x27) && options.unquote !== false) {
        quote = c;
      } else if (c === 0x5c) {
        backslash = true;
      } else if (isSeparator(c)) {
        if (options.dontCoalesce) {
          this.#pos = pos + 1;
          return finish(word, c);
        }
        while (isSeparator(at(pos + 1))) pos++;
        this.#pos = at(pos + 1) === 0 ? undefined : pos + 1;
        return finish(word, c);
      } else {
        word.push(c);
      }
    }
  }

  /** The byte at offset `i` from the current position (0 past the end), for look-ahead. */
  peek(i = 0): number {
    if (this.#pos === undefined) return 0;
    const j = this.#pos + i;
    return j < this.#bytes.length ? this.#bytes[j] : 0;
  }
}

function decodeUtf8(bytes: Uint8Array): string {
  try {
    return strictUtf8.decode(bytes);
  } catch {
    throw new UnitValueError("word is not valid UTF-8");
  }
}

const HEX = /^[0-9a-fA-F]+$/;

/**
 * `cunescape_one()` at `bytes[pos]` (the byte after the backslash): the bytes it stands for and
 * how many input bytes it used. Unknown escapes and NUL throw (systemd warns and keeps them).
 */
function cunescapeOne(bytes: Uint8Array, pos: number): { bytes: number[]; length: number } {
  const text = (n: number) => String.fromCharCode(...bytes.subarray(pos + 1, pos + 1 + n));
  const simple: Record<string, number> = {
    a: 7,
    b: 8,
    f: 12,
    n: 10,
    r: 13,
    t: 9,
    v: 11,
    "\\": 0x5c,
    '"': 0x22,
    "'": 0x27,
    s: 0x20,
  };
  const c = String.fromCharCode(bytes[pos]);
  const fail = (why: string): never => {
    throw new UnitValueError(`invalid escape "\\${c}${text(3)}": ${why}`);
  };
  if (c in simple) return { bytes: [simple[c]], length: 1 };
  const hex = (n: number) => {
    const digits = text(n);
    if (digits.length !== n || !HEX.test(digits)) fail("bad hex digits");
    return parseInt(digits, 16);
  };
  if (c === "x") {
    const b = hex(2);
    if (b === 0) fail("NUL is not allowed");
    return { bytes: [b], length: 3 }; // a raw byte ("eight_bit"), not a code point
  }
  if (c === "u" || c === "U") {
    const cp = hex(c === "u" ? 4 : 8);
    if (cp === 0) fail("NUL is not allowed");
    if (cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) fail("not a Unicode scalar value");
    // systemd checks `unichar_is_valid()` for \U only; \u passes noncharacters through.
    if (c === "U" && isNoncharacter(cp)) fail("a noncharacter");
    return { bytes: [...utf8.encode(String.fromCodePoint(cp))], length: c === "u" ? 5 : 9 };
  }
  if (c >= "0" && c <= "7") {
    const digits = String.fromCharCode(bytes[pos]) + text(2);
    if (!/^[0-7]{3}$/.test(digits)) fail("bad octal digits");
    const b = parseInt(digits, 8);
    if (b === 0) fail("NUL is not allowed");
    if (b > 255) fail("octal escape above 255");
    return { bytes: [b], length: 3 };
  }
  return fail("unknown escape");
}

/**
 * `specifier_printf()` for a value whose only specifier may be `%%`: resolves `%%` to `%` (and a
 * trailing lone `%` to itself, as systemd does); any other `%x` depends on the unit, so it throws.
 *
 * @example
 * ```ts
 * resolvePercentEscapes("100%%"); // "100%"
 * ```
 */
export function resolvePercentEscapes(word: string): string {
  return word.replace(/%(.?)/gsu, (_m, next: string) => {
    if (next === "%" || next === "") return "%";
    throw new UnitValueError(`specifier %${next} depends on the unit`);
  });
}
