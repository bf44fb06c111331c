/**
 * systemd's D-Bus object paths for units: `/org/freedesktop/systemd1/unit/<label>`, where the
 * label is the unit name with every byte that is not an ASCII letter or digit (and a leading
 * digit) written as `_xx` in lowercase hex (systemd's `bus_label_escape`).
 *
 * @module
 */

/** Object path prefix of all unit objects. */
export const UNIT_PATH_PREFIX = "/org/freedesktop/systemd1/unit/";

const HEX = "0123456789abcdef";

function isAsciiAlnum(byte: number): boolean {
  return (byte >= 0x30 && byte <= 0x39) || (byte >= 0x41 && byte <= 0x5a) ||
    (byte >= 0x61 && byte <= 0x7a);
}

/**
 * The object path of the unit `name`; systemd loads the unit when the path is first used.
 *
 * @example Usage
 * ```ts
 * import assert from "node:assert/strict";
 * assert.equal(
 *   unitObjectPath("systemk.default.web.nginx.service"),
 *   "/org/freedesktop/systemd1/unit/systemk_2edefault_2eweb_2enginx_2eservice",
 * );
 * ```
 */
export function unitObjectPath(name: string): string {
  const bytes = new TextEncoder().encode(name);
  if (bytes.length === 0) return `${UNIT_PATH_PREFIX}_`;
  let label = "";
  bytes.forEach((byte, i) => {
    const isDigit = byte >= 0x30 && byte <= 0x39;
    label += isAsciiAlnum(byte) && !(i === 0 && isDigit)
      ? String.fromCharCode(byte)
      : `_${HEX[byte >> 4]}${HEX[byte & 15]}`;
  });
  return UNIT_PATH_PREFIX + label;
}

/** The unit name behind a unit object path; undefined for other paths or malformed labels. */
export function unitNameFromObjectPath(path: string): string | undefined {
  if (!path.startsWith(UNIT_PATH_PREFIX)) return undefined;
  const label = path.slice(UNIT_PATH_PREFIX.length);
  if (label === "_") return "";
  const bytes: number[] = [];
  for (let i = 0; i < label.length; i++) {
    if (label[i] === "_") {
      const hex = label.slice(i + 1, i + 3);
      if (!/^[0-9a-f]{2}$/.test(hex)) return undefined;
      bytes.push(parseInt(hex, 16));
      i += 2;
    } else if (isAsciiAlnum(label.charCodeAt(i))) {
      bytes.push(label.charCodeAt(i));
    } else {
      return undefined;
    }
  }
  return new TextDecoder().decode(new Uint8Array(bytes));
}
