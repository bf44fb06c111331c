/**
 * Inputs and outputs of the pure pod → units planner.
 *
 * @module
 */
import type {
  V1ConfigMap,
  V1PersistentVolume,
  V1PersistentVolumeClaim,
  V1Pod,
  V1Secret,
} from "@kubernetes/client-node";
import type { UnitFile } from "../unit/types.ts";
import type { ClaimedVolume } from "./claims.ts";

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
   * PersistentVolumeClaims of the pod's namespace that it references, by name (absent = not
   * found).
   */
  persistentVolumeClaims?: ReadonlyMap<string, V1PersistentVolumeClaim>;
  /** The PersistentVolumes those claims are bound to, by name (absent = not found). */
  persistentVolumes?: ReadonlyMap<string, V1PersistentVolume>;
  /** This node's labels, which a PersistentVolume's `nodeAffinity` must match. */
  nodeLabels?: Readonly<Record<string, string>>;
}

/** A unit the planner wants installed. */
export interface PlannedUnit {
  /** Unit name, e.g. `systemk.default.web.nginx.service`. */
  name: string;
  container: string;
  init: boolean;
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
  /** Init containers in order, then app containers in spec order. */
  units: PlannedUnit[];
  /** In creation order (parents before children). */
  volumes: VolumeEntry[];
  /**
   * hostPath volumes whose `type` the applier must check (or create) on the node before
   * starting units; the planner cannot, as that is I/O.
   */
  hostPathChecks: HostPathCheck[];
  /**
   * The PersistentVolumes the pod's claims mount, for the applier to set up on the node before
   * the units start (the planner cannot: that is I/O).
   */
  claimMounts: ClaimMount[];
}

/**
 * A PersistentVolume a pod mounts, and what the node must do before its units bind it: check
 * the path (a `local` path must exist; a `hostPath` has its `type`), make the subPaths the
 * containers mount, and give a `local` volume mounted read-write to the pod's `fsGroup`.
 */
export interface ClaimMount extends ClaimedVolume {
  /** The pod's volume name. */
  volume: string;
  /**
   * The subPaths containers mount (`subPath`/`subPathExpr`): each relative `path` inside the
   * volume is pinned on `mountPoint` (below the pod's directory), which the unit binds.
   */
  subPaths: { path: string; mountPoint: string }[];
  /** The pod's `fsGroup` and `fsGroupChangePolicy`, when the volume's group must change. */
  fsGroup?: { gid: number; changePolicy: "Always" | "OnRootMismatch" };
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
