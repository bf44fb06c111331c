/**
 * Inputs and outputs of the pure pod → units planner.
 *
 * @module
 */
import type { V1ConfigMap, V1Pod, V1Secret } from "@kubernetes/client-node";
import type { ContainerKind } from "./containers.ts";
import type { UnitFile } from "../unit/types.ts";

/** A user account as the node resolves it (from /etc/passwd or NSS). */
export interface UserInfo {
  name: string;
  uid: number;
  gid: number;
}

/** Facts about the node the planner needs; gathered by the caller, so planning stays pure. */
export interface NodeFacts {
  /** Node name as registered in Kubernetes. */
  name: string;
  /** The machine's hostname. */
  hostname: string;
  internalIP: string;
  externalIP: string;
  /** API server host and port as reachable from this node (host networking). */
  apiServerHost?: string;
  apiServerPort?: number;
  /** Resolves a user by name or by numeric id; undefined when unknown. */
  lookupUser(nameOrUid: string | number): UserInfo | undefined;
  /** Resolves a group name to its id; undefined when unknown. */
  lookupGroup(name: string): number | undefined;
  /**
   * Whether the node knows group id `gid` (systemd starts units only with known groups); absent
   * = not checked, and an unknown group fails the unit at start.
   */
  hasGroup?(gid: number): boolean;
  /**
   * Node allocatable resources: what the downward API reports for a limit the container does
   * not set (as the kubelet does). Undefined = unknown; such a reference is then an error.
   */
  allocatable?: { cpuMilli: number; memoryBytes: number; ephemeralStorageBytes?: number };
}

/** What the package backend learned about a container's image. */
export interface PackageInfo {
  /** Debian package name, or undefined for `/absolute/path` images. */
  name?: string;
  /** Text of the package's own service unit file, when it ships one. */
  unitText?: string;
  /** Name of that unit (e.g. `uptimed.service`). */
  unitName?: string;
}

/** Everything `planPod` needs. */
export interface PlanInput {
  pod: V1Pod;
  /** ConfigMaps of the pod's namespace that it references, by name (absent = not found). */
  configMaps: ReadonlyMap<string, V1ConfigMap>;
  /** Secrets of the pod's namespace that it references, by name (absent = not found). */
  secrets: ReadonlyMap<string, V1Secret>;
  node: NodeFacts;
  /** Per container name: what its image resolved to. Missing = synthesize the unit. */
  packages: ReadonlyMap<string, PackageInfo>;
  /** Projected service account tokens, by volume name + path; absent ones are skipped. */
  serviceAccountTokens?: ReadonlyMap<string, string>;
  /** Root of systemk's runtime state; default `/run/systemk`. */
  stateDir?: string;
  /**
   * Absolute path prefixes hostPath volumes may use (`--allowed-host-paths`); absent or empty =
   * no hostPath volume is allowed. `/` allows every path (except systemk's state directory).
   */
  allowedHostPaths?: readonly string[];
  /**
   * Per ephemeral container with a `targetContainerName`: the target as systemd runs it now.
   * An ephemeral container whose target is absent here (not running) is not planned yet.
   */
  targets?: ReadonlyMap<string, TargetContainer>;
}

/**
 * A running container that an ephemeral container targets (`kubectl debug --target`), as
 * systemd reports its unit: the ephemeral container enters its mount namespace (through
 * `RootDirectory=/proc/<main PID>/root`) and takes its identity and privilege limits.
 */
export interface TargetContainer {
  /** The target's main process: the root of its mount namespace is the entered root. */
  mainPID: number;
  /** `User=`, `Group=` ("" = unset) and `SupplementaryGroups=`, as systemd reports them. */
  user: string;
  group: string;
  supplementaryGroups: string[];
  umask: number;
  /** `NoNewPrivileges=`, set or implied by other settings of the unit. */
  noNewPrivileges: boolean;
  /** Capability sets as bit masks. */
  capabilityBoundingSet: bigint;
  ambientCapabilities: bigint;
  /** systemd's `WorkingDirectory` property: "" (= /), a path or `~`, `!` first if optional. */
  workingDirectory: string;
}

/** A unit the planner wants installed. */
export interface PlannedUnit {
  /** Unit name, e.g. `systemk.default.web.nginx.service`. */
  name: string;
  container: string;
  /** An init container (regular or sidecar), as its `[X-Kubernetes]` section records. */
  init: boolean;
  kind: ContainerKind;
  unit: UnitFile;
  /** Serialized unit file text. */
  text: string;
}

/**
 * The pod's slice (`systemk-pod<uid>.slice`): every container unit runs in it (`Slice=`), so the
 * pod's usage is read from it and pod-level `spec.resources` limit it.
 */
export interface PlannedSlice {
  name: string;
  unit: UnitFile;
  /** Serialized unit file text. */
  text: string;
}

/** A directory, file or tmpfs a pod's volumes need, with ownership and mode. */
export type VolumeEntry =
  | {
    kind: "dir";
    path: string;
    mode: number;
    uid: number;
    gid: number;
    /** The plan owns this directory's files: ones it does not list are removed on update. */
    managed?: boolean;
  }
  | {
    kind: "file";
    path: string;
    content: Uint8Array;
    mode: number;
    uid: number;
    gid: number;
    /** Secret or token content: never print or log it. */
    secret?: boolean;
  }
  | {
    kind: "tmpfs";
    path: string;
    sizeBytes?: number;
    mode: number;
    uid: number;
    gid: number;
  };

/** The full result of planning one pod. */
export interface PodPlan {
  /** `<stateDir>/<pod-uid>`: everything of this pod lives below it. */
  podDir: string;
  /** Installed before the units, which run in it. */
  slice: PlannedSlice;
  /** Init containers in order, then app containers, then ephemeral ones, in spec order. */
  units: PlannedUnit[];
  /**
   * Ephemeral containers that cannot run (yet), with the reason and message their status
   * shows: planning one fails alone, as the kubelet fails to create that container alone.
   */
  unplanned: UnplannedContainer[];
  /** In creation order (parents before children). */
  volumes: VolumeEntry[];
  /**
   * hostPath volumes whose `type` the applier must check (or create) on the node before
   * starting units; the planner cannot, as that is I/O.
   */
  hostPathChecks: HostPathCheck[];
}

/** An ephemeral container left out of a plan, and why. */
export interface UnplannedContainer {
  container: string;
  /** `CreateContainerConfigError`, `CreateContainerError`, ... */
  reason: string;
  message: string;
  /** Whether a later try may succeed without a new spec (its target is not running yet). */
  retry: boolean;
}

/** A hostPath volume's path and the `type` it must have (`DirectoryOrCreate`, `File`, ...). */
export interface HostPathCheck {
  volume: string;
  path: string;
  /** The Kubernetes `HostPathType`; `""` = no check. */
  type: string;
}

/** A planning failure a user must see: names the pod, the container and what to do. */
export class PlanError extends Error {
  /** Kubernetes-style reason for the pod status and Event, e.g. `CreateContainerConfigError`. */
  readonly reason: string;
  readonly container?: string;
  constructor(reason: string, message: string, container?: string) {
    super(message);
    this.name = "PlanError";
    this.reason = reason;
    this.container = container;
  }
}
