/**
 * What the pod runtime needs from the world, as narrow interfaces: systemd units, image
 * resolution, events and the status sink. Node mode and standalone mode plug in different
 * implementations; the runtime itself stays the same.
 *
 * @module
 */
import type {
  V1ConfigMap,
  V1Container,
  V1PersistentVolume,
  V1PersistentVolumeClaim,
  V1Pod,
  V1PodStatus,
  V1Secret,
} from "@kubernetes/client-node";
import type { ExecOptions, ExecProcess } from "../exec/container.ts";
import type { EventInfo } from "../kube/events.ts";
import type { PackageInfo, PodIds, TargetContainer } from "../plan/types.ts";
import type { UnitProperties } from "../unit/properties.ts";

/** A unit file systemk finds on the machine, with its text (for the metadata). */
export interface ExistingUnit {
  name: string;
  text: string;
}

/** The systemd operations the runtime uses. */
export interface UnitManager {
  /** Writes (or replaces) a unit file so the next start uses it. */
  install(name: string, text: string): Promise<void>;
  /** Stops if needed, deletes the file and forgets the unit. */
  remove(name: string): Promise<void>;
  /** Starts the unit; resolves with the job result (`done`, `failed`, `dependency`, ...). */
  start(name: string): Promise<string>;
  /** Stops the unit and waits for the stop job; resolves with its result. */
  stop(name: string): Promise<string>;
  /**
   * Gives a loaded unit new cgroup `properties` at once (its running processes keep running,
   * same invocation), e.g. `{ MemoryMax: 268435456n }`, then writes its file `text`, which says
   * the same: adoption after a restart of systemk, and the unit's next load, see them.
   */
  resize(name: string, to: { text: string; properties: Record<string, bigint> }): Promise<void>;
  /** Sends a signal to every process of the unit. */
  kill(name: string, signal: number): Promise<void>;
  resetFailed(name: string): Promise<void>;
  properties(name: string): Promise<UnitProperties>;
  /** The `ActiveState` of every systemk unit systemd has loaded, read in one cheap call. */
  activeStates(): Promise<Map<string, string>>;
  /** systemk's unit files currently installed. */
  list(): Promise<ExistingUnit[]>;
  /** Calls `listener` with a fresh snapshot whenever a unit's state changes. */
  onChange(listener: (name: string, props: UnitProperties) => void): void;
  /**
   * Runs a command inside the running container of unit `name` (src/exec/container.ts);
   * absent where commands cannot run in containers (`exec` probes and hooks then fail).
   */
  exec?(name: string, options: ExecOptions): Promise<ExecProcess>;
  /**
   * What an ephemeral container needs to enter the running container of unit `name` (its main
   * PID, identity and privilege limits); undefined while it is not running. Absent where
   * containers cannot be entered (such ephemeral containers then wait).
   */
  target?(name: string): Promise<TargetContainer | undefined>;
}

/** Turns a container's `image` into something runnable (package install, path check). */
export interface ImageResolver {
  /** Throws a PodError (reason ErrImagePull, InvalidImageName, ...) on failure. */
  resolve(pod: V1Pod, container: V1Container): Promise<PackageInfo>;
}

/** ConfigMaps and Secrets a pod references, as found (absent = not found). */
export interface References {
  configMaps: Map<string, V1ConfigMap>;
  secrets: Map<string, V1Secret>;
  /** Tokens for projected serviceAccountToken sources, by `serviceAccountTokenKey`. */
  serviceAccountTokens?: Map<string, string>;
  /** The claims of its persistentVolumeClaim volumes, by name (absent = not found). */
  persistentVolumeClaims?: Map<string, V1PersistentVolumeClaim>;
  /** The PersistentVolumes those claims are bound to, by name. */
  persistentVolumes?: Map<string, V1PersistentVolume>;
  /** This node's labels, for the PersistentVolumes' nodeAffinity. */
  nodeLabels?: Record<string, string>;
}

/** An Event about a pod, or one of its containers. */
export interface PodEventInfo extends EventInfo {
  /** The container's name when the Event is about one (its `fieldPath`); absent: the pod. */
  container?: string;
}

/** Where Kubernetes-style events go. */
export interface EventSink {
  record(pod: V1Pod, event: PodEventInfo): void;
}

/** Where the runtime hears that the kernel's OOM killer hit a unit (see oom.ts). */
export interface OomKills {
  /** Calls `listener` with the unit's name on each OOM kill of one of its processes. */
  onKill(listener: (unit: string) => void): void;
}

/** The userdb records of pod ids, counted by pod UID (src/node/user_records.ts). */
export interface UserRecordStore {
  /** Adds ids a pod runs with; their records exist when it resolves. */
  use(pod: string, ids: PodIds): Promise<void>;
  /** Forgets a pod's ids except `keep`; records no pod uses go. */
  release(pod: string, keep?: PodIds): Promise<void>;
  /** After a restart of systemk: the ids of the units found, by pod UID. */
  adopt(inUse: ReadonlyMap<string, PodIds>): Promise<void>;
}

/** Where computed pod statuses go. */
export type StatusSink = (pod: V1Pod, status: V1PodStatus) => void;

/** A lock that holds a shutdown back; releasing it lets the shutdown go on. */
export interface ShutdownLock {
  release(): Promise<void>;
}

/** What a graceful node shutdown needs from logind (src/systemd/logind.ts). */
export interface ShutdownInhibitor {
  /** How long logind waits for delay locks at most (`InhibitDelayMaxSec`), in seconds. */
  inhibitDelayMaxSeconds(): Promise<number>;
  /** Raises `InhibitDelayMaxSec` to `seconds`; resolves with the value logind then uses. */
  raiseInhibitDelayMax(seconds: number): Promise<number>;
  /** Takes a delay lock on shutdown. */
  inhibitShutdown(): Promise<ShutdownLock>;
  /** Calls `listener` with each `PrepareForShutdown`: true when a shutdown starts. */
  onPrepareForShutdown(listener: (active: boolean) => void): void;
}
