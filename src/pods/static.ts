/**
 * Static pods: Pods read from a directory of manifest files, like the kubelet's
 * `--pod-manifest-path`. This is the source of standalone mode (no API server at all), and of
 * node mode's static pods (mirrored into the API, see mirror.ts).
 *
 * As the kubelet does, a static pod's name gets the node name appended and its UID is a hash
 * of its manifest, its file and the node: editing a manifest replaces the pod.
 *
 * @module
 */
import type { V1ConfigMap, V1Pod, V1Secret } from "@kubernetes/client-node";
import { createHash } from "node:crypto";
import { parseManifests } from "../plan/manifest.ts";
import type { References } from "./ports.ts";
import { log } from "../log/mod.ts";

/** One file that could not be used, and why. */
export interface ManifestError {
  file: string;
  message: string;
}

/** What a manifest directory holds. */
export interface ManifestSet {
  pods: V1Pod[];
  configMaps: V1ConfigMap[];
  secrets: V1Secret[];
  errors: ManifestError[];
  /** Files that parsed, so a caller can keep the last good version of the others. */
  goodFiles: Set<string>;
}

const MANIFEST = /\.(ya?ml|json)$/;
/** Annotation naming a static pod's manifest file. */
const MANIFEST_ANNOTATION = "systemk.io/manifest";

/** A manifest set of nothing: what a directory holds before it is first read. */
function emptyManifestSet(): ManifestSet {
  return { pods: [], configMaps: [], secrets: [], errors: [], goodFiles: new Set() };
}

/** Reads every `*.yaml`, `*.yml` and `*.json` file of `dir` (not recursive, hidden files skipped). */
export async function readManifestDir(dir: string, nodeName: string): Promise<ManifestSet> {
  const set = emptyManifestSet();
  const files = [];
  for await (const entry of Deno.readDir(dir)) {
    if (
      (entry.isFile || entry.isSymlink) && MANIFEST.test(entry.name) && !entry.name.startsWith(".")
    ) {
      files.push(`${dir}/${entry.name}`);
    }
  }
  for (const file of files.sort()) {
    try {
      const found = parseManifests(await Deno.readTextFile(file));
      set.pods.push(...found.pods.map((pod) => staticPod(pod, { file, nodeName })));
      set.configMaps.push(...found.configMaps);
      set.secrets.push(...found.secrets);
      set.goodFiles.add(file);
    } catch (e) {
      set.errors.push({ file, message: (e as Error).message });
    }
  }
  return set;
}

/** Options of {@link staticPod}: where the pod comes from. */
export interface StaticPodOptions {
  /** The manifest file (its path is part of the pod's UID). */
  file: string;
  /** The node that runs it: its name suffixes the pod's, and is part of its UID. */
  nodeName: string;
}

/** The pod as the node runs it: namespaced, bound to the node, named and UID'd like the kubelet. */
export function staticPod(pod: V1Pod, options: StaticPodOptions): V1Pod {
  const { file, nodeName } = options;
  const manifest = JSON.stringify(pod);
  const uid = createHash("sha256").update(`${nodeName}\0${file}\0${manifest}`).digest("hex");
  const namespace = pod.metadata?.namespace ?? "default";
  return {
    ...pod,
    apiVersion: "v1",
    kind: "Pod",
    metadata: {
      ...pod.metadata,
      name: `${pod.metadata?.name}-${nodeName}`,
      namespace,
      uid: `${uid.slice(0, 8)}-${uid.slice(8, 12)}-${uid.slice(12, 16)}-${uid.slice(16, 20)}-${
        uid.slice(20, 32)
      }`,
      annotations: {
        ...pod.metadata?.annotations,
        "kubernetes.io/config.source": "file",
        "kubernetes.io/config.hash": uid.slice(0, 32),
        [MANIFEST_ANNOTATION]: file,
      },
    },
    spec: { restartPolicy: "Always", ...pod.spec!, nodeName },
  };
}

/** The manifest file a static pod came from; undefined for a pod from the API. */
export function manifestOf(pod: V1Pod): string | undefined {
  return pod.metadata?.annotations?.[MANIFEST_ANNOTATION];
}

/** How often the directory is read again even without a change notification (the kubelet: 20 s). */
const RESCAN_MS = 20_000;

/** Options of a {@link StaticPodSource}. */
export interface StaticPodSourceOptions {
  dir: string;
  nodeName: string;
  /**
   * Called after each read of the directory (one at a time): the static pods wanted now, and
   * the UIDs of those wanted before and no longer (removed or edited manifests).
   */
  onChange(pods: V1Pod[], removed: string[]): Promise<void> | void;
  /** Reports unreadable files and directories; default systemk's logger. */
  log?: (message: string) => void;
  /** How often the directory is read without a notification; default 20 s, as the kubelet. */
  rescanMs?: number;
}

/**
 * Follows a manifest directory: reads it at start, on change notifications and every 20 s.
 * A file that stops parsing keeps its last good pods (an edit in progress disturbs nothing).
 * A directory that is missing at start is looked for at each rescan, as the kubelet does.
 *
 * @example Usage
 * ```ts
 * const source = new StaticPodSource({ dir, nodeName, onChange: (pods, removed) => {} });
 * await source.start(); // the first read has been delivered
 * await source.stop();
 * ```
 */
export class StaticPodSource {
  readonly #opts: StaticPodSourceOptions;
  readonly #log: (message: string) => void;
  #manifests = emptyManifestSet();
  readonly #lastGood = new Map<string, V1Pod[]>();
  #wanted = new Set<string>();
  #scanning: Promise<void> = Promise.resolve();
  #watcher?: Deno.FsWatcher;
  #watching?: Promise<void>;
  #timer?: ReturnType<typeof setInterval>;
  #pending?: ReturnType<typeof setTimeout>;

  /** @param options the directory, the node, and where changes go. */
  constructor(options: StaticPodSourceOptions) {
    this.#opts = options;
    this.#log = options.log ?? ((message) => log.warn(message));
  }

  /** Reads the directory once, delivers it, then follows its changes. */
  async start(): Promise<void> {
    await this.#scan();
    this.#timer = setInterval(() => this.#rescan(), this.#opts.rescanMs ?? RESCAN_MS);
    this.#watch();
  }

  /** Follows change notifications once the directory exists. */
  #watch(): void {
    if (this.#watcher) return;
    let watcher: Deno.FsWatcher;
    try {
      watcher = Deno.watchFs(this.#opts.dir, { recursive: false });
    } catch {
      return; // the read said why; rescans go on, and watch once the directory is there
    }
    this.#watcher = watcher;
    this.#watching = (async () => {
      for await (const _ of watcher) this.#rescan();
    })();
  }

  /** Stops following the directory; a read in progress finishes first. */
  async stop(): Promise<void> {
    clearInterval(this.#timer);
    clearTimeout(this.#pending);
    this.#watcher?.close();
    await this.#watching;
    await this.#scanning;
  }

  /**
   * The ConfigMaps and Secrets of the directory in the pod's namespace: a static pod's
   * references come from its manifests, never from an API server.
   */
  references(pod: V1Pod): References {
    const ns = pod.metadata!.namespace!;
    const inNs = <T extends { metadata?: { name?: string; namespace?: string } }>(list: T[]) =>
      new Map(
        list.filter((o) => (o.metadata?.namespace ?? "default") === ns)
          .map((o) => [o.metadata!.name!, o]),
      );
    return { configMaps: inNs(this.#manifests.configMaps), secrets: inNs(this.#manifests.secrets) };
  }

  /** Coalesces bursts of notifications (an editor writes several times) into one read. */
  #rescan(): void {
    clearTimeout(this.#pending);
    this.#pending = setTimeout(() => {
      this.#watch();
      void this.#scan();
    }, 100);
  }

  #scan(): Promise<void> {
    this.#scanning = this.#scanning.then(() => this.#read());
    return this.#scanning;
  }

  async #read(): Promise<void> {
    const { dir, nodeName } = this.#opts;
    const next = await readManifestDir(dir, nodeName).catch((e) => {
      this.#log(`reading ${dir}: ${(e as Error).message}`);
      return undefined;
    });
    if (!next) return;
    for (const error of next.errors) this.#log(`${error.file}: ${error.message}`);
    for (const file of next.goodFiles) {
      this.#lastGood.set(file, next.pods.filter((p) => manifestOf(p) === file));
    }
    const broken = new Set(next.errors.map((e) => e.file));
    for (const file of [...this.#lastGood.keys()]) {
      if (!next.goodFiles.has(file) && !broken.has(file)) this.#lastGood.delete(file);
    }
    this.#manifests = next;
    const pods = [...this.#lastGood.values()].flat();
    const wanted = new Set(pods.map((p) => p.metadata!.uid!));
    const removed = [...this.#wanted].filter((uid) => !wanted.has(uid));
    this.#wanted = wanted;
    try {
      await this.#opts.onChange(pods, removed);
    } catch (e) {
      this.#log(`static pods of ${dir}: ${(e as Error).message}`);
    }
  }
}
