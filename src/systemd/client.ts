/**
 * The D-Bus client for systemd: installs, starts, stops and removes runtime unit files and
 * follows their state through systemd's change signals. The only module that talks to systemd.
 *
 * Rules it relies on (measured against systemd 252):
 * - No `daemon-reload` per pod. systemd loads a unit file when the unit is first referenced and
 *   garbage-collects a unit once it is inactive (not failed) and unreferenced; a unit that exited
 *   successfully is gone from memory within milliseconds. So a unit file written while its unit
 *   is not loaded is read fresh on the next start. Only when the unit is still loaded while its
 *   file changes does systemd keep the old definition (`NeedDaemonReload=yes`); then, and only
 *   then, {@link SystemdClient.installUnit} reloads, coalescing concurrent reloads into one.
 * - Reading a unit's properties loads it (an object path is enough), so reading the properties
 *   of a garbage-collected unit shows a blank, never-started unit. Change following therefore
 *   reads a unit's full snapshot once and then keeps it current from the values the
 *   `PropertiesChanged` signals carry, which include everything in {@link UnitProperties}
 *   except the accounting values.
 *
 * @module
 */
import dbus from "dbus-next";
import { callMethod, connectBus, type MethodCall } from "./_bus.ts";
import type { Message, MessageBus } from "dbus-next";
import { unitNameFromObjectPath, unitObjectPath } from "./_label.ts";
import {
  cgroupUsageFrom,
  isTrackedInterface,
  isTrackedProperty,
  SERVICE_INTERFACE,
  UNIT_INTERFACE,
  unitPropertiesFrom,
} from "./_properties.ts";
import {
  type CgroupUsage,
  completeUnitProperties,
  type UnitProperties,
} from "../unit/properties.ts";
import { dbusSignals } from "../metrics/mod.ts";
import { log } from "../log/mod.ts";
import { isPodSliceName } from "../unit/name.ts";
import { type UnitChangeListener, UnitChanges } from "./_changes.ts";

/** Unit name pattern of all units systemk manages. */
export const SYSTEMK_UNIT_PATTERN = "systemk.*.service";
/** Unit name pattern of the pods' slices. */
const POD_SLICE_PATTERN = "systemk-pod*.slice";
/** D-Bus interface of slice unit objects. */
const SLICE_INTERFACE = "org.freedesktop.systemd1.Slice";
/** Where runtime unit files live on a host booted with systemd. */
export const DEFAULT_UNIT_DIR = "/run/systemd/system";
/** Where systemd records properties set at runtime over D-Bus (`set-property --runtime`). */
export const DEFAULT_CONTROL_DIR = "/run/systemd/system.control";

const SYSTEMD = "org.freedesktop.systemd1";
const MANAGER_PATH = "/org/freedesktop/systemd1";
const MANAGER_INTERFACE = "org.freedesktop.systemd1.Manager";
const PROPERTIES_INTERFACE = "org.freedesktop.DBus.Properties";
/** D-Bus calls to systemd in flight at once; half of dbus-daemon's per-connection limit. */
const MAX_CALLS_IN_FLIGHT = 64;
const NO_SUCH_UNIT = "org.freedesktop.systemd1.NoSuchUnit";
const ALREADY_SUBSCRIBED = "org.freedesktop.systemd1.AlreadySubscribed";

/**
 * The signals the bus delivers to systemk (each one costs unmarshalling): units' `Unit` and
 * `Service` property changes, `JobRemoved`, and systemd's owner changing. Left out are what a
 * subscriber would otherwise get per pod: `UnitNew`/`UnitRemoved` for every load and unload,
 * `JobNew`, and the type-specific half of the changes of the mounts, slices, sockets and
 * targets a unit depends on (about half of some 100 signals per pod lifecycle). Object paths
 * cannot be matched by prefix and dbus-daemon allows 512 match rules per connection, so the
 * remaining `Unit` changes of other units are dropped after parsing.
 */
const MATCH_RULES = [
  ...[UNIT_INTERFACE, SERVICE_INTERFACE].map((iface) =>
    `type='signal',sender='${SYSTEMD}',interface='${PROPERTIES_INTERFACE}',` +
    `member='PropertiesChanged',path_namespace='/org/freedesktop/systemd1/unit',arg0='${iface}'`
  ),
  `type='signal',sender='${SYSTEMD}',interface='${MANAGER_INTERFACE}',member='JobRemoved',` +
  `path='${MANAGER_PATH}'`,
  `type='signal',sender='org.freedesktop.DBus',interface='org.freedesktop.DBus',` +
  `member='NameOwnerChanged',arg0='${SYSTEMD}'`,
];

/** Result of a systemd job, as in its `JobRemoved` signal. */
export type JobResult = "done" | "canceled" | "timeout" | "failed" | "dependency" | "skipped";

/** Options of {@link SystemdClient.connect}. */
export interface ConnectOptions {
  /** D-Bus address of the system bus; default: the system bus of this host. */
  busAddress?: string;
  /** Where unit files are written and listed; default {@link DEFAULT_UNIT_DIR}. */
  unitDir?: string;
  /**
   * Where systemd records properties set at runtime, as this process sees it; default
   * {@link DEFAULT_CONTROL_DIR} (a test reaching a booted system from outside gives its path).
   */
  controlDir?: string;
  /** Deadline of each D-Bus method call; default 25 s (D-Bus' own default). */
  callTimeoutMs?: number;
}

/** Options of the job methods. */
export interface JobOptions {
  /** How long to wait for the job to finish; default 120 s. */
  timeoutMs?: number;
}

/** A systemk unit, as systemd knows it and as its file in the unit directory says. */
export interface UnitListEntry {
  name: string;
  /** systemd's LoadState; undefined when systemd has not loaded the unit (only its file exists). */
  loadState?: string;
  /** systemd's ActiveState; undefined when not loaded. */
  activeState?: string;
  /** systemd's SubState; undefined when not loaded. */
  subState?: string;
  /** The unit file's text; undefined when the file is gone while the unit is still loaded. */
  text?: string;
}

export type { UnitChangeListener } from "./_changes.ts";

/** Which job missed which deadline: see {@link JobTimeoutError}. */
export interface JobTimeout {
  /** The job's D-Bus object path. */
  job: string;
  /** The caller's deadline it missed. */
  timeoutMs: number;
}

/** A job did not finish within the caller's deadline (it may still be running in systemd). */
export class JobTimeoutError extends Error {
  /**
   * @param unit the unit the job is for.
   * @param options the job and the deadline it missed.
   */
  constructor(unit: string, options: JobTimeout) {
    const { job, timeoutMs } = options;
    super(`systemd job ${job} for ${unit} did not finish within ${timeoutMs} ms`);
    this.name = "JobTimeoutError";
  }
}

/** The connection to the bus was lost while waiting; the client reconnects by itself. */
export class BusDisconnectedError extends Error {
  constructor(what: string) {
    super(`lost the D-Bus connection to systemd while ${what}`);
    this.name = "BusDisconnectedError";
  }
}

/** Whether `name` is a unit name systemk manages (and safe as a file name). */
export function isSystemkUnitName(name: string): boolean {
  return name.startsWith("systemk.") && name.endsWith(".service") && !name.includes("/") &&
    name.length <= 255;
}

/** A unit file systemk writes: a container's service or a pod's slice. */
function isSystemkFileName(name: string): boolean {
  return isSystemkUnitName(name) || isPodSliceName(name);
}

function dbusErrorType(e: unknown): string | undefined {
  return e instanceof dbus.DBusError ? e.type : undefined;
}

/** systemd does not know the unit (no file, not loaded). */
export function isNoSuchUnit(e: unknown): boolean {
  return dbusErrorType(e) === NO_SUCH_UNIT;
}

/**
 * A failure of the bus, not of the request: the reply was lost while systemd re-executed or
 * the bus restarted. Worth retrying within a second, once the client has reconnected.
 */
export function isTransientBusError(e: unknown): boolean {
  return e instanceof BusDisconnectedError || [
    "org.freedesktop.DBus.Error.NoReply",
    "org.freedesktop.DBus.Error.ServiceUnknown",
    "org.freedesktop.DBus.Error.NameHasNoOwner",
    "org.freedesktop.DBus.Error.Disconnected",
    "org.freedesktop.DBus.Error.Timeout",
  ].includes(dbusErrorType(e) ?? "");
}

/** Unwraps a D-Bus `a{sv}` into plain values. */
function unwrapVariants(dict: Record<string, { value: unknown }>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(dict).map(([k, v]) => [k, v.value]));
}

interface JobWaiter {
  resolve(result: JobResult): void;
  reject(error: Error): void;
}

/** Remembered results of jobs no one waited for yet; bounded, oldest dropped first. */
const FINISHED_JOBS_KEPT = 1024;
const RECONNECT_DELAYS_MS = [50, 100, 200, 500, 1000, 2000];

/**
 * A connection to systemd's manager.
 *
 * @example Usage
 * ```ts ignore
 * const systemd = await SystemdClient.connect();
 * systemd.onUnitChange((unit, props) => console.log(unit, props.ActiveState));
 * await systemd.installUnit("systemk.default.web.nginx.service", unitText);
 * await systemd.start("systemk.default.web.nginx.service");
 * ```
 */
export class SystemdClient {
  readonly #busAddress?: string;
  readonly #unitDir: string;
  readonly #controlDir: string;
  readonly #callTimeoutMs: number;
  #bus?: MessageBus;
  /** Resolves with the bus once (re)connected; calls wait on it during a reconnect. */
  #ready: Promise<MessageBus>;
  #closed = false;
  #reconnecting = false;
  readonly #jobWaiters = new Map<string, JobWaiter>();
  readonly #finishedJobs = new Map<string, JobResult>();
  readonly #changes: UnitChanges = new UnitChanges({
    read: (name) => this.getProperties(name),
    onError: (what, e) => {
      if (!(e instanceof BusDisconnectedError)) log.warn(`systemd: ${what}: ${e}`);
    },
  });
  #reloadRunning?: Promise<void>;
  #callsInFlight = 0;
  readonly #callWaiters: (() => void)[] = [];
  #reloadQueued?: Promise<void>;

  private constructor(opts: ConnectOptions) {
    this.#busAddress = opts.busAddress;
    this.#unitDir = opts.unitDir ?? DEFAULT_UNIT_DIR;
    this.#controlDir = opts.controlDir ?? DEFAULT_CONTROL_DIR;
    this.#callTimeoutMs = opts.callTimeoutMs ?? 25_000;
    this.#ready = Promise.reject(new Error("not connected"));
    this.#ready.catch(() => {});
  }

  /** Connects to systemd, subscribes to its signals and resolves once that is done. */
  static async connect(opts: ConnectOptions = {}): Promise<SystemdClient> {
    const client = new SystemdClient(opts);
    const bus = await client.#open();
    client.#ready = Promise.resolve(bus);
    return client;
  }

  /** The directory unit files are written to. */
  get unitDir(): string {
    return this.#unitDir;
  }

  /**
   * Writes the unit file `name` (atomically: a hidden temporary file renamed over it), readable
   * by root only (systemd reads it as root; pods must not read each other's units), and makes
   * sure systemd will use this text on the next start.
   */
  async installUnit(name: string, text: string): Promise<void> {
    await this.writeUnitFile(name, text);
    if (await this.#needsDaemonReload(name)) await this.daemonReload();
  }

  /**
   * Writes the unit file `name` as {@link installUnit} does, without making systemd read it: a
   * loaded unit keeps its definition (`NeedDaemonReload=yes`) until systemd next loads it. For a
   * file that says what the loaded unit already has (after {@link setUnitProperties}).
   */
  async writeUnitFile(name: string, text: string): Promise<void> {
    const path = this.#unitPath(name);
    // systemd ignores hidden files and names that are not unit names while scanning.
    const temporary = `${this.#unitDir}/.${name}.${crypto.randomUUID()}.tmp`;
    try {
      await Deno.writeTextFile(temporary, text, { mode: 0o600 });
      await Deno.rename(temporary, path);
    } catch (e) {
      await Deno.remove(temporary).catch(() => {});
      throw e;
    }
  }

  /**
   * Stops the unit if it runs, deletes its file and resets a failed state, so that systemd
   * forgets it (garbage collection) and a later unit of the same name starts fresh.
   */
  async removeUnit(name: string, opts: JobOptions = {}): Promise<void> {
    const path = this.#unitPath(name);
    try {
      await this.stop(name, opts);
    } catch (e) {
      if (dbusErrorType(e) !== NO_SUCH_UNIT) throw e;
    }
    await Deno.remove(path).catch((e) => {
      if (!(e instanceof Deno.errors.NotFound)) throw e;
    });
    await this.#removeRuntimeDropIns(name);
    await this.resetFailed(name);
    this.#changes.forget(name);
  }

  /**
   * Changes properties of a loaded unit at once (`systemctl set-property --runtime`), e.g. the
   * cgroup limits of a running service, which keeps running (same invocation). systemd also
   * records them as drop-ins in `/run/systemd/system.control/<name>.d/`: those are removed
   * again (the in-memory settings stay), so that the unit's file, which the caller rewrites with
   * the same values, stays the only record, and a later unit of the same name does not inherit
   * them. Values are of D-Bus type `t` (`CPUQuotaPerSecUSec`, `MemoryMax`, `CPUWeight`, ...).
   */
  async setUnitProperties(name: string, properties: Record<string, bigint>): Promise<void> {
    const values = Object.entries(properties).map(([key, value]) => [
      key,
      new dbus.Variant("t", value),
    ]);
    try {
      await this.#call(MANAGER_PATH, MANAGER_INTERFACE, "SetUnitProperties", "sba(sv)", [
        name,
        true,
        values,
      ]);
    } finally {
      await this.#removeRuntimeDropIns(name);
    }
  }

  async #removeRuntimeDropIns(name: string): Promise<void> {
    this.#unitPath(name); // only a systemk unit's
    await Deno.remove(`${this.#controlDir}/${name}.d`, { recursive: true }).catch((e) => {
      if (!(e instanceof Deno.errors.NotFound)) throw e;
    });
  }

  /** Starts the unit and waits for the start job to finish. */
  start(name: string, opts: JobOptions = {}): Promise<JobResult> {
    return this.#job("StartUnit", name, opts);
  }

  /**
   * Stops the unit and waits for the stop job to finish; systemd's own `TimeoutStopSec=` decides
   * when it escalates to SIGKILL, `timeoutMs` only bounds the wait.
   */
  stop(name: string, opts: JobOptions = {}): Promise<JobResult> {
    return this.#job("StopUnit", name, opts);
  }

  /** Restarts the unit and waits for the restart job to finish. */
  restart(name: string, opts: JobOptions = {}): Promise<JobResult> {
    return this.#job("RestartUnit", name, opts);
  }

  /** Clears a failed state (and the restart counter); a unit systemd has not loaded is fine. */
  async resetFailed(name: string): Promise<void> {
    try {
      await this.#call(MANAGER_PATH, MANAGER_INTERFACE, "ResetFailedUnit", "s", [name]);
    } catch (e) {
      if (dbusErrorType(e) !== NO_SUCH_UNIT) throw e;
    }
  }

  /** Sends `signal` to every process of the unit (`systemctl kill --signal`). */
  async kill(name: string, signal: number): Promise<void> {
    try {
      await this.#call(MANAGER_PATH, MANAGER_INTERFACE, "KillUnit", "ssi", [name, "all", signal]);
    } catch (e) {
      if (dbusErrorType(e) !== NO_SUCH_UNIT) throw e;
    }
  }

  /**
   * Masks units until the next boot (`systemctl mask --runtime`), then reloads once so a unit
   * systemd already loaded is masked too (a package's postinst reloads systemd after enabling).
   */
  async maskRuntime(names: readonly string[]): Promise<void> {
    if (names.length === 0) return;
    await this.#call(MANAGER_PATH, MANAGER_INTERFACE, "MaskUnitFiles", "asbb", [
      [...names],
      true,
      true,
    ]);
    await this.daemonReload();
  }

  /**
   * systemd's version (`252.39-1~deb12u1`), read from the manager over D-Bus: also the cheapest
   * proof that systemd answers.
   */
  async version(): Promise<string> {
    const reply = await this.#call(MANAGER_PATH, PROPERTIES_INTERFACE, "Get", "ss", [
      MANAGER_INTERFACE,
      "Version",
    ]);
    return String(reply.body[0].value);
  }

  /** Reloads all unit files (`systemctl daemon-reload`); concurrent calls share reloads. */
  daemonReload(): Promise<void> {
    if (!this.#reloadRunning) {
      this.#reloadRunning = this.#call(MANAGER_PATH, MANAGER_INTERFACE, "Reload")
        .then(() => {})
        .finally(() => this.#reloadRunning = undefined);
      return this.#reloadRunning;
    }
    // The running reload may have read the files before the caller's change: one more, shared
    // by everyone who asks meanwhile.
    this.#reloadQueued ??= this.#reloadRunning.catch(() => {}).then(() => {
      this.#reloadQueued = undefined;
      return this.daemonReload();
    });
    return this.#reloadQueued;
  }

  /**
   * A full snapshot of the unit's properties, accounting included. Loads the unit if systemd has
   * not (a garbage-collected unit then reads as never started).
   */
  async getProperties(name: string): Promise<UnitProperties> {
    const path = unitObjectPath(name);
    const [unit, service] = await Promise.all([UNIT_INTERFACE, SERVICE_INTERFACE].map(
      async (iface) => {
        const reply = await this.#call(path, PROPERTIES_INTERFACE, "GetAll", "s", [iface]);
        return unitPropertiesFrom(iface, unwrapVariants(reply.body[0]));
      },
    ));
    const props = completeUnitProperties({ ...unit, ...service });
    // No signal of the unit came before these replies (it would have started following it),
    // and systemd sends replies and signals in order: this is its newest state. Change
    // following starts from it rather than reading the unit again at its first signal.
    if (this.#changes.listening && isSystemkUnitName(name)) this.#changes.seed(name, props);
    return props;
  }

  /**
   * The cgroup of a service or slice and its usage as systemd accounts it (`ControlGroup`,
   * `MemoryCurrent`, `CPUUsageNSec`); a unit systemd has not loaded reads as empty.
   */
  async getCgroupUsage(name: string): Promise<CgroupUsage> {
    const iface = name.endsWith(".slice") ? SLICE_INTERFACE : SERVICE_INTERFACE;
    const reply = await this.#call(unitObjectPath(name), PROPERTIES_INTERFACE, "GetAll", "s", [
      iface,
    ]);
    return cgroupUsageFrom(unwrapVariants(reply.body[0]));
  }

  /**
   * Every property of the unit's Service interface, variants unwrapped (uint64 values as
   * `bigint`): how the service runs (`User`, `Environment`, `EnvironmentFiles`,
   * `WorkingDirectory`, `MainPID`, ...), beyond the state in {@link UnitProperties}.
   */
  async getServiceSettings(name: string): Promise<Record<string, unknown>> {
    const path = unitObjectPath(name);
    const reply = await this.#call(path, PROPERTIES_INTERFACE, "GetAll", "s", [SERVICE_INTERFACE]);
    return unwrapVariants(reply.body[0]);
  }

  /**
   * The systemk units and pod slices systemd has loaded, with their states, in one call (no
   * file is read): cheap enough for checks that run every few seconds over every unit.
   */
  async listLoadedUnits(): Promise<Required<Omit<UnitListEntry, "text">>[]> {
    const reply = await this.#call(
      MANAGER_PATH,
      MANAGER_INTERFACE,
      "ListUnitsByPatterns",
      "asas",
      [[], [SYSTEMK_UNIT_PATTERN, POD_SLICE_PATTERN]],
    );
    return (reply.body[0] as string[][]).map(([name, , loadState, activeState, subState]) => ({
      name,
      loadState,
      activeState,
      subState,
    }));
  }

  /**
   * All systemk units and pod slices: those systemd has loaded, and those whose file is in the
   * unit directory but which systemd has not loaded, each with its file text.
   */
  async listUnits(): Promise<UnitListEntry[]> {
    const entries = new Map(
      (await this.listLoadedUnits()).map((entry): [string, UnitListEntry] => [entry.name, entry]),
    );
    for await (const file of Deno.readDir(this.#unitDir)) {
      if (isSystemkFileName(file.name) && !entries.has(file.name)) {
        entries.set(file.name, { name: file.name });
      }
    }
    await Promise.all([...entries.values()].map(async (entry) => {
      entry.text = await Deno.readTextFile(this.#unitPath(entry.name)).catch((e) => {
        if (e instanceof Deno.errors.NotFound) return undefined;
        throw e;
      });
    }));
    return [...entries.values()].sort((a, b) => a.name < b.name ? -1 : 1);
  }

  /**
   * Calls `listener` with the current properties of a systemk unit whenever they change, and for
   * every loaded systemk unit after a reconnect or a re-execution of systemd. Changes arriving
   * together are delivered once. The snapshots leave out the accounting values
   * (`MemoryCurrent`, `CPUUsageNSec`), which systemd does not announce: read them with
   * {@link getProperties}. Returns a function that removes the listener.
   */
  onUnitChange(listener: UnitChangeListener): () => void {
    return this.#changes.listen(listener);
  }

  /** Disconnects; pending waits fail. */
  close(): Promise<void> {
    this.#closed = true;
    this.#changes.clear();
    this.#failWaiters(new BusDisconnectedError("closing"));
    this.#bus?.disconnect();
    this.#bus = undefined;
    return Promise.resolve();
  }

  // --- connection ---------------------------------------------------------------------------

  /** Connects, installs the match rules and subscribes; the bus becomes the current one. */
  async #open(): Promise<MessageBus> {
    const bus = await connectBus(this.#busAddress, {
      onMessage: (bus, msg) => this.#onMessage(bus, msg),
      onLost: (bus) => this.#lost(bus),
    });
    this.#bus = bus;
    try {
      for (const rule of MATCH_RULES) {
        await this.#callOn(bus, {
          destination: "org.freedesktop.DBus",
          path: "/org/freedesktop/DBus",
          interface: "org.freedesktop.DBus",
          member: "AddMatch",
          signature: "s",
          body: [rule],
        });
      }
      await this.#subscribe(bus);
    } catch (e) {
      if (this.#bus === bus) this.#bus = undefined;
      bus.disconnect();
      throw e;
    }
    return bus;
  }

  async #subscribe(bus: MessageBus): Promise<void> {
    try {
      await this.#callOn(bus, {
        destination: SYSTEMD,
        path: MANAGER_PATH,
        interface: MANAGER_INTERFACE,
        member: "Subscribe",
      });
    } catch (e) {
      if (dbusErrorType(e) !== ALREADY_SUBSCRIBED) throw e;
    }
  }

  /** The bus dropped: fail waits that can no longer be answered and reconnect. */
  #lost(bus: MessageBus): void {
    if (bus !== this.#bus || this.#closed) return;
    this.#bus = undefined;
    bus.disconnect();
    this.#failWaiters(new BusDisconnectedError("waiting for a job"));
    if (this.#reconnecting) return; // the running loop notices #bus is gone
    let resolveReady!: (bus: MessageBus) => void;
    this.#ready = new Promise((resolve) => resolveReady = resolve);
    void this.#reconnect(resolveReady);
  }

  async #reconnect(resolveReady: (bus: MessageBus) => void): Promise<void> {
    this.#reconnecting = true;
    for (let attempt = 0; !this.#closed; attempt++) {
      await new Promise((r) => setTimeout(r, RECONNECT_DELAYS_MS[Math.min(attempt, 5)]));
      try {
        const bus = await this.#open();
        // Dropped again before this loop got to use it: keep trying.
        if (this.#bus !== bus) continue;
        this.#reconnecting = false;
        resolveReady(bus);
        await this.#resync();
        return;
      } catch {
        // The bus is still away (restarting); keep trying.
      }
    }
    this.#reconnecting = false;
  }

  /** Re-reads every systemk unit and reports it, after anything may have been missed. */
  async #resync(): Promise<void> {
    try {
      const units = await this.listUnits();
      await this.#changes.resync(
        new Set(units.map((u) => u.name)),
        units.filter((u) => u.loadState !== undefined).map((u) => u.name),
      );
    } catch (e) {
      // A resync racing another drop is repeated after that reconnect.
      if (!(e instanceof BusDisconnectedError)) log.warn(`systemd: resync failed: ${e}`);
    }
  }

  async #call(
    path: string,
    iface: string,
    member: string,
    signature = "",
    body: unknown[] = [],
  ): Promise<Message> {
    if (this.#closed) throw new Error("the systemd client is closed");
    const bus = await this.#withDeadline(this.#ready, `connecting for ${member}`);
    return this.#callOn(bus, {
      destination: SYSTEMD,
      path,
      interface: iface,
      member,
      signature,
      body,
    });
  }

  async #callOn(bus: MessageBus, call: MethodCall): Promise<Message> {
    await this.#acquireCallSlot();
    try {
      return await this.#withDeadline(callMethod(bus, call), `calling ${call.member}`);
    } finally {
      this.#releaseCallSlot();
    }
  }

  /**
   * The system bus refuses more than 128 pending replies per connection (dbus-daemon's
   * `max_replies_per_connection`); a burst of pods would hit that and fail. Calls beyond
   * {@link MAX_CALLS_IN_FLIGHT} wait here, and a finishing call hands its slot to the next.
   */
  #acquireCallSlot(): Promise<void> {
    if (this.#callsInFlight < MAX_CALLS_IN_FLIGHT) {
      this.#callsInFlight++;
      return Promise.resolve();
    }
    return new Promise((resolve) => this.#callWaiters.push(resolve));
  }

  #releaseCallSlot(): void {
    const next = this.#callWaiters.shift();
    if (next) next();
    else this.#callsInFlight--;
  }

  #withDeadline<T>(promise: Promise<T>, what: string): Promise<T> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const deadline = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new Error(`systemd did not answer in ${this.#callTimeoutMs} ms: ${what}`)),
        this.#callTimeoutMs,
      );
    });
    return Promise.race([promise, deadline]).finally(() => clearTimeout(timer));
  }

  // --- jobs ---------------------------------------------------------------------------------

  async #job(method: string, name: string, opts: JobOptions): Promise<JobResult> {
    const reply = await this.#call(MANAGER_PATH, MANAGER_INTERFACE, method, "ss", [
      name,
      "replace",
    ]);
    const job: string = reply.body[0];
    // The job may have finished (and its signal arrived) before this continuation ran.
    const finished = this.#finishedJobs.get(job);
    if (finished !== undefined) {
      this.#finishedJobs.delete(job);
      return finished;
    }
    const timeoutMs = opts.timeoutMs ?? 120_000;
    let timer: ReturnType<typeof setTimeout> | undefined;
    try {
      return await new Promise<JobResult>((resolve, reject) => {
        this.#jobWaiters.set(job, { resolve, reject });
        timer = setTimeout(() => reject(new JobTimeoutError(name, { job, timeoutMs })), timeoutMs);
      });
    } finally {
      clearTimeout(timer);
      this.#jobWaiters.delete(job);
    }
  }

  #jobRemoved(job: string, result: JobResult): void {
    const waiter = this.#jobWaiters.get(job);
    if (waiter) {
      waiter.resolve(result);
      return;
    }
    this.#finishedJobs.set(job, result);
    if (this.#finishedJobs.size > FINISHED_JOBS_KEPT) {
      this.#finishedJobs.delete(this.#finishedJobs.keys().next().value!);
    }
  }

  #failWaiters(error: Error): void {
    for (const waiter of this.#jobWaiters.values()) waiter.reject(error);
    this.#jobWaiters.clear();
  }

  // --- unit files ---------------------------------------------------------------------------

  #unitPath(name: string): string {
    if (!isSystemkFileName(name)) throw new Error(`not a systemk unit name: ${name}`);
    return `${this.#unitDir}/${name}`;
  }

  /**
   * Whether systemd holds an outdated definition of `name`: only a unit that is loaded while its
   * file changed; an unloaded unit is read from its file when next referenced, and systemd 252
   * retries loading a `not-found` unit when its unit directories changed.
   */
  async #needsDaemonReload(name: string): Promise<boolean> {
    let path: string;
    try {
      path = (await this.#call(MANAGER_PATH, MANAGER_INTERFACE, "GetUnit", "s", [name])).body[0];
    } catch (e) {
      if (dbusErrorType(e) === NO_SUCH_UNIT) return false;
      throw e;
    }
    const reply = await this.#call(path, PROPERTIES_INTERFACE, "Get", "ss", [
      UNIT_INTERFACE,
      "NeedDaemonReload",
    ]);
    return reply.body[0].value === true;
  }

  // --- change following ---------------------------------------------------------------------

  #onMessage(bus: MessageBus, msg: Message): void {
    if (msg.type !== dbus.MessageType.SIGNAL || bus !== this.#bus) return;
    const propertiesChanged = msg.interface === PROPERTIES_INTERFACE &&
      msg.member === "PropertiesChanged";
    dbusSignals.inc({
      member: msg.member ?? "",
      interface: (propertiesChanged ? msg.body[0] : msg.interface) ?? "",
    });
    if (propertiesChanged) {
      const name = unitNameFromObjectPath(msg.path ?? "");
      const [iface, changed, invalidated] = msg.body as [string, never, string[]];
      if (name === undefined || !isSystemkUnitName(name) || !isTrackedInterface(iface)) return;
      // Following changes costs a read per newly seen unit: only for someone listening.
      if (!this.#changes.listening) return;
      const values = unitPropertiesFrom(iface, unwrapVariants(changed));
      this.#changes.changed(name, {
        values,
        invalidated: invalidated.some((p) => isTrackedProperty(iface, p)),
      });
    } else if (msg.interface === MANAGER_INTERFACE && msg.member === "JobRemoved") {
      const [, job, , result] = msg.body as [number, string, string, JobResult];
      this.#jobRemoved(job, result);
    } else if (msg.member === "NameOwnerChanged" && msg.body[0] === SYSTEMD && msg.body[2] !== "") {
      // systemd re-executed (or came back): subscriptions and jobs may be lost, state may have
      // moved on without signals.
      void this.#subscribe(bus).then(() => this.#resync()).catch((e) =>
        log.warn(`systemd: re-subscribing failed: ${e}`)
      );
    }
  }
}
