/**
 * Turning intended strings (argv words, environment values, paths) into raw unit-file values
 * that systemd 252 reads back exactly, and reference decoders that read raw values the way
 * systemd does (built on the {@link WordReader} port of systemd's word splitting, not by
 * inverting the encoders).
 *
 * Rules, from systemd 252's sources:
 * - `ExecStart=` (load-fragment.c `config_parse_exec`): words split with
 *   `EXTRACT_UNQUOTE|EXTRACT_CUNESCAPE`; the prefixes `-@:+!` are stripped from the *unquoted*
 *   first word, and a first word equal to `;` (even quoted) separates commands; the executable
 *   must pass `string_is_safe()` (no quotes, backslashes, control characters) and be a plain
 *   file name or a valid absolute path; then `%` specifiers are resolved in every word. At start
 *   time `$VAR`/`${VAR}` are expanded unless the `:` prefix is given (`$$` gives `$`; a word
 *   that is exactly `$NAME` is replaced by the variable's words). We write `:` by default — it
 *   also keeps the executable path and argv[0] identical (the path is never `$`-expanded);
 *   "expandable" command lines double every `$` instead.
 * - `Environment=` (`config_parse_environ`): the same word splitting, then `%` specifiers; each
 *   word must be `NAME=value` with NAME in `[A-Za-z_][A-Za-z0-9_]*` and the value valid UTF-8
 *   (control characters allowed, `env_value_is_valid()`). No `$` expansion.
 * - Path lists (`ReadOnlyPaths=` ...: `config_parse_namespace_path_strv`): `EXTRACT_UNQUOTE`
 *   only (a backslash takes the next character literally), then specifiers, then
 *   `path_simplify_and_warn()` (absolute, no `..`, length limits).
 * - `BindPaths=`: `EXTRACT_UNQUOTE|EXTRACT_DONT_COALESCE_SEPARATORS` with separators `:` and
 *   whitespace; inside quotes `:` and blanks are literal. systemd 252 lets a backslash take any
 *   next character (measured: `/a\q` is `/aq`); later versions add
 *   `EXTRACT_UNESCAPE_SEPARATORS`, which allows only separators and backslashes after one. We
 *   only escape backslashes, valid under both; the decoder accepts only the stricter form.
 * - Lines and values: systemd 252 refuses Unicode noncharacters (U+FDD0–U+FDEF, U+xFFFE/xFFFF)
 *   in unit-file lines, environment values and paths (`utf8_is_valid()`); in argv words they
 *   are written as `\xNN` bytes, which are not checked.
 * - `WorkingDirectory=`: the whole rest of the line, unquoted, specifiers resolved.
 *
 * @module
 */
import { UnitValueError } from "./errors.ts";
import { resolvePercentEscapes, WHITESPACE, WordReader } from "./extract.ts";
import { findNoncharacter, isAsciiControl, isSafeString, trailingBackslashes } from "./text.ts";

const utf8 = new TextEncoder();
const PATH_MAX = 4096;
const NAME_MAX = 255;
const EXEC_PREFIXES = "-@:+!";

function byteLength(s: string): number {
  return utf8.encode(s).length;
}

/** NUL and lone surrogates cannot be written into any unit file value. */
function checkRepresentable(what: string, s: string): void {
  if (s.includes("\0")) {
    throw new UnitValueError(`${what} contains a NUL byte, which systemd cannot pass`);
  }
  if (!s.isWellFormed()) {
    throw new UnitValueError(
      `${what} contains a lone UTF-16 surrogate (not representable in UTF-8)`,
    );
  }
  // systemd 252 would run such a word (written as \xNN bytes), but then cannot report the
  // unit's properties over D-Bus (sd-bus refuses the string), so the pod could never be watched.
  const noncharacter = findNoncharacter(s);
  if (noncharacter) {
    throw new UnitValueError(`${what} contains ${noncharacter}, which systemd cannot report back`);
  }
}

/**
 * Escapes `%` as `%%`, for values systemd resolves specifiers in (`ExecStart=`, `Environment=`,
 * paths, `Description=` ...).
 *
 * @example
 * ```ts
 * escapeSpecifiers("100%"); // "100%%"
 * ```
 */
export function escapeSpecifiers(value: string): string {
  return value.replaceAll("%", "%%");
}

/** Characters written as `\uNNNN` although UTF-8 would do: invisible ones, for readable files. */
const INVISIBLE = /[\u0080-\u009f\u2028\u2029]/;

/**
 * The inside of a double-quoted word read with `EXTRACT_CUNESCAPE`, specifiers escaped unless
 * `specifiers` keeps them (text already holding `%` specifiers, to be resolved as written).
 */
function cEscaped(s: string, specifiers = false): string {
  let out = "";
  for (const ch of s) {
    const cp = ch.codePointAt(0)!;
    if (ch === "\\") out += "\\\\";
    else if (ch === '"') out += '\\"';
    else if (ch === "\n") out += "\\n";
    else if (ch === "\t") out += "\\t";
    else if (ch === "\r") out += "\\r";
    else if (isAsciiControl(ch)) out += "\\x" + cp.toString(16).padStart(2, "0");
    else if (INVISIBLE.test(ch)) out += "\\u" + cp.toString(16).padStart(4, "0");
    else if (ch === "%" && !specifiers) out += "%%";
    else out += ch;
  }
  return out;
}

/**
 * What systemd requires of an executable (config_parse_exec): `string_is_safe()`, and a valid
 * file name or a valid absolute path not ending in `/`.
 */
function checkExecutable(path: string): void {
  const what = `executable ${JSON.stringify(path)}`;
  if (path === "") throw new UnitValueError("the executable (argv[0]) is empty");
  if (!isSafeString(path)) {
    throw new UnitValueError(`${what} contains quotes, backslashes or control characters`);
  }
  if (path.startsWith("/")) {
    if (byteLength(path) >= PATH_MAX) throw new UnitValueError(`${what} is too long`);
    if (path.split("/").some((c) => byteLength(c) > NAME_MAX)) {
      throw new UnitValueError(`${what} has a component longer than ${NAME_MAX} bytes`);
    }
    if (path.endsWith("/")) throw new UnitValueError(`${what} is a directory`);
  } else if (path.includes("/") || path === "." || path === ".." || byteLength(path) > NAME_MAX) {
    throw new UnitValueError(`${what} is neither a file name nor an absolute path`);
  }
}

/** The first word of one `Exec*=` command, as systemd 252 reads it. */
export interface ExecutableWord {
  /** Its prefixes (`-`, `@`, `:`, `+`, `!`, `!!`), in the order written. */
  prefixes: string;
  /** The rest: the executable, `%` specifiers unresolved. */
  executable: string;
}

/**
 * Reads the first word of an `Exec*=` command the way `config_parse_exec()` does: unquoted and
 * C-unescaped first — so `"+/bin/sh"` and `\x2b/bin/sh` carry the `+` prefix too — then the
 * prefixes taken off its start, each at most once (`!!` is `!` twice), as systemd takes them.
 *
 * Throws {@link UnitValueError} for a word systemd would warn about or refuse.
 *
 * @example
 * ```ts
 * readExecutableWord('"-+/usr/bin/install"'); // { prefixes: "-+", executable: "/usr/bin/install" }
 * ```
 */
export function readExecutableWord(raw: string): ExecutableWord {
  const word = new WordReader(raw).next({ cunescape: true })?.word ?? "";
  let prefixes = "";
  let i = 0;
  for (; i < word.length; i++) {
    const c = word[i];
    const plus = prefixes.includes("+");
    const bangs = prefixes.split("!").length - 1;
    const taken = (c === "-" || c === "@" || c === ":") && !prefixes.includes(c) ||
      c === "+" && !plus && bangs === 0 ||
      c === "!" && !plus && bangs < 2;
    if (!taken) break;
    prefixes += c;
  }
  return { prefixes, executable: word.slice(i) };
}

/**
 * The raw first word of an `Exec*=` command that systemd reads as exactly `prefixes` then
 * `executable` ({@link readExecutableWord} inverted): double-quoted and C-escaped, `%`
 * specifiers and `$` kept as they are.
 *
 * Throws {@link UnitValueError} for a NUL or lone surrogate.
 *
 * @example
 * ```ts
 * executableWord("-", "/usr/bin/install"); // '"-/usr/bin/install"'
 * ```
 */
export function executableWord(prefixes: string, executable: string): string {
  checkRepresentable("executable", executable);
  return `"${prefixes}${cEscaped(executable, true)}"`;
}

/** Options of {@link execCommandLine}. */
export interface ExecCommandOptions {
  /**
   * Leave `$VAR` expansion on (no `:` prefix) and write every `$` as `$$` instead, so that raw
   * words of another command line (a package's `$DAEMON_ARGS`) can be appended to this one and
   * still expand. argv[0] must then hold no `$` (systemd expands argv[0] but not the path it
   * executes). Default false: the `:` prefix, `$` written as is.
   */
  expandable?: boolean;
}

/**
 * An argv word: its text, or text and references to variables of the unit's environment that
 * systemd substitutes when the command starts (`${NAME}`, the whole value as part of the word),
 * so that the value itself is written nowhere but where the environment comes from.
 */
export type ExecArgument = string | readonly (string | { readonly variable: string })[];

/** Checks an argument's text and variable names. */
function checkArgument(what: string, arg: ExecArgument): void {
  for (const part of typeof arg === "string" ? [arg] : arg) {
    if (typeof part === "string") checkRepresentable(what, part);
    else checkEnvironmentName(part.variable);
  }
}

/** One argument word: double-quoted, C-escaped, `%` (and for expandable lines `$`) doubled. */
function execWord(arg: ExecArgument, expandable: boolean): string {
  const text = (s: string) => expandable ? cEscaped(s).replaceAll("$", () => "$$") : cEscaped(s);
  if (typeof arg === "string") return `"${text(arg)}"`;
  if (!expandable) {
    throw new UnitValueError("a variable reference needs a command line that expands them");
  }
  return `"${arg.map((p) => typeof p === "string" ? text(p) : `\${${p.variable}}`).join("")}"`;
}

/**
 * Raw `ExecStart=` (or `ExecStartPre=` ...) value that makes systemd run exactly `argv`: no `$`
 * expansion (the `:` prefix, or `$$` with {@link ExecCommandOptions.expandable}), no specifier
 * expansion (`%%`), every word double-quoted with C escapes, so spaces, quotes, backslashes,
 * `;`, control characters and any Unicode arrive as given. argv[0] is the executable (a file
 * name looked up in `PATH`, or an absolute path). Arguments holding variable references
 * ({@link ExecArgument}) need `expandable`.
 *
 * Throws {@link UnitValueError} for an empty argv, a NUL or lone surrogate anywhere, and an
 * argv[0] systemd cannot take: empty, starting with one of the prefixes `-@:+!` (systemd strips
 * them even from a quoted word), `;`, holding quotes/backslashes/control characters, a relative
 * path with `/`, or too long (and holding `$` when expandable).
 *
 * @example
 * ```ts
 * execCommandLine(["/bin/sh", "-c", 'echo "$HOME" 100%']);
 * // '":/bin/sh" "-c" "echo \\"$HOME\\" 100%%"'
 * execCommandLine(["/bin/echo", "$5"], { expandable: true }); // '"/bin/echo" "$$5"'
 * ```
 */
export function execCommandLine(
  argv: readonly ExecArgument[],
  options: ExecCommandOptions = {},
): string {
  const expandable = options.expandable ?? false;
  if (argv.length === 0) throw new UnitValueError("empty command line");
  argv.forEach((arg, i) => checkArgument(`argv[${i}]`, arg));
  const [executable, ...args] = argv;
  if (typeof executable !== "string") {
    throw new UnitValueError(
      "argv[0] refers to a variable, which systemd does not substitute in the executed path",
    );
  }
  if (EXEC_PREFIXES.includes(executable[0] ?? "")) {
    throw new UnitValueError(
      `argv[0] ${JSON.stringify(executable)} starts with '${executable[0]}', which systemd ` +
        "reads as a command prefix",
    );
  }
  if (executable === ";") throw new UnitValueError("argv[0] ';' is a command separator");
  checkExecutable(executable);
  if (expandable && executable.includes("$")) {
    throw new UnitValueError(
      `argv[0] ${JSON.stringify(executable)} holds '$', which systemd would expand in argv[0] ` +
        "but not in the path it executes",
    );
  }
  const first = `"${expandable ? "" : ":"}${cEscaped(executable)}"`;
  return [first, ...args.map((arg) => execWord(arg, expandable))].join(" ");
}

/**
 * Raw words passing exactly `args` when appended (after a space) to a command line that keeps
 * `$VAR` expansion on, such as a package's `ExecStart=` or {@link execCommandLine} with
 * `expandable`: each word double-quoted and C-escaped, `%` and `$` doubled. Empty for no args.
 *
 * Throws {@link UnitValueError} for a NUL or lone surrogate.
 *
 * @example
 * ```ts
 * execArguments(["--name", "a b", "$HOME"]); // '"--name" "a b" "$$HOME"'
 * ```
 */
export function execArguments(args: readonly ExecArgument[]): string {
  args.forEach((arg, i) => checkArgument(`argument ${i + 1}`, arg));
  return args.map((arg) => execWord(arg, true)).join(" ");
}

/** systemd's `env_name_is_valid()` (bash's rules). */
function checkEnvironmentName(name: string): void {
  if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name)) {
    throw new UnitValueError(
      `environment variable name ${JSON.stringify(name)} is invalid for systemd ` +
        "(letters, digits and '_', not starting with a digit)",
    );
  }
}

/** systemd's `env_value_is_valid()`: valid UTF-8 without noncharacters (controls are fine). */
function checkEnvironmentValue(name: string, value: string): void {
  const what = `value of environment variable ${name}`;
  checkRepresentable(what, value);
  const noncharacter = findNoncharacter(value);
  if (noncharacter) {
    throw new UnitValueError(`${what} contains ${noncharacter}, refused by systemd`);
  }
}

/**
 * Raw `Environment=` value that sets `name` to exactly `value` (one double-quoted,
 * C-escaped, specifier-escaped `NAME=value` word). Newlines, tabs and other control characters
 * in the value are kept.
 *
 * Throws {@link UnitValueError} for a name systemd rejects (anything but `[A-Za-z_][A-Za-z0-9_]*`),
 * and for a NUL, lone surrogate or Unicode noncharacter (U+FFFF ...) in the value.
 *
 * @example
 * ```ts
 * environmentAssignment("GREETING", 'say "hi"\n'); // '"GREETING=say \\"hi\\"\\n"'
 * ```
 */
export function environmentAssignment(name: string, value: string): string {
  checkEnvironmentName(name);
  checkEnvironmentValue(name, value);
  return `"${name}=${cEscaped(value)}"`;
}

/**
 * One line (without its line break) of a file read through `EnvironmentFile=` that sets `name`
 * to exactly `value`: `NAME="value"` with `"`, `\\`, `` ` `` and `$` backslash-escaped — inside
 * double quotes systemd's env-file parser (env-file.c) honours only those escapes and keeps
 * everything else literally, line breaks included. No `$` or `%` expansion happens.
 *
 * Throws {@link UnitValueError} where {@link environmentAssignment} does (for a value that is not
 * UTF-8 clean systemd refuses the whole file, and so fails the unit).
 *
 * @example
 * ```ts
 * environmentFileAssignment("TOKEN", 'a"b$c\nd'); // 'TOKEN="a\\"b\\$c\nd"'
 * ```
 */
export function environmentFileAssignment(name: string, value: string): string {
  checkEnvironmentName(name);
  checkEnvironmentValue(name, value);
  return `${name}="${value.replace(/["\\`$]/g, (c) => "\\" + c)}"`;
}

/**
 * systemd's `path_simplify_and_warn(PATH_CHECK_ABSOLUTE)`: the simplified path (duplicate and
 * trailing slashes and `.` components dropped), or an error where systemd refuses it.
 */
function simplifyAbsolutePath(path: string): string {
  const what = `path ${JSON.stringify(path)}`;
  checkRepresentable(what, path);
  if (/[\n\r]/.test(path)) throw new UnitValueError(`${what} contains a line break`);
  const noncharacter = findNoncharacter(path);
  if (noncharacter) {
    throw new UnitValueError(`${what} contains ${noncharacter}, refused by systemd`);
  }
  if (!path.startsWith("/")) throw new UnitValueError(`${what} is not absolute`);
  const components = path.split("/").filter((c) => c !== "" && c !== ".");
  if (components.includes("..")) throw new UnitValueError(`${what} contains '..'`);
  if (components.some((c) => byteLength(c) > NAME_MAX)) {
    throw new UnitValueError(`${what} has a component longer than ${NAME_MAX} bytes`);
  }
  const simplified = "/" + components.join("/");
  if (byteLength(simplified) >= PATH_MAX) throw new UnitValueError(`${what} is too long`);
  return simplified;
}

/** Whether a path must be quoted in a whitespace-separated list. */
function needsQuotes(path: string, specials: string): boolean {
  return [...path].some((ch) => isAsciiControl(ch) || specials.includes(ch) || /\s/.test(ch));
}

/** One word of a list read with `EXTRACT_UNQUOTE` only: double-quoted when needed. */
function listWord(text: string): string {
  if (!needsQuotes(text, `"'\\`)) return text;
  return `"${text.replace(/["\\]/g, (c) => "\\" + c)}"`;
}

/**
 * Raw value of one absolute path in a space-separated path list (`ReadOnlyPaths=`,
 * `ReadWritePaths=`, `InaccessiblePaths=` ...): simplified like systemd does, `%` escaped,
 * double-quoted when it holds blanks, quotes, backslashes or control characters. Join several
 * with a space. For `WorkingDirectory=`, which takes the whole rest of the line unquoted, use
 * {@link workingDirectoryValue}; for `TemporaryFileSystem=`, whose items carry `:options`, use
 * {@link temporaryFileSystemValue}.
 *
 * Throws {@link UnitValueError} for a relative path, `..`, NUL, a line break, a Unicode
 * noncharacter, or a path too long.
 *
 * @example
 * ```ts
 * pathValue("/srv/my data/"); // '"/srv/my data"'
 * ```
 */
export function pathValue(path: string): string {
  return listWord(escapeSpecifiers(simplifyAbsolutePath(path)));
}

/**
 * Raw value of one `TemporaryFileSystem=` item: a tmpfs at `path`, with mount `options` (such as
 * `mode=0755,size=10M`) after a `:`. systemd splits the item at `:` after unquoting, and eats
 * one more level of backslashes, so a path with `:` or `\` cannot be written.
 *
 * Throws {@link UnitValueError} where {@link pathValue} does, for `:` or `\` in the path, and
 * for options outside `[A-Za-z0-9_=,.+-]`.
 *
 * @example
 * ```ts
 * temporaryFileSystemValue("/var/lib/my app", "mode=0700"); // '"/var/lib/my app:mode=0700"'
 * ```
 */
export function temporaryFileSystemValue(path: string, options = ""): string {
  const simplified = simplifyAbsolutePath(path);
  if (/[:\\]/.test(simplified)) {
    throw new UnitValueError(
      `TemporaryFileSystem= path ${JSON.stringify(path)} holds ':' or '\\', which systemd splits`,
    );
  }
  if (!/^[A-Za-z0-9_=,.+-]*$/.test(options)) {
    throw new UnitValueError(`invalid tmpfs options ${JSON.stringify(options)}`);
  }
  return listWord(escapeSpecifiers(options === "" ? simplified : `${simplified}:${options}`));
}

/**
 * Raw `WorkingDirectory=` value for an absolute path: the simplified path with `%` escaped,
 * unquoted (systemd takes the whole rest of the line).
 *
 * Throws {@link UnitValueError} where {@link pathValue} does, and for a path ending in a blank
 * (systemd strips it from the line) or in an odd number of backslashes (a line continuation).
 *
 * @example
 * ```ts
 * workingDirectoryValue("/srv/my data"); // "/srv/my data"
 * ```
 */
export function workingDirectoryValue(path: string): string {
  const simplified = simplifyAbsolutePath(path);
  if (WHITESPACE.includes(simplified.at(-1)!)) {
    throw new UnitValueError(`working directory ${JSON.stringify(path)} ends in a blank`);
  }
  if (trailingBackslashes(simplified) % 2 === 1) {
    throw new UnitValueError(
      `working directory ${JSON.stringify(path)} ends in a backslash (a line continuation)`,
    );
  }
  return escapeSpecifiers(simplified);
}

/**
 * One `BindPaths=` word: inside double quotes `:` and blanks are literal and only a backslash
 * needs escaping; a `"` is written as `'"'` between quoted runs.
 */
function bindWord(path: string): string {
  const escaped = escapeSpecifiers(simplifyAbsolutePath(path));
  if (!needsQuotes(escaped, `:"'\\`)) return escaped;
  return escaped
    .split('"')
    .map((run) => (run === "" ? "" : `"${run.replaceAll("\\", "\\\\")}"`))
    .join(`'"'`);
}

/**
 * Raw value of one `BindPaths=`/`BindReadOnlyPaths=` entry mounting `source` at `destination`
 * (`source:destination`, each simplified, escaped and quoted as needed, so `:`, blanks and quotes
 * in paths are safe). Join several with a space.
 *
 * Throws {@link UnitValueError} for a relative path, `..`, NUL, a line break, a Unicode
 * noncharacter, or a path too long.
 *
 * @example
 * ```ts
 * bindPath("/var/lib/systemk/pods/1/volumes/data", "/data:x"); // '/var/lib/systemk/pods/1/volumes/data:"/data:x"'
 * ```
 */
export function bindPath(source: string, destination: string): string {
  return `${bindWord(source)}:${bindWord(destination)}`;
}

/**
 * Reference decoder: the argv systemd 252 runs for a raw `ExecStart=` value holding one command:
 * words as `config_parse_exec()` reads them, then (without the `:` prefix) `$$` → `$` and
 * `${NAME}` → the variable's value in `options.environment` (empty when unset) as at start time.
 * Strict: throws {@link UnitValueError} where systemd would warn or refuse, where the result
 * depends on the unit or an environment not given (specifiers other than `%%`, `$NAME` as a
 * whole word, `${NAME}` without `options.environment`, `$` in argv[0] without `:`), and for more
 * than one command (`;`).
 *
 * @example
 * ```ts
 * decodeExecCommandLine('":/bin/echo" "a b" "100%%"'); // ["/bin/echo", "a b", "100%"]
 * ```
 */
export function decodeExecCommandLine(
  raw: string,
  options: { environment?: ReadonlyMap<string, string> } = {},
): string[] {
  const words = new WordReader(raw);
  const first = words.next({ cunescape: true });
  if (first === undefined) throw new UnitValueError("empty ExecStart= value (a reset)");
  if (first.word === ";") throw new UnitValueError("command line starts with a ';' separator");

  let executable = first.word;
  let separateArgv0 = false;
  let expandEnvironment = true;
  while (EXEC_PREFIXES.includes(executable[0] ?? "")) {
    if (executable[0] === "@") separateArgv0 = true;
    if (executable[0] === ":") expandEnvironment = false;
    executable = executable.slice(1);
  }
  executable = resolvePercentEscapes(executable);
  checkExecutable(executable);

  const argv = separateArgv0 ? [] : [executable];
  const SEMICOLON = 0x3b;
  const isEnd = (c: number) => c === 0 || WHITESPACE.includes(String.fromCharCode(c));
  for (;;) {
    if (words.peek() === SEMICOLON && isEnd(words.peek(1))) {
      throw new UnitValueError("';' separates a second command");
    }
    if (words.peek() === 0x5c && words.peek(1) === SEMICOLON && isEnd(words.peek(2))) {
      argv.push(";");
      words.skip(2);
      continue;
    }
    const next = words.next({ cunescape: true });
    if (next === undefined) break;
    argv.push(resolvePercentEscapes(next.word));
  }
  if (argv.length === 0) throw new UnitValueError("no argv[0] after the '@' prefix");
  if (!expandEnvironment) return argv;
  if (!separateArgv0 && argv[0].includes("$")) {
    throw new UnitValueError("'$' in argv[0] is expanded, in the executed path it is not");
  }
  return argv.map((word) => expandAtStart(word, options.environment));
}

/**
 * systemd's start-time `replace_env_argv()` for one word: `$$` gives `$`, `${NAME}` the
 * variable's value (from `environment`; without it the word depends on an unknown environment,
 * so it throws), a `$` before anything else stays. A whole-word `$NAME` is split into several
 * words by systemd: it throws.
 */
function expandAtStart(word: string, environment?: ReadonlyMap<string, string>): string {
  if (word.startsWith("$") && word[1] !== "{" && word[1] !== "$") {
    throw new UnitValueError(`the word ${JSON.stringify(word)} is replaced by a variable`);
  }
  return word.replace(/\$(\$|\{[^}]*\}|)/g, (_m, next: string) => {
    if (!next.startsWith("{")) return "$";
    if (!environment) throw new UnitValueError(`${JSON.stringify(word)} reads a variable`);
    return environment.get(next.slice(1, -1)) ?? "";
  });
}

/**
 * Reference decoder: the `[name, value]` systemd 252 sets for a raw `Environment=` value
 * holding exactly one assignment. Strict like {@link decodeExecCommandLine}.
 *
 * @example
 * ```ts
 * decodeEnvironment('"A=x y\\n"'); // ["A", "x y\n"]
 * ```
 */
export function decodeEnvironment(raw: string): [string, string] {
  const words = new WordReader(raw);
  const first = words.next({ cunescape: true });
  if (first === undefined) throw new UnitValueError("empty Environment= value (a reset)");
  if (words.next({ cunescape: true }) !== undefined) {
    throw new UnitValueError("more than one assignment");
  }
  const assignment = resolvePercentEscapes(first.word);
  const eq = assignment.indexOf("=");
  if (eq < 0) {
    throw new UnitValueError(`no '=' in environment assignment ${JSON.stringify(assignment)}`);
  }
  const name = assignment.slice(0, eq);
  const value = assignment.slice(eq + 1);
  checkEnvironmentName(name);
  checkEnvironmentValue(name, value);
  return [name, value];
}

/**
 * Reference decoder: the paths systemd 252 reads from a raw path-list value (`ReadOnlyPaths=`
 * ...), simplified. Strict: throws for the `-`/`+` prefixes and anything systemd refuses.
 *
 * @example
 * ```ts
 * decodePathList('/usr "/srv/my data"'); // ["/usr", "/srv/my data"]
 * ```
 */
export function decodePathList(raw: string): string[] {
  const words = new WordReader(raw);
  const paths: string[] = [];
  for (let w = words.next(); w !== undefined; w = words.next()) {
    if (w.word.startsWith("-") || w.word.startsWith("+")) {
      throw new UnitValueError(`path ${JSON.stringify(w.word)} has a prefix`);
    }
    paths.push(simplifyAbsolutePath(resolvePercentEscapes(w.word)));
  }
  return paths;
}

/** One `TemporaryFileSystem=` item as systemd reads it. */
export interface TemporaryFileSystem {
  /** Where the tmpfs is mounted (simplified). */
  path: string;
  /** Mount options after the `:`, empty when none. */
  options: string;
}

/**
 * Reference decoder: the tmpfs mounts systemd 252 reads from a raw `TemporaryFileSystem=` value
 * (config_parse_temporary_filesystems: words unquoted, each split at its first `:` by a second
 * `extract_first_word()` without unquoting). Strict like the other decoders.
 *
 * @example
 * ```ts
 * decodeTemporaryFileSystems('/a "/b c:mode=0700"');
 * // [{ path: "/a", options: "" }, { path: "/b c", options: "mode=0700" }]
 * ```
 */
export function decodeTemporaryFileSystems(raw: string): TemporaryFileSystem[] {
  const words = new WordReader(raw);
  const mounts: TemporaryFileSystem[] = [];
  for (let w = words.next(); w !== undefined; w = words.next()) {
    const item = new WordReader(w.word);
    const path = item.next({ separators: ":", dontCoalesce: true, unquote: false });
    if (path === undefined) throw new UnitValueError("empty TemporaryFileSystem= item");
    const options = path.endedBy === ":" ? item.rest : "";
    mounts.push({ path: simplifyAbsolutePath(resolvePercentEscapes(path.word)), options });
  }
  return mounts;
}

/** One entry of `BindPaths=` as systemd reads it. */
export interface BindMount {
  /** Host path mounted (simplified). */
  source: string;
  /** Where it appears inside the unit (simplified). */
  destination: string;
  /** false for the `norbind` option. */
  recursive: boolean;
}

/**
 * Reference decoder: the bind mounts systemd 252 reads from a raw `BindPaths=` value
 * (config_parse_bind_paths). Strict: throws for the `-` prefix and anything systemd refuses.
 *
 * @example
 * ```ts
 * decodeBindPaths('/a:"/b c" /d');
 * // [{ source: "/a", destination: "/b c", recursive: true }, { source: "/d", destination: "/d", recursive: true }]
 * ```
 */
export function decodeBindPaths(raw: string): BindMount[] {
  const options = {
    separators: ":" + WHITESPACE,
    unescapeSeparators: true,
    dontCoalesce: true,
  };
  const words = new WordReader(raw);
  const mounts: BindMount[] = [];
  for (let w = words.next(options); w !== undefined; w = words.next(options)) {
    const sourceWord = resolvePercentEscapes(w.word);
    if (sourceWord.startsWith("-")) throw new UnitValueError("bind source has the '-' prefix");
    const source = simplifyAbsolutePath(sourceWord);
    let destination = source;
    let recursive = true;
    if (w.endedBy === ":") {
      const d = words.next(options);
      if (d === undefined || d.word === "") {
        throw new UnitValueError("missing destination after ':'");
      }
      destination = simplifyAbsolutePath(resolvePercentEscapes(d.word));
      if (d.endedBy === ":") {
        const o = words.next();
        if (o !== undefined && o.word === "norbind") recursive = false;
        else if (o !== undefined && o.word !== "rbind" && o.word !== "") {
          throw new UnitValueError(`invalid bind option ${JSON.stringify(o.word)}`);
        }
      }
    }
    mounts.push({ source, destination, recursive });
  }
  return mounts;
}
