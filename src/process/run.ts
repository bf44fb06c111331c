/**
 * Running a program to completion: short commands (`openssl`, `umount`, `systemctl show`,
 * `git`, `apt-get`, `dpkg`). Standard input is a given text or nothing; standard output and
 * error are collected as text.
 *
 * @module
 */
import { spawnProcess } from "./spawn.ts";

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
 *
 * @example Usage
 * ```ts ignore
 * import { runCommand } from "./run.ts";
 * const { success, stdout } = await runCommand(["systemctl", "--version"]);
 * ```
 */
export async function runCommand(
  argv: readonly string[],
  options: RunOptions = {},
): Promise<CommandOutput> {
  const child = spawnProcess(argv, {
    env: options.env,
    stdin: options.stdin === undefined ? "null" : "piped",
  });
  const stdout = new Response(child.stdout).text();
  const stderr = new Response(child.stderr).text();
  if (options.stdin !== undefined) {
    const writer = child.stdin.getWriter();
    await writer.write(new TextEncoder().encode(options.stdin));
    await writer.close();
  }
  const { code, success } = await child.status;
  return { code, success, stdout: await stdout, stderr: await stderr };
}
