/**
 * The node shutdown manager, as the kubelet's (`pkg/kubelet/nodeshutdown`): holds logind's
 * delay lock on shutdown; when logind announces a shutdown (`PrepareForShutdown`), the node
 * goes NotReady ("node is shutting down"), new pods are rejected (`NodeShutdown`), and the
 * active pods are ended group by group (shutdown_groups.ts): regular pods first, critical pods
 * last, each with its preStop hooks within its grace period, each ending Failed with reason
 * `Terminated`, the kubelet's message and a `DisruptionTarget` condition. Once their statuses
 * are written the lock is released and the shutdown goes on. A cancelled shutdown
 * (`PrepareForShutdown(false)`) makes the node Ready again and takes a new lock; pods ended
 * meanwhile stay Failed.
 *
 * logind waits for the lock at most `InhibitDelayMaxSec`: below `--shutdown-grace-period`,
 * it is raised (a logind drop-in, as the kubelet writes one); if that fails, graceful
 * shutdown is off, as with the kubelet.
 *
 * @module
 */
import type { V1Pod } from "@kubernetes/client-node";
import { log } from "../log/mod.ts";
import { type PodAdmitHandler, podKey } from "./context.ts";
import type { ShutdownInhibitor, ShutdownLock } from "./ports.ts";
import {
  NODE_SHUTDOWN,
  NODE_SHUTDOWN_CONDITION,
  NODE_SHUTDOWN_REJECTION,
  podShutdownGraceSeconds,
  type ShutdownGracePeriods,
  shutdownGroups,
} from "./shutdown_groups.ts";
import type { KeptTermination } from "./context.ts";

/** Why the node is not ready while it shuts down (the kubelet's words). */
export const NODE_SHUTTING_DOWN = "node is shutting down";

/** What the node shutdown manager is wired to. */
export interface NodeShutdownOptions {
  periods: ShutdownGracePeriods;
  /** The node's active pods. */
  pods(): V1Pod[];
  /** Ends a pod for good, kept Failed; resolves once its containers are stopped. */
  terminate(pod: V1Pod, termination: KeptTermination): Promise<void>;
  /** Resolves once the pods' statuses are written (node mode: in the API). */
  flush?(): Promise<void>;
  /** A shutdown started (true) or was cancelled (false); awaited before the lock goes. */
  onChange?(shuttingDown: boolean): Promise<void>;
}

/** Stops the node's pods before a shutdown; see the module doc. */
export class NodeShutdownManager {
  readonly #o: NodeShutdownOptions;
  #logind?: ShutdownInhibitor;
  #shuttingDown = false;
  #lock?: ShutdownLock;
  /** Shutdown events are handled one after the other, as logind sends them. */
  #events: Promise<void> = Promise.resolve();
  #stopped = false;

  /** @param options the flags' periods and the pods' runtime. */
  constructor(options: NodeShutdownOptions) {
    this.#o = options;
  }

  /** Whether a shutdown is under way. */
  get shuttingDown(): boolean {
    return this.#shuttingDown;
  }

  /** The admission handler: no new pod while the node shuts down. */
  readonly admit: PodAdmitHandler = () => this.#shuttingDown ? NODE_SHUTDOWN_REJECTION : undefined;

  /**
   * Makes sure `logind` waits long enough, takes the lock and follows logind's announcements.
   *
   * @throws when logind's delay cannot be raised to `--shutdown-grace-period` or the lock
   *   cannot be taken (graceful shutdown is then off).
   */
  async start(logind: ShutdownInhibitor): Promise<void> {
    const { periods } = this.#o;
    this.#logind = logind;
    const wanted = periods.gracePeriodSeconds;
    const current = await logind.inhibitDelayMaxSeconds();
    if (current < wanted) {
      const raised = await logind.raiseInhibitDelayMax(wanted);
      if (raised < wanted) {
        throw new Error(
          `logind's InhibitDelayMaxSec stays ${raised} s after systemk raised it to ${wanted} s ` +
            `(--shutdown-grace-period): logind would not wait for the pods`,
        );
      }
      log.info(`logind's InhibitDelayMaxSec raised from ${current} s to ${wanted} s`);
    }
    logind.onPrepareForShutdown((active) => {
      // From the announcement on, no new pod is admitted.
      if (active) this.#shuttingDown = true;
      this.#events = this.#events.then(() => this.#prepare(active)).catch((e) =>
        log.error(`node shutdown: ${(e as Error).message}`)
      );
    });
    this.#lock = await logind.inhibitShutdown();
    log.info(
      `graceful node shutdown: pods get ${wanted} s (critical pods the last ` +
        `${periods.criticalPodsSeconds} s) when the machine shuts down`,
    );
  }

  /** Releases the lock (systemk stops: no one would stop the pods on a shutdown). */
  async stop(): Promise<void> {
    this.#stopped = true;
    await this.#events;
    await this.#release();
  }

  async #prepare(active: boolean): Promise<void> {
    if (this.#stopped) return;
    if (!active) {
      log.info("node shutdown cancelled: the node is ready again");
      this.#shuttingDown = false;
      await this.#o.onChange?.(false);
      this.#lock ??= await this.#logind!.inhibitShutdown();
      return;
    }
    this.#shuttingDown = true;
    const changed = this.#o.onChange?.(true).catch((e) =>
      log.warn(`node shutdown: reporting it: ${(e as Error).message}`)
    );
    await this.#terminatePods();
    await this.#o.flush?.();
    await changed;
    log.info("node shutdown: pods stopped; releasing the inhibitor lock");
    await this.#release();
  }

  /** Ends the active pods, group by group, each group within its period. */
  async #terminatePods(): Promise<void> {
    const groups = shutdownGroups(this.#o.pods(), this.#o.periods);
    for (const group of groups) {
      log.info(
        `node shutdown: stopping ${group.pods.length} pod(s) of priority ${group.priority} ` +
          `and above within ${group.graceSeconds} s`,
      );
      const stopped = Promise.all(group.pods.map((pod) =>
        this.#o.terminate(pod, {
          failure: NODE_SHUTDOWN,
          conditions: [NODE_SHUTDOWN_CONDITION],
          graceSeconds: podShutdownGraceSeconds(pod, group),
        }).catch((e) => log.warn(`node shutdown: stopping ${podKey(pod)}: ${(e as Error).message}`))
      ));
      let timer: ReturnType<typeof setTimeout> | undefined;
      const late = await Promise.race([
        stopped.then(() => false),
        new Promise<boolean>((r) => timer = setTimeout(() => r(true), group.graceSeconds * 1000)),
      ]);
      clearTimeout(timer);
      if (late) log.warn(`node shutdown: pods still stopping after ${group.graceSeconds} s`);
    }
  }

  async #release(): Promise<void> {
    const lock = this.#lock;
    this.#lock = undefined;
    await lock?.release();
  }
}
