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
import type { ContainerKind } from "./containers.ts";
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
  /** The name of the host's group `gid` (from /etc/group); undefined when the host has none. */
  groupName(gid: number): string | undefined;
  /**
   * Whether NSS resolves systemd's userdb drop-in records on this node (nss-systemd named on
   * the `passwd` and `group` lines of /etc/nsswitch.conf, as on Debian by default): then the ids
   * of the pod id range that no host account uses run with records systemk makes. Absent or
   * false: such ids are refused, as systemd 252 fails a unit whose user or group NSS does not
   * know (status 217/USER, 216/GROUP).
   */
  userRecords?: boolean;
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
  /**
   * Text of the package's service unit file: the one named after the package, wherever the
   * install put it (a dependency may ship it), else the only service the package ships.
   */
  unitText?: string;
  /** Name of that unit (e.g. `uptimed.service`). */
  unitName?: string;
  /** The units the package ships, for a message when none of them is its template. */
  shippedUnits?: string[];
}

/** An inclusive range of user or group ids. */
export interface IdRange {
  min: number;
  max: number;
}

/**
 * What the node's administrator lets pods run as (the flags `--allow-privileged`,
 * `--allowed-host-users`, `--allowed-host-groups`, `--pod-id-range`).
 *
 * Ids are either *pod ids* — inside `podIDRanges` and used by no account or group of the host
 * (/etc/passwd, /etc/group) — which every pod may use, or *host ids*: the host's own accounts
 * and groups and every id outside the ranges (where packages create their accounts). A host id
 * needs the administrator's permission (the lists below); a package unit's own `User=`/`Group=`
 * (and that user's primary group) counts as permitted, being the choice of a package the
 * administrator's apt sources provide, except root.
 */
export interface SecurityPolicy {
  /** `privileged: true` containers are allowed. */
  allowPrivileged: boolean;
  /** Host accounts (names or uids) containers may run as; `root` allows uid 0. */
  allowedHostUsers: readonly string[];
  /** Host groups (names or gids) containers may run with. */
  allowedHostGroups: readonly string[];
  /** Where pod ids lie. */
  podIDRanges: readonly IdRange[];
}

/**
 * The flags' defaults: root and privileged containers allowed (packaged daemons need them),
 * the host accounts `daemon` and `nobody` (they own no files on Debian; the seed's examples run
 * as `daemon`), the group `nogroup`, and pod ids from 1000 to 59999 and from 65536 up — not
 * Debian's system range (0–999), nor 60000–65535, where systemd allocates dynamic and homed
 * users and keeps `nobody` and the invalid 65535.
 */
export const DEFAULT_SECURITY_POLICY: SecurityPolicy = {
  allowPrivileged: true,
  allowedHostUsers: ["root", "daemon", "nobody"],
  allowedHostGroups: ["nogroup"],
  podIDRanges: [{ min: 1000, max: 59999 }, { min: 65536, max: 2 ** 31 - 1 }],
};

/**
 * The pod ids a pod runs with: users and groups that need userdb records on the node. A user
 * record's primary group is the group of the same id, which is listed too.
 */
export interface PodIds {
  users: number[];
  groups: number[];
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
  /** Who pods may run as; absent = {@link DEFAULT_SECURITY_POLICY}. */
  policy?: SecurityPolicy;
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
    /** The container writes it (a daemon's PID file): created when missing, never rewritten. */
    preserve?: boolean;
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
   * Every hostPath a unit binds (a volume's path, or a subPath into it) for the applier to
   * check on the node before starting units — the planner cannot, as that is I/O: resolved
   * (symlinks followed, as systemd follows them) it must still be allowed, and have its `type`.
   */
  hostPathChecks: HostPathCheck[];
  /**
   * The PersistentVolumes the pod's claims mount, for the applier to set up on the node before
   * the units start (the planner cannot: that is I/O).
   */
  claimMounts: ClaimMount[];
  /** Pod ids the units run with, which need userdb records before they start. */
  podIds: PodIds;
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

/** An ephemeral container left out of a plan, and why. */
export interface UnplannedContainer {
  container: string;
  /** `CreateContainerConfigError`, `CreateContainerError`, ... */
  reason: string;
  message: string;
  /** Whether a later try may succeed without a new spec (its target is not running yet). */
  retry: boolean;
}

/** A hostPath a unit binds and the `type` it must have (`DirectoryOrCreate`, `File`, ...). */
export interface HostPathCheck {
  volume: string;
  path: string;
  /** The Kubernetes `HostPathType`; `""` = no type check (a subPath's is always `""`). */
  type: string;
}
