/**
 * The node controller: registers the Node, keeps its status current (on change and at least
 * every minute) and renews its Lease in `kube-node-lease` every 10 s, like virtual-kubelet's
 * node and lease controllers. Separate timers, so a slow status patch never delays a lease
 * renewal (the lease alone keeps the node Ready in the node lifecycle controller's eyes).
 *
 * @module
 */
import type { V1Node, V1NodeCondition } from "@kubernetes/client-node";
import {
  describeError,
  httpStatus,
  type KubeClients,
  type KubeLogger,
  MERGE_PATCH,
  microTime,
  STRATEGIC_MERGE_PATCH,
} from "./client.ts";
import { gatherMachineFacts } from "./machine.ts";
import {
  buildNode,
  LEASE_DURATION_SECONDS,
  type MachineFacts,
  NODE_LEASE_NAMESPACE,
  nodeConditions,
  type NodeConfig,
  nodeLabelPatch,
  nodeLease,
  nodeStatus,
  nodeStatusPatch,
  nodeTaintUpdate,
  type Readiness,
  statusFingerprint,
} from "./node.ts";
import { EventRecorder, nodeReference } from "./events.ts";
import { repeat } from "./_timer.ts";
import { log } from "../log/mod.ts";

/** Options of a {@link NodeController}. */
export interface NodeControllerOptions {
  /** API clients of the node identity. */
  clients: Pick<KubeClients, "core" | "coordination">;
  config: NodeConfig;
  /** Machine facts; default {@link gatherMachineFacts}. Tests substitute their own. */
  gatherFacts?: () => Promise<MachineFacts>;
  /** Whether the node can run pods (e.g. systemd answers); default always ready. */
  readiness?: () => Readiness;
  /** Lease renewal interval; default 10 s. */
  leaseRenewIntervalMs?: number;
  /** How often facts are re-checked for changes; default 10 s. */
  statusCheckIntervalMs?: number;
  /** Status is patched at least this often, changed or not; default 60 s. */
  statusReportIntervalMs?: number;
  log?: KubeLogger;
}

/**
 * Registers and heartbeats one Node.
 *
 * @example Usage
 * ```ts
 * const node = new NodeController({ clients, config });
 * await node.start(); // Node registered, status patched, Lease created
 * // ...
 * await node.stop(); // timers stopped; the Lease then expires and the node goes NotReady
 * ```
 */
export class NodeController {
  readonly #opts: Required<Omit<NodeControllerOptions, "clients" | "config">>;
  readonly #clients: NodeControllerOptions["clients"];
  readonly #config: NodeConfig;
  #uid = "";
  #conditions: V1NodeCondition[] | undefined;
  #fingerprint = "";
  #lastReport = 0;
  #abort: AbortController | undefined;
  #loops: Promise<void>[] = [];
  #statusChain: Promise<void> = Promise.resolve();

  /** @param options clients, configuration and intervals. */
  constructor(options: NodeControllerOptions) {
    this.#clients = options.clients;
    this.#config = options.config;
    this.#opts = {
      gatherFacts: options.gatherFacts ?? (() => gatherMachineFacts()),
      readiness: options.readiness ?? (() => ({ ready: true })),
      leaseRenewIntervalMs: options.leaseRenewIntervalMs ?? 10_000,
      statusCheckIntervalMs: options.statusCheckIntervalMs ?? 10_000,
      statusReportIntervalMs: options.statusReportIntervalMs ?? 60_000,
      log: options.log ?? log,
    };
  }

  /** UID of the registered Node ("" before `start`). */
  get nodeUID(): string {
    return this.#uid;
  }

  /**
   * Registers the Node (or brings an existing one's labels and taints in line), patches its
   * status, creates or renews its Lease, then keeps both fresh in the background.
   *
   * @throws when the Node can be neither read nor created (wrong credentials, say), so the
   * caller can exit with the reason.
   */
  async start(): Promise<void> {
    if (this.#abort) throw new Error("NodeController already started");
    await this.#register();
    await this.#updateStatus(true);
    await this.#renewLease();
    const abort = new AbortController();
    this.#abort = abort;
    const warn = (what: string) => (err: unknown) =>
      this.#opts.log.warn(`node ${this.#config.name}: ${what}: ${describeError(err)}`);
    this.#loops = [
      repeat(() => this.#renewLease(), {
        intervalMs: this.#opts.leaseRenewIntervalMs,
        signal: abort.signal,
        onError: warn("lease"),
      }),
      repeat(() => this.requestStatusUpdate(), {
        intervalMs: this.#opts.statusCheckIntervalMs,
        signal: abort.signal,
        onError: warn("status"),
      }),
    ];
  }

  /** Stops the timers and waits for in-flight requests. The Node and Lease stay as they are. */
  async stop(): Promise<void> {
    this.#abort?.abort();
    await Promise.all(this.#loops);
    await this.#statusChain.catch(() => {});
    this.#loops = [];
    this.#abort = undefined;
  }

  /**
   * Re-checks the facts now and patches the status if anything changed; for callers whose
   * readiness just changed. Serialized with the periodic checks.
   */
  requestStatusUpdate(): Promise<void> {
    const next = this.#statusChain.then(() => this.#updateStatus(false));
    this.#statusChain = next.catch(() => {});
    return next;
  }

  async #register(): Promise<void> {
    const { core } = this.#clients;
    const name = this.#config.name;
    let node: V1Node | undefined;
    try {
      node = await core.readNode({ name });
    } catch (err) {
      if (httpStatus(err) !== 404) throw err;
    }
    const facts = await this.#opts.gatherFacts();
    if (!node) {
      try {
        node = await core.createNode({
          body: buildNode(this.#config, {
            facts,
            now: new Date(),
            readiness: this.#opts.readiness(),
          }),
        });
        this.#opts.log.info(`node ${name}: registered`);
      } catch (err) {
        if (httpStatus(err) !== 409) throw err;
        node = await core.readNode({ name });
      }
    }
    // An existing Node (or one registered meanwhile) is brought in line, as the kubelet does
    // on re-registration.
    const labels = nodeLabelPatch(node, this.#config, { arch: facts.arch });
    if (labels) node = await core.patchNode({ name, body: labels }, STRATEGIC_MERGE_PATCH);
    node = await this.#reconcileTaints(node);
    this.#uid = node.metadata?.uid ?? "";
    this.#conditions = node.status?.conditions;
  }

  /**
   * Brings the Node's taints in line with the flags. NodeRestriction forbids a node to change
   * its own taints after registration: then the admin is told, in the log and in a Warning
   * Event on the Node, the `kubectl taint` commands that do it. A conflict (the node lifecycle
   * controller changed the taints meanwhile) is retried on a fresh read.
   */
  async #reconcileTaints(node: V1Node): Promise<V1Node> {
    const { core } = this.#clients;
    const name = this.#config.name;
    for (let attempt = 1;; attempt++) {
      const update = nodeTaintUpdate(node, this.#config);
      if (!update) return node;
      try {
        const patched = await core.patchNode({ name, body: update.patch }, STRATEGIC_MERGE_PATCH);
        if (update.taintsChange) {
          this.#opts.log.info(
            `node ${name}: taints brought in line: ${update.commands.join("; ")}`,
          );
        }
        return patched;
      } catch (err) {
        if (httpStatus(err) === 409 && attempt < 3) {
          node = await core.readNode({ name });
          continue;
        }
        if (httpStatus(err) !== 403) throw err;
        const message = `the Node's taints differ from --register-with-taints/--disable-taint, ` +
          `and a node may not change its own taints once registered (NodeRestriction): ` +
          `as cluster admin run ${update.commands.join("; ")} (or delete the Node so that ` +
          `systemk registers it again)`;
        this.#opts.log.warn(`node ${name}: ${message}`);
        const events = new EventRecorder({ clients: this.#clients, nodeName: name });
        events.record(nodeReference(name, node.metadata?.uid ?? ""), {
          type: "Warning",
          reason: "TaintsNotApplied",
          message,
        });
        await events.idle();
        return node;
      }
    }
  }

  async #updateStatus(force: boolean): Promise<void> {
    const facts = await this.#opts.gatherFacts();
    const now = new Date();
    const conditions = nodeConditions(facts, {
      readiness: this.#opts.readiness(),
      previous: this.#conditions,
      now,
    });
    const status = nodeStatus(this.#config, { facts, conditions });
    const fingerprint = statusFingerprint(status);
    const due = now.getTime() - this.#lastReport >= this.#opts.statusReportIntervalMs;
    if (!force && !due && fingerprint === this.#fingerprint) return;
    try {
      await this.#clients.core.patchNodeStatus(
        { name: this.#config.name, body: nodeStatusPatch(status) },
        STRATEGIC_MERGE_PATCH,
      );
    } catch (err) {
      if (httpStatus(err) !== 404) throw err;
      // Someone deleted the Node: register it again, as virtual-kubelet does.
      this.#opts.log.warn(`node ${this.#config.name}: Node was deleted; registering again`);
      this.#conditions = undefined;
      await this.#register();
      await this.#renewLease();
      return;
    }
    this.#conditions = conditions;
    this.#fingerprint = fingerprint;
    this.#lastReport = now.getTime();
  }

  async #renewLease(): Promise<void> {
    const { coordination } = this.#clients;
    const name = this.#config.name;
    const lease = nodeLease({ name, uid: this.#uid }, microTime());
    try {
      // A merge patch needs no read first and also repairs a stale owner reference after
      // the Node was re-registered with a new UID.
      await coordination.patchNamespacedLease({
        name,
        namespace: NODE_LEASE_NAMESPACE,
        body: {
          metadata: { ownerReferences: lease.metadata?.ownerReferences },
          spec: {
            holderIdentity: name,
            leaseDurationSeconds: LEASE_DURATION_SECONDS,
            renewTime: lease.spec?.renewTime,
          },
        },
      }, MERGE_PATCH);
    } catch (err) {
      if (httpStatus(err) !== 404) throw err;
      await coordination.createNamespacedLease({ namespace: NODE_LEASE_NAMESPACE, body: lease });
    }
  }
}
