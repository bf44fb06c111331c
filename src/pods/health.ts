/**
 * Whether this node can run pods: the node's Ready condition (the kubelet's runtime and PLEG
 * health checks). Not ready, with the reason in the condition's message, while
 *
 * - systemd does not answer over D-Bus (`container runtime is down`, as the kubelet says);
 * - the state directory is not writable (no new pod can get its files);
 * - systemd's unit change signals no longer arrive: a unit's state in systemd differs from
 *   the observed state at two checks in a row (the kubelet's "PLEG is not healthy").
 *
 * Checked every 10 s (the kubelet's node status check period); a change is reported at once.
 *
 * @module
 */
import type { Readiness } from "../kube/node.ts";
import { log } from "../log/mod.ts";

/** What the health checks look at. */
export interface RuntimeHealthOptions {
  /** Resolves once systemd answered a cheap call over D-Bus. */
  pingSystemd(): Promise<unknown>;
  /** Why the state directory cannot be written, or undefined when it can. */
  stateDirProblem(): Promise<string | undefined>;
  /**
   * Units whose state in systemd (read now) differs from the observed state, each as
   * `<unit> is <state in systemd> in systemd, <observed state> as last heard`.
   */
  staleUnits(): Promise<string[]>;
  /** Told after a check changed the readiness (e.g. to patch the Node's status at once). */
  onChange?(readiness: Readiness): void;
  /** Time between checks (ms); default 10 s. */
  intervalMs?: number;
  /** How long systemd may take to answer (ms); default 5 s. */
  pingTimeoutMs?: number;
}

/** The node's readiness to run pods; see the module doc. */
export class RuntimeHealth {
  readonly #o: RuntimeHealthOptions;
  #readiness: Readiness = { ready: true };
  /** The stale units of the previous check: a signal should have come since. */
  #stale = new Set<string>();
  #timer?: ReturnType<typeof setTimeout>;
  #running?: Promise<void>;
  #stopped = false;

  /** @param options what to check, and who hears of changes. */
  constructor(options: RuntimeHealthOptions) {
    this.#o = options;
  }

  /** The readiness as last checked (ready until the first check says otherwise). */
  readiness(): Readiness {
    return this.#readiness;
  }

  /** Checks now, then every interval until {@link stop}. */
  async start(): Promise<void> {
    await this.check();
    const loop = () => {
      if (this.#stopped) return;
      this.#timer = setTimeout(() => {
        this.#running = this.check().then(() => {}).finally(loop);
      }, this.#o.intervalMs ?? 10_000);
    };
    loop();
  }

  /** Stops checking; waits for a check in progress. */
  async stop(): Promise<void> {
    this.#stopped = true;
    clearTimeout(this.#timer);
    await this.#running;
  }

  /** Runs every check once and updates the readiness. */
  async check(): Promise<Readiness> {
    const problems = await this.#problems();
    const next: Readiness = problems.length
      ? { ready: false, message: problems.join("; ") }
      : { ready: true };
    if (next.ready !== this.#readiness.ready || next.message !== this.#readiness.message) {
      this.#readiness = next;
      if (next.ready) log.info("the node is ready to run pods again");
      else log.error(`the node cannot run pods: ${next.message}`);
      this.#o.onChange?.(next);
    }
    return next;
  }

  async #problems(): Promise<string[]> {
    const problems: string[] = [];
    const timeoutMs = this.#o.pingTimeoutMs ?? 5000;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const answered = await Promise.race([
      this.#o.pingSystemd().then(() => true, () => false),
      new Promise<false>((resolve) => timer = setTimeout(() => resolve(false), timeoutMs)),
    ]);
    clearTimeout(timer);
    if (!answered) {
      problems.push("container runtime is down: systemd does not answer over D-Bus");
      // Without systemd neither the state of units nor their signals can be judged.
      this.#stale.clear();
    }
    const stateDir = await this.#o.stateDirProblem();
    if (stateDir) problems.push(stateDir);
    if (answered) {
      const stale = new Set(await this.#o.staleUnits().catch(() => []));
      const still = [...stale].filter((unit) => this.#stale.has(unit));
      this.#stale = stale;
      if (still.length) {
        problems.push(
          `systemd's unit change signals are not arriving: ${still.slice(0, 3).join(", ")}`,
        );
      }
    }
    return problems;
  }
}
