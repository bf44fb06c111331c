/** An account database file that follows changes. @module */

/**
 * `/etc/passwd` or `/etc/group`, parsed, and read again when a lookup misses and the file has
 * changed since: a package install creates its daemon's user (e.g. `prometheus`) after
 * systemk started, and its pod must find that user without a restart of systemk.
 */
export class AccountFile<T> {
  #parsed: T;
  #mtime: number | undefined;
  constructor(readonly path: string, readonly parse: (text: string) => T) {
    this.#mtime = this.#stamp();
    this.#parsed = parse(readOptionalSync(path));
  }

  /** The first match of `find`, reading the file again once if it changed since. */
  lookup<R>(find: (parsed: T) => R | undefined): R | undefined {
    const found = find(this.#parsed);
    if (found !== undefined) return found;
    const mtime = this.#stamp();
    if (mtime === this.#mtime) return undefined;
    this.#mtime = mtime;
    this.#parsed = this.parse(readOptionalSync(this.path));
    return find(this.#parsed);
  }

  #stamp(): number | undefined {
    try {
      return Deno.statSync(this.path).mtime?.getTime();
    } catch {
      return undefined;
    }
  }
}

/** The text of file `path`, or `""` when it does not exist. */
export function readOptionalSync(path: string): string {
  try {
    return Deno.readTextFileSync(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return "";
    throw e;
  }
}
