/**
 * The user's view of pods: an admin watch on the pods of a namespace that stamps each event
 * with its arrival time, plus creating and deleting bench pods through the API.
 *
 * @module
 */
import {
  CoreV1Api,
  type KubeConfig,
  type V1Pod,
  type V1Probe,
  Watch,
} from "@kubernetes/client-node";

/** Epoch milliseconds with sub-millisecond resolution (comparable with audit and systemd times). */
export const now = (): number => performance.timeOrigin + performance.now();

/** When the watch saw what happen to one pod (epoch ms, arrival of the event). */
export interface PodTimes {
  uid?: string;
  added?: number;
  /** First event showing phase Running with every container running. */
  running?: number;
  /** First event with the Ready condition True. */
  ready?: number;
  /** First event carrying a deletionTimestamp. */
  terminating?: number;
  /** The DELETED event. */
  deleted?: number;
  /** The node the pod ran on. */
  nodeName?: string;
}

/** All containers of the pod are running and the phase says so. */
export function allRunning(pod: V1Pod): boolean {
  const statuses = pod.status?.containerStatuses ?? [];
  return pod.status?.phase === "Running" &&
    statuses.length === (pod.spec?.containers?.length ?? 0) &&
    statuses.every((s) => s.state?.running !== undefined);
}

/** The pod's Ready condition is True (for probed pods: their readiness probes succeed). */
export function isReady(pod: V1Pod): boolean {
  return pod.status?.conditions?.some((c) => c.type === "Ready" && c.status === "True") ?? false;
}

/**
 * Watches the pods of one namespace as the cluster admin and records, per pod name, when each
 * milestone arrived. Pod names are never reused within a run, so names identify pods.
 */
export class PodTracker {
  readonly times = new Map<string, PodTimes>();
  readonly #watch: Watch;
  readonly #core: CoreV1Api;
  readonly #namespace: string;
  #request?: AbortController;
  #resourceVersion = "";
  #stopped = false;
  #waiters = new Set<() => void>();

  constructor(kubeConfig: KubeConfig, namespace: string) {
    this.#watch = new Watch(kubeConfig);
    this.#core = kubeConfig.makeApiClient(CoreV1Api);
    this.#namespace = namespace;
  }

  /** Lists once (to get a resourceVersion), then watches until {@link stop}. */
  async start(): Promise<void> {
    const list = await this.#core.listNamespacedPod({ namespace: this.#namespace });
    this.#resourceVersion = list.metadata?.resourceVersion ?? "";
    for (const pod of list.items) this.#record("ADDED", pod);
    await this.#open();
  }

  async #open(): Promise<void> {
    this.#request = await this.#watch.watch(
      `/api/v1/namespaces/${this.#namespace}/pods`,
      { resourceVersion: this.#resourceVersion, allowWatchBookmarks: true },
      (type: string, pod: V1Pod) => {
        this.#resourceVersion = pod.metadata?.resourceVersion ?? this.#resourceVersion;
        if (type !== "BOOKMARK") this.#record(type, pod);
      },
      (err?: unknown) => {
        if (this.#stopped) return;
        if (err) console.error(`bench: pod watch ended: ${err}; reopening`);
        // The apiserver ends watches after a while; continue where this one stopped.
        this.#open().catch((e) => console.error(`bench: cannot reopen the pod watch: ${e}`));
      },
    );
  }

  #record(type: string, pod: V1Pod): void {
    const t = now();
    const name = pod.metadata!.name!;
    const times = this.times.get(name) ?? {};
    this.times.set(name, times);
    times.uid ??= pod.metadata?.uid;
    times.nodeName ??= pod.spec?.nodeName;
    if (type === "DELETED") times.deleted ??= t;
    else {
      times.added ??= t;
      if (pod.metadata?.deletionTimestamp) times.terminating ??= t;
      else if (allRunning(pod)) times.running ??= t;
      if (!pod.metadata?.deletionTimestamp && isReady(pod)) times.ready ??= t;
    }
    for (const wake of this.#waiters) wake();
  }

  /** Resolves once `done()` holds (checked at every event), or throws after `timeoutMs`. */
  until(what: string, done: () => boolean, timeoutMs: number): Promise<void> {
    if (done()) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const wake = () => {
        if (!done()) return;
        this.#waiters.delete(wake);
        clearTimeout(timer);
        resolve();
      };
      const timer = setTimeout(() => {
        this.#waiters.delete(wake);
        reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}`));
      }, timeoutMs);
      this.#waiters.add(wake);
    });
  }

  /** Names whose pods reached `milestone`, among `names`. */
  count(names: readonly string[], milestone: keyof PodTimes): number {
    return names.filter((n) => this.times.get(n)?.[milestone] !== undefined).length;
  }

  /** Ends the watch. */
  stop(): void {
    this.#stopped = true;
    this.#request?.abort();
  }
}

/** A bench pod: one container running `/bin/sleep infinity` (exits on SIGTERM). */
export function sleepPod(name: string, nodeName: string | undefined, labels = {}): V1Pod {
  return {
    apiVersion: "v1",
    kind: "Pod",
    metadata: { name, labels: { "systemk-bench": "1", ...labels } },
    spec: {
      nodeName,
      containers: [{ name: "c", image: "/bin/sleep", command: ["/bin/sleep", "infinity"] }],
    },
  };
}

/** A {@link sleepPod} whose container has `probe` as its readiness probe. */
export function probedPod(name: string, nodeName: string, probe: V1Probe): V1Pod {
  const pod = sleepPod(name, nodeName);
  pod.spec!.containers[0].readinessProbe = probe;
  return pod;
}

/** Runs `work` over `items` with at most `limit` in flight, in order of start. */
export async function inParallel<T>(
  items: readonly T[],
  limit: number,
  work: (item: T) => Promise<unknown>,
): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < items.length) await work(items[next++]);
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}
