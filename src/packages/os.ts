/**
 * Which operating system the node runs, from `/etc/os-release`, to decide whether package
 * images can be installed with apt. Decided by `ID` and `ID_LIKE` (the original systemk read
 * `VERSION_ID` and so never installed anything on Debian).
 *
 * @module
 */

/** The fields of os-release(5) systemk uses. */
export interface OsRelease {
  /** Lower-case distribution id, e.g. `debian`, `ubuntu`; `linux` when unset (os-release(5)). */
  id: string;
  /** Ids of the distributions this one derives from, closest first. */
  idLike: string[];
  versionId?: string;
  prettyName: string;
}

/**
 * Parses os-release(5) text: `KEY=value` lines, values optionally in single or double quotes
 * with shell-style backslash escapes in double quotes; comments and blank lines ignored.
 *
 * @example Usage
 * ```ts
 * import assert from "node:assert/strict";
 * const os = parseOsRelease('ID=linuxmint\nID_LIKE="ubuntu debian"\n');
 * assert.deepEqual(os.idLike, ["ubuntu", "debian"]);
 * ```
 */
export function parseOsRelease(text: string): OsRelease {
  const fields = new Map<string, string>();
  for (const line of text.split("\n")) {
    const m = /^\s*([A-Z0-9_]+)=(.*?)\s*$/.exec(line);
    if (m) fields.set(m[1], unquote(m[2]));
  }
  const id = fields.get("ID") || "linux";
  return {
    id,
    idLike: (fields.get("ID_LIKE") ?? "").split(/\s+/).filter((s) => s !== ""),
    ...(fields.has("VERSION_ID") ? { versionId: fields.get("VERSION_ID") } : {}),
    prettyName: fields.get("PRETTY_NAME") || fields.get("NAME") || id,
  };
}

function unquote(raw: string): string {
  if (raw.length >= 2 && raw.startsWith("'") && raw.endsWith("'")) return raw.slice(1, -1);
  if (raw.length >= 2 && raw.startsWith('"') && raw.endsWith('"')) {
    return raw.slice(1, -1).replace(/\\([\\"$`])/g, "$1");
  }
  return raw;
}

/**
 * Whether apt and dpkg are the native package tools: Debian, Ubuntu, and everything that
 * names one of them in `ID_LIKE` (Mint, Raspberry Pi OS, Pop!_OS, Kali, ...).
 *
 * @example Usage
 * ```ts
 * import assert from "node:assert/strict";
 * assert.equal(isDebianLike(parseOsRelease("ID=debian\n")), true);
 * assert.equal(isDebianLike(parseOsRelease("ID=fedora\n")), false);
 * ```
 */
export function isDebianLike(os: OsRelease): boolean {
  return [os.id, ...os.idLike].some((id) => id === "debian" || id === "ubuntu");
}

/**
 * Reads os-release below `root` (`""` for this host): `/etc/os-release`, falling back to
 * `/usr/lib/os-release` as os-release(5) asks; an unknown Linux when neither exists.
 */
export async function readOsRelease(root = ""): Promise<OsRelease> {
  for (const path of ["/etc/os-release", "/usr/lib/os-release"]) {
    try {
      return parseOsRelease(await Deno.readTextFile(root + path));
    } catch (e) {
      if (!(e instanceof Deno.errors.NotFound)) throw e;
    }
  }
  return parseOsRelease("");
}
