/**
 * systemd-logind, for a graceful node shutdown (the kubelet's `nodeshutdown/systemd`): its
 * delay inhibitor lock, its `PrepareForShutdown` signal and its `InhibitDelayMaxSec`.
 *
 * How a shutdown goes: while a program holds a `shutdown` lock in `delay` mode, logind answers
 * a shutdown request (`systemctl reboot`, `poweroff`, `ScheduleShutdown`) by sending
 * `PrepareForShutdown(true)` and then waits until every such lock is released, but at most
 * `InhibitDelayMaxSec` (5 s unless configured), before it starts the shutdown. If the shutdown
 * cannot start, it sends `PrepareForShutdown(false)`: a new lock may be taken.
 *
 * logind's `Inhibit` returns a file descriptor (the lock lasts while it is open), and dbus-next
 * passes file descriptors only through the native `usocket` module, which Deno does not load.
 * So the lock is held by `systemd-inhibit --mode=delay` running `cat`, whose standard input
 * systemk holds: closing it (release, or systemk's end, even by SIGKILL) ends `cat`, then
 * `systemd-inhibit`, and with it the lock. Whether logind holds the lock is read back from its
 * `ListInhibitors`.
 *
 * @module
 */
import dbus from "dbus-next";
import { callMethod, connectBus, type MethodCall } from "./_bus.ts";
import type { Message, MessageBus } from "dbus-next";
import { log } from "../log/mod.ts";
import { spawnProcess } from "../process/mod.ts";

const LOGIND = "org.freedesktop.login1";
const LOGIND_PATH = "/org/freedesktop/login1";
const LOGIND_MANAGER = "org.freedesktop.login1.Manager";
const SYSTEMD = "org.freedesktop.systemd1";
const SYSTEMD_PATH = "/org/freedesktop/systemd1";
const SYSTEMD_MANAGER = "org.freedesktop.systemd1.Manager";
const PROPERTIES = "org.freedesktop.DBus.Properties";
const DBUS = "org.freedesktop.DBus";
const SIGHUP = 1;

/** Where systemk raises logind's `InhibitDelayMaxSec` (the kubelet writes `99-kubelet.conf`). */
export const LOGIND_DROP_IN = "/etc/systemd/logind.conf.d/99-systemk.conf";

const MATCH_RULE = `type='signal',sender='${LOGIND}',interface='${LOGIND_MANAGER}',` +
  `member='PrepareForShutdown',path='${LOGIND_PATH}'`;
/** How long logind may take to list a new lock, or to reload its configuration. */
const LOGIND_TIMEOUT_MS = 10_000;
const RECONNECT_DELAYS_MS = [100, 500, 1000, 2000];

/** A delay lock held on shutdown; {@link release} lets the shutdown go on. */
export interface InhibitorLock {
  /** Releases the lock and waits until logind has let go of it. */
  release(): Promise<void>;
}

/** Options of {@link LogindClient.connect}. */
export interface LogindOptions {
  /** The lock's `who` and `why`, shown by `systemd-inhibit --list`. */
  who: string;
  why: string;
}

/**
 * A connection to logind.
 *
 * @example Usage
 * ```ts ignore
 * const logind = await LogindClient.connect({ who: "systemk", why: "stopping pods" });
 * logind.onPrepareForShutdown((active) => console.log("shutting down:", active));
 * const lock = await logind.inhibitShutdown();
 * // ... when the pods are stopped:
 * await lock.release();
 * ```
 */
export class LogindClient {
  readonly #o: LogindOptions;
  #bus?: MessageBus;
  #closed = false;
  readonly #listeners: ((active: boolean) => void)[] = [];

  private constructor(options: LogindOptions) {
    this.#o = options;
  }

  /**
   * Connects to this machine's system bus and follows logind's `PrepareForShutdown`; reconnects by itself
   * when the bus goes away.
   *
   * @throws when the bus cannot be reached or logind does not answer.
   */
  static async connect(options: LogindOptions): Promise<LogindClient> {
    const client = new LogindClient(options);
    await client.#open();
    await client.inhibitDelayMaxSeconds();
    return client;
  }

  /** Calls `listener` with each `PrepareForShutdown`: true when a shutdown starts. */
  onPrepareForShutdown(listener: (active: boolean) => void): void {
    this.#listeners.push(listener);
  }

  /** logind's `InhibitDelayMaxUSec`, in whole seconds. */
  async inhibitDelayMaxSeconds(): Promise<number> {
    const reply = await this.#call({
      destination: LOGIND,
      path: LOGIND_PATH,
      interface: PROPERTIES,
      member: "Get",
      signature: "ss",
      body: [LOGIND_MANAGER, "InhibitDelayMaxUSec"],
    });
    return Math.floor(Number(reply.body[0].value) / 1_000_000);
  }

  /**
   * Raises logind's `InhibitDelayMaxSec` to `seconds`, as the kubelet does: a drop-in
   * ({@link LOGIND_DROP_IN}), then SIGHUP to `systemd-logind.service`, which reloads its
   * configuration (systemd 252 and later).
   *
   * @return The value logind uses afterwards.
   */
  async raiseInhibitDelayMax(seconds: number): Promise<number> {
    const dir = LOGIND_DROP_IN.slice(0, LOGIND_DROP_IN.lastIndexOf("/"));
    await Deno.mkdir(dir, { recursive: true, mode: 0o755 });
    await Deno.writeTextFile(
      LOGIND_DROP_IN,
      `# Written by systemk: logind waits this long for pods to stop on shutdown.\n` +
        `[Login]\nInhibitDelayMaxSec=${seconds}\n`,
      { mode: 0o644 },
    );
    await this.#call({
      destination: SYSTEMD,
      path: SYSTEMD_PATH,
      interface: SYSTEMD_MANAGER,
      member: "KillUnit",
      signature: "ssi",
      body: ["systemd-logind.service", "all", SIGHUP],
    });
    // logind reloads when it handles the signal: read until it shows the new value.
    const deadline = Date.now() + LOGIND_TIMEOUT_MS;
    for (;;) {
      const now = await this.inhibitDelayMaxSeconds();
      if (now >= seconds || Date.now() > deadline) return now;
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  /**
   * Takes a `shutdown` lock in `delay` mode (see the module doc).
   *
   * @throws when logind refuses it or does not list it in time.
   */
  async inhibitShutdown(): Promise<InhibitorLock> {
    const child = spawnProcess([
      "systemd-inhibit",
      "--what=shutdown",
      "--mode=delay",
      `--who=${this.#o.who}`,
      `--why=${this.#o.why}`,
      "cat",
    ], { stdin: "piped" });
    // cat writes nothing: its input never gets a byte.
    await child.stdout.cancel();
    const stdin = child.stdin.getWriter();
    const stderr = new Response(child.stderr).text();
    let exited = false;
    const status = child.status.finally(() => exited = true);
    const lock: InhibitorLock = {
      async release() {
        await stdin.close().catch(() => {});
        await status;
        await stderr;
      },
    };
    const deadline = Date.now() + LOGIND_TIMEOUT_MS;
    try {
      while (!(await this.#holds(child.pid))) {
        if (exited || Date.now() > deadline) {
          throw new Error(`no lock listed in ${LOGIND_TIMEOUT_MS} ms`);
        }
        await new Promise((r) => setTimeout(r, 20));
      }
    } catch (e) {
      // Released first: systemd-inhibit's error output is complete once it has exited.
      await lock.release();
      const why = (await stderr).trim() || (e as Error).message;
      throw new Error(`logind gave no shutdown inhibitor lock: ${why}`);
    }
    return lock;
  }

  /** Disconnects (a lock taken stays until released). */
  close(): void {
    this.#closed = true;
    this.#bus?.disconnect();
    this.#bus = undefined;
  }

  /** Whether logind lists a delay lock on shutdown held by process `pid`. */
  async #holds(pid: number): Promise<boolean> {
    const reply = await this.#call({
      destination: LOGIND,
      path: LOGIND_PATH,
      interface: LOGIND_MANAGER,
      member: "ListInhibitors",
    });
    return (reply.body[0] as [string, string, string, string, number, number][]).some(
      ([what, , , mode, , holder]) =>
        holder === pid && mode === "delay" && what.split(":").includes("shutdown"),
    );
  }

  async #open(): Promise<void> {
    // systemd-inhibit and logind's PIDs must be of this machine: its own system bus only.
    const bus = await connectBus(undefined, {
      onMessage: (_, msg) => {
        if (
          msg.type === dbus.MessageType.SIGNAL && msg.interface === LOGIND_MANAGER &&
          msg.member === "PrepareForShutdown"
        ) {
          const active = msg.body[0] === true;
          for (const listener of this.#listeners) listener(active);
        }
      },
      onLost: (bus) => this.#lost(bus),
    });
    this.#bus = bus;
    try {
      await this.#call({
        destination: DBUS,
        path: "/org/freedesktop/DBus",
        interface: DBUS,
        member: "AddMatch",
        signature: "s",
        body: [MATCH_RULE],
      });
    } catch (e) {
      if (this.#bus === bus) this.#bus = undefined;
      bus.disconnect();
      throw e;
    }
  }

  /** The bus dropped: connect again (a shutdown announced meanwhile is missed). */
  #lost(bus: MessageBus): void {
    if (bus !== this.#bus || this.#closed) return;
    this.#bus = undefined;
    bus.disconnect();
    void (async () => {
      for (let attempt = 0; !this.#closed && !this.#bus; attempt++) {
        await new Promise((r) => setTimeout(r, RECONNECT_DELAYS_MS[Math.min(attempt, 3)]));
        await this.#open().catch((e) => log.debug(`logind: reconnecting: ${e}`));
      }
    })();
  }

  #call(call: MethodCall): Promise<Message> {
    if (!this.#bus) throw new Error("not connected to the system bus");
    return callMethod(this.#bus, call);
  }
}
