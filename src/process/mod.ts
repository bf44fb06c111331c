/**
 * The one way systemk starts programs: {@link runCommand} for short commands run to
 * completion (`openssl`, `umount`, `apt-get`, `dpkg`, `grep`), {@link spawnProcess} for
 * programs whose output streams while they run (`journalctl`, `dmesg --follow-new`,
 * `systemd-run` for commands in containers), ended by aborting a signal.
 *
 * @example Usage
 * ```ts ignore
 * import { runCommand } from "./mod.ts";
 * const { success, stdout } = await runCommand(["systemctl", "--version"]);
 * ```
 *
 * @module
 */
export { type CommandOutput, runCommand, type RunOptions } from "./run.ts";
export { type SpawnedProcess, type SpawnOptions, spawnProcess } from "./spawn.ts";
