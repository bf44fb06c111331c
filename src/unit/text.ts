/**
 * Character classes systemd checks, shared by the codec and the escaping functions.
 *
 * @module
 */

/**
 * An ASCII control character (C0 or DEL), as `string_has_cc()` sees it.
 *
 * @example
 * ```ts
 * isAsciiControl("\t"); // true
 * isAsciiControl("\u0085"); // false
 * ```
 */
export function isAsciiControl(ch: string): boolean {
  const cp = ch.codePointAt(0)!;
  return cp < 0x20 || cp === 0x7f;
}

/**
 * systemd's `string_is_safe()`: no ASCII control characters, quotes or backslashes. Required of
 * section names and executables.
 *
 * @example
 * ```ts
 * isSafeString("Service"); // true
 * isSafeString('a"b'); // false
 * ```
 */
export function isSafeString(s: string): boolean {
  for (const ch of s) {
    if (isAsciiControl(ch) || ch === '"' || ch === "'" || ch === "\\") return false;
  }
  return true;
}

/**
 * How many backslashes `s` ends with; an odd number makes systemd join the next line.
 *
 * @example
 * ```ts
 * trailingBackslashes("a\\\\"); // 2
 * ```
 */
export function trailingBackslashes(s: string): number {
  let n = 0;
  while (n < s.length && s[s.length - 1 - n] === "\\") n++;
  return n;
}

/**
 * A Unicode noncharacter (U+FDD0–U+FDEF, U+xFFFE, U+xFFFF). systemd's `utf8_is_valid()` refuses
 * them (`unichar_is_valid()`): one in any non-comment line makes systemd 252 refuse the whole
 * unit file ("String is not UTF-8 clean"), and one in an environment value or path is refused.
 *
 * @example
 * ```ts
 * isNoncharacter(0xffff); // true
 * isNoncharacter(0xfffd); // false
 * ```
 */
export function isNoncharacter(cp: number): boolean {
  return (cp >= 0xfdd0 && cp <= 0xfdef) || (cp & 0xfffe) === 0xfffe;
}

/**
 * The first noncharacter in `s` as `U+XXXX`, or undefined.
 *
 * @example
 * ```ts
 * findNoncharacter("a\uffffb"); // "U+FFFF"
 * ```
 */
export function findNoncharacter(s: string): string | undefined {
  for (const ch of s) {
    const cp = ch.codePointAt(0)!;
    if (isNoncharacter(cp)) return "U+" + cp.toString(16).toUpperCase().padStart(4, "0");
  }
  return undefined;
}
