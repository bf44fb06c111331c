/**
 * What the pod runtime is wired to ({@link RuntimeOptions}) and what it shares with its pod
 * workers ({@link PodRuntimeContext}).
 *
 * @module
 */
import type { V1Pod, V1PodCondition, V1PodStatus } from "@kubernetes/client-node";
import type { ContainerExec } from "../exec/container.ts";
import type { NodeFacts, SecurityPolicy } from "../plan/mod.ts";
import type { CpuMemory } from "../plan/allocation.ts";
import type { PodFailure } from "../status/mod.ts";
import type { ObservedUnits } from "./observed.ts";
import type {
  EventSink,
  ImageResolver,
  OomKills,
  References,
  StatusSink,
  UnitManager,
  UserRecordStore,
} from "./ports.ts";

/**
 * One of the kubelet's pod admit handlers: undefined to let a new pod in, else the reason and
 * message of its rejection.
 */
export type PodAdmitHandler = (pod: V1Pod) => PodFailure | undefined;

/** Everything the runtime is wired to. */
export interface RuntimeOptions {
  units: UnitManager;
  node: NodeFacts;
  images: ImageResolver;
  events: EventSink;
  onStatus: StatusSink;
  /** Fetches the ConfigMaps and Secrets a pod references. */
  references(pod: V1Pod): Promise<References>;
  /**
   * Where OOM kills of units are heard (the kernel log, oom.ts). Without it a memory-limit
   * kill shows as OOMKilled only where systemd itself says `Result=oom-kill` (cgroup v2).
   */
  oomKills?: OomKills;
  /**
   * Admission beyond the host ports every pod is checked for (the node shutdown manager's):
   * asked, in order, about each pod seen for the first time.
   */
  admitHandlers?: readonly PodAdmitHandler[];
  /** Called once a deleted pod's units and files are gone (node mode deletes the API object). */
  onTerminated?(pod: V1Pod): Promise<void> | void;
  stateDir?: string;
  /** `--allowed-host-paths`: prefixes hostPath volumes may use (none when absent). */
  allowedHostPaths?: readonly string[];
  /** Who pods may run as (`--allow-privileged`, `--allowed-host-users`, ...); default: the flags'. */
  policy?: SecurityPolicy;
  /** Makes the userdb records of pod ids; without it, pods run only with the host's ids. */
  userRecords?: UserRecordStore;
  /** First retry delay after a failed init container or a failed image install (ms). */
  backoffBaseMs?: number;
  /** Longest retry delay (ms). */
  backoffMaxMs?: number;
  /**
   * First delay before restarting an app container whose run ended (ms); doubles up to
   * 5 min. The kubelet's 10 s unless a test shortens it.
   */
  crashLoopBackoffBaseMs?: number;
}

/** A unit of a pod, as planned (or found on the machine). */
export interface UnitRef {
  container: string;
  init: boolean;
  text: string;
}

/** A pod's slice as installed: its name and file text. */
export interface SliceRef {
  name: string;
  text: string;
}

/** What systemk found of one pod on the machine: its units and its slice. */
export interface FoundPod {
  units: Map<string, UnitRef>;
  slice?: SliceRef;
}

/** What the runtime shares with each of its pod workers. */
export interface PodRuntimeContext extends RuntimeOptions {
  observed: ObservedUnits;
  /** Runs commands in the container of a unit (exec probes and hooks), where possible. */
  exec(unit: string): ContainerExec | undefined;
  /**
   * Makes pod `uid` the owner of `unit`; another pod (same namespace/name, other UID) that
   * still owns it is terminated first.
   */
  claim(unit: string, uid: string): Promise<void>;
  /** Pod `uid` removed `unit`. */
  release(unit: string, uid: string): void;
  /** The worker of pod `uid` removed the pod's units and files. */
  onRemoved(uid: string, pod: V1Pod): Promise<void>;
  /** A status computed for a pod. */
  onStatus(pod: V1Pod, status: V1PodStatus): void;
  /**
   * The node's allocatable CPU and memory as its Node object reports them (the machine less
   * the eviction reserve): what resizes must fit in; unknown when the node facts have none.
   */
  allocatable?: CpuMemory;
  /** The CPU and memory requests, as allocated, of every pod the node runs but `uid`. */
  othersRequests(uid: string): CpuMemory;
  /** Pod `uid` was allocated a resize: resizes deferred for want of room are tried again. */
  onResized(uid: string): void;
}

/**
 * Why and how systemk ends a pod while keeping it (the kubelet's `TerminatePodOptions`): phase
 * Failed with `failure` as reason and message, plus `conditions` (a `DisruptionTarget`); its
 * containers stopped within `graceSeconds` (else the pod's grace period).
 */
export interface KeptTermination {
  failure: PodFailure;
  conditions?: V1PodCondition[];
  graceSeconds?: number;
}

/** `namespace/name` of a pod, for messages. */
export function podKey(pod: V1Pod): string {
  return `${pod.metadata?.namespace ?? "default"}/${pod.metadata?.name ?? pod.metadata?.uid}`;
}
