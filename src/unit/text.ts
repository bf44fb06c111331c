/**
 * Character classes systemd checks, shared by the codec and the escaping functions.
 *
 * @module
 */

/** An ASCII control character (C0 or DEL), as `string_has_cc()` sees it. */
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
