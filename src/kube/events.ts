/**
 * Kubernetes Events about pods and the node, as the kubelet records them: core/v1 Events in
 * the object's namespace, `source.component: kubelet` and `source.host: <node>` (so
 * `kubectl describe` shows them as the kubelet's), repeats of the same object + reason +
 * message folded into one Event whose `count` and `lastTimestamp` grow. Recording never
 * throws and never blocks the caller: failures are logged.
 *
 * @module
 */
import type { CoreV1Event, V1ObjectReference, V1Pod } from "@kubernetes/client-node";
import {
  describeError,
  httpStatus,
  type KubeClients,
  type KubeLogger,
  MERGE_PATCH,
} from "./client.ts";
import { log } from "../log/mod.ts";

/** Event type as Kubernetes defines it. */
export type EventType = "Normal" | "Warning";

/** What happened. */
export interface EventInfo {
  type: EventType;
  /** CamelCase reason: Pulling, Pulled, Created, Started, Killing, BackOff, Failed, ... */
  reason: string;
  message: string;
}

/** Longest message kept; longer ones are cut (the events API caps notes at 1 KiB). */
export const MAX_EVENT_MESSAGE = 1024;

/**
 * The object reference for a pod, or one of its containers (`fieldPath`
 * `spec.containers{name}` / `spec.initContainers{name}`, as the kubelet writes it).
 *
 * @param pod the pod (namespace, name, uid, resourceVersion are used).
 * @param container a container name, with `init: true` for an init container.
 * @example Usage
 * ```ts
 * import assert from "node:assert/strict";
 * const ref = podReference({ metadata: { namespace: "d", name: "p", uid: "u" } }, { name: "c" });
 * assert.equal(ref.fieldPath, "spec.containers{c}");
 * ```
 */
export function podReference(
  pod: V1Pod,
  container?: { name: string; init?: boolean },
): V1ObjectReference {
  const m = pod.metadata ?? {};
  const ref: V1ObjectReference = {
    apiVersion: "v1",
    kind: "Pod",
    namespace: m.namespace,
    name: m.name,
    uid: m.uid,
    resourceVersion: m.resourceVersion,
  };
  if (container) {
    ref.fieldPath = `spec.${container.init ? "initContainers" : "containers"}{${container.name}}`;
  }
  return ref;
}

/**
 * The object reference for the Node (its Events go to the `default` namespace, as the
 * kubelet's do).
 *
 * @param name node name.
 * @param uid the Node's UID.
 */
export function nodeReference(name: string, uid: string): V1ObjectReference {
  return { apiVersion: "v1", kind: "Node", name, uid, namespace: "" };
}

/** Key under which repeats fold: same object (incarnation and field), type, reason, message. */
export function aggregationKey(involved: V1ObjectReference, info: EventInfo): string {
  return [
    involved.kind,
    involved.namespace,
    involved.name,
    involved.uid,
    involved.fieldPath ?? "",
    info.type,
    info.reason,
    info.message,
  ].join("\u0000");
}

/**
 * A new Event.
 *
 * @param involved the object it is about.
 * @param info type, reason, message.
 * @param options event name, node name, time.
 */
export function buildEvent(
  involved: V1ObjectReference,
  info: EventInfo,
  options: { name: string; nodeName: string; now: Date },
): CoreV1Event {
  return {
    metadata: { name: options.name, namespace: eventNamespace(involved) },
    involvedObject: involved,
    type: info.type,
    reason: info.reason,
    message: info.message.length > MAX_EVENT_MESSAGE
      ? info.message.slice(0, MAX_EVENT_MESSAGE - 3) + "..."
      : info.message,
    source: { component: "kubelet", host: options.nodeName },
    reportingComponent: "systemk",
    reportingInstance: options.nodeName,
    firstTimestamp: options.now,
    lastTimestamp: options.now,
    count: 1,
  };
}

function eventNamespace(involved: V1ObjectReference): string {
  return involved.namespace || "default";
}

/** An Event already created, for folding repeats into it. */
interface Recorded {
  namespace: string;
  name: string;
  count: number;
}

/** Options of an {@link EventRecorder}. */
export interface EventRecorderOptions {
  clients: Pick<KubeClients, "core">;
  nodeName: string;
  /** How many distinct (object, reason, message) keys to remember for folding; default 512. */
  cacheSize?: number;
  /** Events waiting beyond this are dropped (and logged); default 1000. */
  maxQueued?: number;
  log?: KubeLogger;
}

/**
 * Records Events.
 *
 * @example Usage
 * ```ts
 * const events = new EventRecorder({ clients, nodeName: "n1" });
 * events.record(podReference(pod, { name: "web" }), {
 *   type: "Normal", reason: "Started", message: "Started container web",
 * });
 * ```
 */
export class EventRecorder {
  readonly #core: EventRecorderOptions["clients"]["core"];
  readonly #nodeName: string;
  readonly #cacheSize: number;
  readonly #maxQueued: number;
  readonly #log: KubeLogger;
  /** Insertion-ordered: the first key is the least recently used. */
  readonly #recorded = new Map<string, Recorded>();
  #queue: Promise<void> = Promise.resolve();
  #queued = 0;
  #sequence = 0;

  /** @param options clients, node name, cache size. */
  constructor(options: EventRecorderOptions) {
    this.#core = options.clients.core;
    this.#nodeName = options.nodeName;
    this.#cacheSize = options.cacheSize ?? 512;
    this.#maxQueued = options.maxQueued ?? 1000;
    this.#log = options.log ?? log;
  }

  /**
   * Records an Event in the background, in order with the ones before it. Never throws.
   *
   * @param involved the object it is about (see {@link podReference}).
   * @param info type, reason, message.
   */
  record(involved: V1ObjectReference, info: EventInfo): void {
    if (this.#queued >= this.#maxQueued) {
      this.#log.warn(`event dropped (queue full): ${info.reason}: ${info.message}`);
      return;
    }
    this.#queued++;
    this.#queue = this.#queue.then(() => this.#send(involved, info)).catch((err) => {
      this.#log.warn(
        `event ${info.reason} for ${involved.kind} ${involved.namespace}/${involved.name}: ` +
          describeError(err),
      );
    }).finally(() => this.#queued--);
  }

  /** Resolves when every Event recorded so far has been sent (or has failed). */
  idle(): Promise<void> {
    return this.#queue;
  }

  async #send(involved: V1ObjectReference, info: EventInfo): Promise<void> {
    const key = aggregationKey(involved, info);
    const now = new Date();
    const seen = this.#recorded.get(key);
    if (seen) {
      this.#recorded.delete(key);
      try {
        await this.#core.patchNamespacedEvent({
          namespace: seen.namespace,
          name: seen.name,
          body: { count: seen.count + 1, lastTimestamp: now.toISOString() },
        }, MERGE_PATCH);
        seen.count++;
        this.#remember(key, seen);
        return;
      } catch (err) {
        // Expired (events live an hour) or deleted: start a new one.
        if (httpStatus(err) !== 404) throw err;
      }
    }
    const name = `${involved.name}.${
      (BigInt(now.getTime()) * 1_000_000n + BigInt(this.#sequence++ % 1e6)).toString(16)
    }`;
    const event = buildEvent(involved, info, { name, nodeName: this.#nodeName, now });
    const namespace = eventNamespace(involved);
    await this.#core.createNamespacedEvent({ namespace, body: event });
    this.#remember(key, { namespace, name, count: 1 });
  }

  #remember(key: string, recorded: Recorded): void {
    this.#recorded.set(key, recorded);
    if (this.#recorded.size > this.#cacheSize) {
      this.#recorded.delete(this.#recorded.keys().next().value!);
    }
  }
}
