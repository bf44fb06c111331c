/**
 * The pods bound to this node, as a stream of upserts and deletes (LIST + WATCH with
 * `fieldSelector=spec.nodeName=<node>`, bookmarks, 410 → relist, and a watchdog that relists
 * a watch gone silent; see `_reflector.ts`).
 *
 * @module
 */
import type { V1Pod } from "@kubernetes/client-node";
import type { KubeClients, KubeLogger } from "./client.ts";
import { Reflector } from "./_reflector.ts";
import { log } from "../log/mod.ts";

/**
 * One change of a pod bound to the node. For a delete found by a relist (the DELETED event
 * itself was missed) `pod` is a stub carrying only `metadata.namespace/name/uid`.
 */
export interface PodEvent {
  type: "upsert" | "delete";
  pod: V1Pod;
}

/** Options of a {@link PodWatcher}. */
export interface PodWatcherOptions {
  /** API clients of the node identity (tests may wrap `watch`). */
  clients: Pick<KubeClients, "core" | "watch">;
  nodeName: string;
  /** Receives every change, in order; must not throw. */
  onEvent: (event: PodEvent) => void;
  /** Relist when the watch delivers nothing (not even a bookmark) this long; default 5 min. */
  quietTimeoutMs?: number;
  log?: KubeLogger;
}

function creationTime(pod: V1Pod): number {
  const created = pod.metadata?.creationTimestamp;
  return created ? new Date(created).getTime() : 0;
}

/**
 * Lists and watches the pods with `spec.nodeName=<node>`. A listing's pods arrive oldest first
 * (by `creationTimestamp`, as the kubelet sorts pod additions). Upserts repeat only when the
 * pod's resourceVersion changed; after a relist, pods that vanished meanwhile arrive as deletes.
 *
 * @example Usage
 * ```ts
 * const pods = new PodWatcher({ clients, nodeName: "n1", onEvent: (e) => queue.push(e) });
 * await pods.start(); // resolves once the initial list has been delivered
 * await pods.stop();
 * ```
 */
export class PodWatcher {
  readonly #reflector: Reflector<V1Pod>;

  /** @param options clients, node name, event callback, watchdog timeout. */
  constructor(options: PodWatcherOptions) {
    const fieldSelector = `spec.nodeName=${options.nodeName}`;
    const { core, watch } = options.clients;
    this.#reflector = new Reflector<V1Pod>({
      watch,
      // Oldest first, so admission meets them in the kubelet's order (older pods win a port).
      list: async () => {
        const list = await core.listPodForAllNamespaces({ fieldSelector });
        list.items.sort((a, b) => creationTime(a) - creationTime(b));
        return list;
      },
      path: "/api/v1/pods",
      query: { fieldSelector },
      model: "V1Pod",
      onEvent: ({ type, object }) => options.onEvent({ type, pod: object }),
      quietTimeoutMs: options.quietTimeoutMs ?? 5 * 60_000,
      description: `pods of node ${options.nodeName}`,
      log: options.log ?? log,
    });
  }

  /** How many LISTs have been made (the first included); for logs and tests. */
  get listCount(): number {
    return this.#reflector.listCount;
  }

  /** Number of pods currently on the node. */
  get size(): number {
    return this.#reflector.size;
  }

  /** Starts; resolves once the first LIST has been delivered. LIST failures are retried. */
  start(): Promise<void> {
    return this.#reflector.start();
  }

  /** Stops the watch and waits until no more events will be delivered. */
  stop(): Promise<void> {
    return this.#reflector.stop();
  }

  /** Ends the current watch and relists now (e.g. after the consumer suspects a gap). */
  relist(): void {
    this.#reflector.relist();
  }
}
