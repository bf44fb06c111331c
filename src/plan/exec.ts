/**
 * What a container runs: `ExecStart=` from the seed's rules, and which settings of a package's
 * own unit file systemk keeps.
 *
 * Rules (the seed's, made precise):
 * - package unit, no `command`/`args` → its `ExecStart=` lines reused verbatim (raw, so `$ARGS`
 *   from its `EnvironmentFile=` still expands);
 * - `command` → replaces the first word, the package's options (raw) kept;
 * - `args` → replace every word after the first;
 * - both → the whole command line is `command + args`;
 * - no package unit (no package, package without unit, `/abs/path` image) → synthesized unit,
 *   `command` required.
 *
 * Prefixes of the package's first word (`-`, `@`, `+`, `!`, `!!`, `:`, read as systemd reads
 * them: from the word unquoted and unescaped) are removed: `-` would hide the exit status the
 * pod reports; `+`/`!`/`!!` would run outside the sandbox or as root despite `securityContext`,
 * with the pod's environment (`LD_PRELOAD`, `PATH`); `@` (argv[0] override) is dropped along
 * with its argv[0] word; `:` (no `$VAR` expansion) is replaced by doubling `$` in the kept
 * words, so they mean the same next to words systemk encodes. Lines fully built by systemk
 * carry the unit module's `:` prefix; lines mixing in the package's raw words carry none and
 * have `$` doubled in the words systemk adds.
 *
 * The package's other commands (`ExecStartPre=`, `ExecStartPost=`, `ExecReload=`, `ExecStop=`,
 * `ExecStopPost=`) lose `+`, `!` and `!!` the same way: they run in the sandbox as the pod's
 * user, as `ExecStart=` does. Their `-` (failure ignored), `@` and `:` stay.
 *
 * @module
 */
import {
  execArguments,
  execCommandLine,
  executableWord,
  readExecutableWord,
  UnitValueError,
} from "../unit/mod.ts";
import type { ExecArgument, UnitFile } from "../unit/mod.ts";

/** One raw `ExecStart=` word list of the package unit, prefixes removed. */
export interface RawCommand {
  /** Raw words (as written in the unit file): executable, then options. */
  words: string[];
}

// Settings of the package's [Service] section that make its daemon work and that the sandbox
// does not already decide. Everything else (hardening, Restart=, KillMode=, [Unit]
// dependencies, [Install]) is systemk's.
const KEPT_SERVICE_KEYS = new Set([
  "Type",
  "NotifyAccess",
  "PIDFile",
  "BusName",
  "GuessMainPID",
  "EnvironmentFile",
  "Environment",
  "UnsetEnvironment",
  "WorkingDirectory",
  "UMask",
  "StateDirectory",
  "StateDirectoryMode",
  "RuntimeDirectory",
  "RuntimeDirectoryMode",
  "RuntimeDirectoryPreserve",
  "LogsDirectory",
  "LogsDirectoryMode",
  "CacheDirectory",
  "CacheDirectoryMode",
  "ConfigurationDirectory",
  "ConfigurationDirectoryMode",
  "ReadWritePaths",
  "TimeoutStartSec",
  "LimitNOFILE",
  "LimitNPROC",
  "LimitCORE",
  "LimitMEMLOCK",
  "SyslogIdentifier",
]);

/** The package's commands besides `ExecStart=`: kept without their privilege prefixes. */
const PACKAGE_COMMAND_KEYS = new Set([
  "ExecStartPre",
  "ExecStartPost",
  "ExecReload",
  "ExecStop",
  "ExecStopPost",
]);

/** Kept only when the pod does not set the user itself. */
export const PACKAGE_USER_KEYS = new Set(["User", "Group", "SupplementaryGroups"]);
/** Kept only when the pod does not set `capabilities` itself. */
export const PACKAGE_CAPABILITY_KEYS = new Set(["CapabilityBoundingSet", "AmbientCapabilities"]);
/** Writable state directories: dropped under `readOnlyRootFilesystem`. */
export const WRITABLE_KEYS = new Set([
  "StateDirectory",
  "RuntimeDirectory",
  "LogsDirectory",
  "CacheDirectory",
  "ConfigurationDirectory",
  "ReadWritePaths",
]);

/**
 * The package unit's `[Service]` directives systemk keeps, in file order (`ExecStart=` is
 * handled by {@link execStart}): what makes the daemon work — `Type=`, `NotifyAccess=`,
 * `PIDFile=`, `BusName=`, `ExecStartPre=`/`ExecStartPost=`/`ExecReload=`/`ExecStop=`/
 * `ExecStopPost=`, `Environment=`/`EnvironmentFile=`/`UnsetEnvironment=`, `WorkingDirectory=`,
 * `UMask=`, the `StateDirectory=`-style directories (+ modes), `ReadWritePaths=`,
 * `TimeoutStartSec=`, `Limit*=` for files/processes/core/memlock, `SyslogIdentifier=`, and
 * `User=`/`Group=`/`SupplementaryGroups=` and `CapabilityBoundingSet=`/`AmbientCapabilities=`
 * (the caller drops those when the pod sets them). Dropped: its sandboxing (systemk's replaces
 * it), `Restart=`/`KillMode=`/`TimeoutStopSec=`-style lifecycle (the pod's), `DynamicUser=`
 * (volume ownership needs a known user), `[Unit]` dependencies and `[Install]`.
 */
export function keptServiceDirectives(unit: UnitFile): [string, string][] {
  const out: [string, string][] = [];
  for (const section of unit.sections) {
    if (section.name !== "Service") continue;
    for (const line of section.lines) {
      if (line.kind !== "directive") continue;
      const k = line.key;
      if (PACKAGE_COMMAND_KEYS.has(k)) {
        out.push([k, unprivilegedCommands(line.value)]);
      } else if (
        KEPT_SERVICE_KEYS.has(k) || PACKAGE_USER_KEYS.has(k) || PACKAGE_CAPABILITY_KEYS.has(k)
      ) {
        out.push([k, line.value]);
      }
    }
  }
  return out;
}

/**
 * Splits a raw `ExecStart=` value into raw words the way systemd delimits them: whitespace
 * outside quotes; a backslash protects the next character; quotes may open anywhere in a word.
 */
export function splitRawWords(value: string): string[] {
  const words: string[] = [];
  let word = "";
  let inWord = false;
  let quote: string | null = null;
  for (let i = 0; i < value.length; i++) {
    const c = value[i];
    if (c === "\\" && i + 1 < value.length) {
      word += c + value[++i];
      inWord = true;
    } else if (quote) {
      word += c;
      if (c === quote) quote = null;
    } else if (c === '"' || c === "'") {
      word += c;
      quote = c;
      inWord = true;
    } else if (c === " " || c === "\t" || c === "\n") {
      if (inWord) words.push(word);
      word = "";
      inWord = false;
    } else {
      word += c;
      inWord = true;
    }
  }
  if (inWord) words.push(word);
  return words;
}

/** One command of a raw `Exec*=` value. */
interface PackageCommand {
  /** Its prefixes, as systemd reads them. */
  prefixes: string;
  /** Raw words: the executable without its prefixes, then its arguments as written. */
  words: string[];
}

/**
 * The commands of a raw `Exec*=` value (a `;` word separates them), each first word read the
 * way systemd reads it.
 *
 * @throws UnitValueError for an executable systemd cannot read, or one that would itself begin
 *   with a prefix once the prefixes before it are gone.
 */
function packageCommandsOf(value: string): PackageCommand[] {
  const commands: string[][] = [[]];
  for (const word of splitRawWords(value)) {
    if (word === ";") commands.push([]);
    else commands.at(-1)!.push(word);
  }
  return commands.filter((words) => words.length > 0).map(([first, ...args]) => {
    const { prefixes, executable } = readExecutableWord(first);
    if (/^[-@:+!]/.test(executable)) {
      throw new UnitValueError(
        `the executable ${JSON.stringify(executable)} begins with a command prefix`,
      );
    }
    // Written as it was unless quotes or escapes made it up (then as systemd read it).
    const raw = first === prefixes + executable ? executable : executableWord("", executable);
    return { prefixes, words: [raw, ...args] };
  });
}

/** A raw `Exec*=` value of the package without the `+`, `!` and `!!` prefixes. */
function unprivilegedCommands(value: string): string {
  return packageCommandsOf(value)
    .map(({ prefixes, words: [executable, ...args] }) =>
      [prefixes.replace(/[+!]/g, "") + executable, ...args].join(" ")
    )
    .join(" ; ");
}

/** The package unit's effective `ExecStart=` lines (an empty one resets), prefixes removed. */
export function packageCommands(unit: UnitFile): RawCommand[] {
  let lines: string[] = [];
  for (const section of unit.sections) {
    if (section.name !== "Service") continue;
    for (const line of section.lines) {
      if (line.kind !== "directive" || line.key !== "ExecStart") continue;
      if (line.value.trim() === "") lines = [];
      else lines.push(line.value);
    }
  }
  return lines.flatMap(packageCommandsOf).map(({ prefixes, words }) => {
    if (prefixes.includes("@")) words.splice(1, 1);
    return { words: prefixes.includes(":") ? words.map(protectDollars) : words };
  });
}

/** Doubles every `$`, so systemd's `$VAR` expansion gives back the text (`$$` → `$`). */
function protectDollars(raw: string): string {
  return raw.replaceAll("$", () => "$$");
}

/** Why ExecStart could not be built; the caller turns it into a PodError. */
export class CommandError extends Error {
  constructor(message: string, readonly todo: string) {
    super(message);
  }
}

/** A container's `command` and `args`, after `$(VAR)` expansion. */
export interface ContainerCommand {
  /** The executable and its options; undefined or empty = not given. */
  command?: readonly ExecArgument[];
  /** The arguments; undefined or empty = not given. */
  args?: readonly ExecArgument[];
}

/**
 * The raw `ExecStart=` values for a container.
 *
 * @param container the container's `command` and `args`.
 * @param packaged the package unit's commands; undefined = synthesized unit.
 * @throws CommandError when the rules cannot produce a command line.
 * @throws UnitValueError when a word cannot be represented.
 */
export function execStart(
  container: ContainerCommand,
  packaged: RawCommand[] | undefined,
): string[] {
  const { command, args } = container;
  const hasCommand = command !== undefined && command.length > 0;
  const hasArgs = args !== undefined && args.length > 0;
  // Variable references need systemd's `$` expansion: such a line is written expandable.
  const line = (argv: readonly ExecArgument[]) =>
    execCommandLine(argv, { expandable: argv.some((word) => typeof word !== "string") });
  if (hasCommand && hasArgs) return [line([...command, ...args])];
  if (!packaged) {
    if (!hasCommand) {
      throw new CommandError(
        "the image has no unit file to take ExecStart from, and no command is given",
        "set command (the executable and its options) on the container",
      );
    }
    return [line(command)];
  }
  if (packaged.length === 0) {
    throw new CommandError(
      "the package's unit file has no ExecStart",
      "set command (and args) on the container",
    );
  }
  if (!hasCommand && !hasArgs) return packaged.map((c) => c.words.join(" "));
  if (packaged.length > 1) {
    throw new CommandError(
      `the package's unit file has ${packaged.length} ExecStart lines, so which one command or ` +
        "args would change is ambiguous",
      "give both command and args to replace the whole command line",
    );
  }
  const [exe, ...rest] = packaged[0].words;
  // The package's raw words may use `$VAR` (from its EnvironmentFile=): the line stays
  // expandable, and systemk's own words get `$` doubled by the unit module.
  if (hasCommand) return [[execCommandLine(command, { expandable: true }), ...rest].join(" ")];
  return [`${exe} ${execArguments(args!)}`];
}
