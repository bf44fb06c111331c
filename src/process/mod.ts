/**
 * Running a program to completion: the one way systemk runs short commands (`openssl`,
 * `umount`, `systemctl show`, `git`). Standard input is a given text or nothing; standard
 * output and error are collected as text. Long-running processes whose output streams
 * (`journalctl --follow`, `dmesg --follow-new`, commands in containers) are spawned by their
 * own modules.
 *
 * @example Usage
 * ```ts ignore
 * import { runCommand } from "./mod.ts";
 * const { success, stdout } = await runCommand(["systemctl", "--version"]);
 * ```
 *
 * @module
 */

/** What a finished command left. */
export interface CommandOutput {
  code: number;
  success: boolean;
  stdout: string;
  stderr: string;
}

/** Options of {@link runCommand}. */
export interface RunOptions {
  /** Written to the command's standard input, which is then closed; none by default. */
  stdin?: string;
  /** Environment variables added to systemk's own. */
  env?: Record<string, string>;
}

/**
 * Runs `argv` (the program, then its arguments) until it exits.
 *
 * @throws when the program cannot be started (not found, not permitted).
 */
export async function runCommand(
  argv: readonly string[],
  options: RunOptions = {},
): Promise<CommandOutput> {
  const child = new Deno.Command(argv[0], {
    args: argv.slice(1),
    env: options.env,
    stdin: options.stdin === undefined ? "null" : "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  if (options.stdin !== undefined) {
    const writer = child.stdin.getWriter();
    await writer.write(new TextEncoder().encode(options.stdin));
    await writer.close();
  }
  const out = await child.output();
  const text = new TextDecoder();
  return {
    code: out.code,
    success: out.success,
    stdout: text.decode(out.stdout),
    stderr: text.decode(out.stderr),
  };
}
