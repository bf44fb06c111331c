/**
 * The Node object systemk registers, as pure functions of the node's configuration and the
 * machine's facts: labels, taint, addresses, capacity, nodeInfo, conditions, and the patches
 * that bring an existing Node in line without touching what others own. The I/O lives in
 * `machine.ts` (gathering facts) and `node_controller.ts` (talking to the API server).
 *
 * @module
 */
import type {
  V1Lease,
  V1Node,
  V1NodeAddress,
  V1NodeCondition,
  V1NodeStatus,
  V1Taint,
} from "@kubernetes/client-node";
import { formatTaint } from "./labels.ts";

/** How systemk registers this node; all of it comes from flags and the environment. */
export interface NodeConfig {
  /** Node name (`--nodename`, default the hostname). */
  name: string;
  /** The machine's hostname, for the `kubernetes.io/hostname` label and the Hostname address. */
  hostname: string;
  /** `--node-ip` or the discovered internal address. */
  internalIP: string;
  /** `--node-external-ip` or the discovered external address. */
  externalIP: string;
  /** Port of systemk's kubelet HTTPS API (`daemonEndpoints.kubeletEndpoint.Port`, capital P in JSON too). */
  port: number;
  /** `--max-pods`: capacity and allocatable `pods`. */
  maxPods: number;
  /** `--disable-taint`: register without the `virtual-kubelet.io/provider` taint. */
  disableTaint: boolean;
  /** `--node-labels`: labels of the admin's, set beside (and over) systemk's own. */
  labels: Record<string, string>;
  /** `--register-with-taints`: taints of the admin's, beside the provider taint. */
  taints: V1Taint[];
  /** systemd's version, e.g. `252`; reported as `containerRuntimeVersion: systemd://252`. */
  systemdVersion: string;
  /** Kubelet-compatible version string, e.g. `v1.34.0-systemk.0.1.0`. */
  kubeletVersion: string;
}

/** What the machine looks like right now; gathered by `gatherMachineFacts`. */
export interface MachineFacts {
  /** Kubernetes architecture name (`amd64`, `arm64`). */
  arch: string;
  cpus: number;
  memoryTotalBytes: number;
  /** MemAvailable from /proc/meminfo. */
  memoryAvailableBytes: number;
  /** Size and free space (for unprivileged users) of the filesystem holding `/`. */
  fsTotalBytes: number;
  fsAvailableBytes: number;
  fsInodes: number;
  fsInodesFree: number;
  /** Tasks (threads) that exist now, and the most the kernel allows. */
  processes: number;
  processLimit: number;
  machineID: string;
  systemUUID: string;
  bootID: string;
  kernelVersion: string;
  /** PRETTY_NAME from /etc/os-release. */
  osImage: string;
}

/** Whether the node can run pods, as judged by the caller (e.g. systemd reachable). */
export interface Readiness {
  ready: boolean;
  /** Why not ready; shown in the Ready condition's message. */
  message?: string;
}

/** The taint that keeps ordinary workloads off a node that only runs systemd units. */
export const PROVIDER_TAINT: V1Taint = {
  key: "virtual-kubelet.io/provider",
  value: "systemk",
  effect: "NoSchedule",
};

/** Namespace of the node's heartbeat Lease. */
export const NODE_LEASE_NAMESPACE = "kube-node-lease";
/** Lease duration: the node controller marks the node unknown after this without renewal. */
export const LEASE_DURATION_SECONDS = 40;

/** Memory eviction threshold of the kubelet's defaults (`memory.available<100Mi`). */
export const MEMORY_EVICTION_BYTES = 100 * 1024 * 1024;
/** Disk pressure below this share of free space (`nodefs.available<10%`). */
export const NODEFS_MIN_AVAILABLE = 0.1;
/** Disk pressure below this share of free inodes (`nodefs.inodesFree<5%`). */
export const NODEFS_MIN_INODES_FREE = 0.05;
/**
 * PID pressure above this share of the kernel's task limit. The kubelet has no default
 * `pid.available` threshold; 90% leaves room for the units already running to fork.
 */
export const PID_PRESSURE_FRACTION = 0.9;

/**
 * Annotation listing the label keys that came from `--node-labels` (comma-separated), so that
 * a restart without one of them removes it from the Node, and only labels systemk set.
 */
export const NODE_LABELS_ANNOTATION = "systemk.io/node-labels";
/**
 * Annotation listing the taints (`key:Effect`, comma-separated) that came from
 * `--register-with-taints`, so that a restart without one of them removes only taints systemk
 * set.
 */
export const REGISTER_WITH_TAINTS_ANNOTATION = "systemk.io/register-with-taints";

/**
 * Kubernetes' name for a Deno architecture.
 *
 * @param denoArch `Deno.build.arch`.
 * @return `amd64`, `arm64`, or the input unchanged.
 */
export function kubernetesArch(denoArch: string): string {
  switch (denoArch) {
    case "x86_64":
      return "amd64";
    case "aarch64":
      return "arm64";
    default:
      return denoArch;
  }
}

/**
 * The labels systemk sets on its Node: its own, then `--node-labels` (which win, as with the
 * kubelet: `--node-labels node.kubernetes.io/instance-type=big` replaces `systemk`).
 *
 * @param config the node configuration.
 * @param arch Kubernetes architecture name.
 * @return label map (`kubernetes.io/os` is lowercase `linux`, as nodeSelectors expect).
 */
export function nodeLabels(config: NodeConfig, arch: string): Record<string, string> {
  return {
    "kubernetes.io/os": "linux",
    "kubernetes.io/arch": arch,
    "kubernetes.io/hostname": config.hostname,
    "node.kubernetes.io/instance-type": "systemk",
    ...config.labels,
  };
}

/**
 * The taints systemk registers its Node with: the provider taint (unless `--disable-taint`),
 * then `--register-with-taints`; a flag taint with the provider taint's key and effect
 * replaces it.
 */
export function nodeTaints(config: NodeConfig): V1Taint[] {
  const provider = config.disableTaint ? [] : [PROVIDER_TAINT];
  return [
    ...provider.filter((p) => !config.taints.some((t) => sameTaint(t, p))),
    ...config.taints,
  ];
}

/** Taints are identified by key and effect (a Node has at most one of each pair). */
function sameTaint(a: V1Taint, b: V1Taint): boolean {
  return a.key === b.key && a.effect === b.effect;
}

const taintID = (t: V1Taint) => `${t.key}:${t.effect}`;

/** The annotations recording what came from `--node-labels` and `--register-with-taints`. */
function recordAnnotations(config: NodeConfig): Record<string, string> {
  const labels = Object.keys(config.labels).sort().join(",");
  const taints = config.taints.map(taintID).sort().join(",");
  return {
    ...(labels ? { [NODE_LABELS_ANNOTATION]: labels } : {}),
    ...(taints ? { [REGISTER_WITH_TAINTS_ANNOTATION]: taints } : {}),
  };
}

/** The comma-separated list of an annotation of `node` (empty when absent). */
function recorded(node: V1Node, annotation: string): string[] {
  return (node.metadata?.annotations?.[annotation] ?? "").split(",").filter((x) => x !== "");
}

/**
 * The Node's addresses: InternalIP, ExternalIP (when different from the internal one) and
 * Hostname.
 */
export function nodeAddresses(config: NodeConfig): V1NodeAddress[] {
  const addresses: V1NodeAddress[] = [{ type: "InternalIP", address: config.internalIP }];
  if (config.externalIP && config.externalIP !== config.internalIP) {
    addresses.push({ type: "ExternalIP", address: config.externalIP });
  }
  addresses.push({ type: "Hostname", address: config.hostname });
  return addresses;
}

/** Capacity and allocatable, as Kubernetes quantities. */
export interface NodeResources {
  capacity: Record<string, string>;
  allocatable: Record<string, string>;
}

/** The node's allocatable memory for `totalBytes` of it, in whole KiB as the Node reports it. */
export function allocatableMemoryBytes(totalBytes: number): number {
  return Math.max(0, Math.floor((totalBytes - MEMORY_EVICTION_BYTES) / 1024)) * 1024;
}

/**
 * Capacity from the machine; allocatable subtracts the kubelet's default hard eviction
 * thresholds (100Mi of memory, 10% of the root filesystem) so the scheduler never fills the
 * node to the point where the kernel would have to kill things.
 */
export function nodeResources(config: NodeConfig, facts: MachineFacts): NodeResources {
  const ki = (bytes: number) => `${Math.max(0, Math.floor(bytes / 1024))}Ki`;
  const cpu = String(facts.cpus);
  const pods = String(config.maxPods);
  return {
    capacity: {
      cpu,
      memory: ki(facts.memoryTotalBytes),
      "ephemeral-storage": ki(facts.fsTotalBytes),
      pods,
    },
    allocatable: {
      cpu,
      memory: ki(allocatableMemoryBytes(facts.memoryTotalBytes)),
      "ephemeral-storage": ki(facts.fsTotalBytes * (1 - NODEFS_MIN_AVAILABLE)),
      pods,
    },
  };
}

/** One condition before heartbeat/transition times are attached. */
interface ConditionState {
  type: string;
  status: "True" | "False";
  reason: string;
  message: string;
}

/** The pressure and readiness judgements, without times. */
function conditionStates(facts: MachineFacts, readiness: Readiness): ConditionState[] {
  const memory = facts.memoryAvailableBytes < MEMORY_EVICTION_BYTES;
  const disk = facts.fsAvailableBytes < facts.fsTotalBytes * NODEFS_MIN_AVAILABLE ||
    (facts.fsInodes > 0 && facts.fsInodesFree < facts.fsInodes * NODEFS_MIN_INODES_FREE);
  const pid = facts.processes > facts.processLimit * PID_PRESSURE_FRACTION;
  return [
    {
      type: "Ready",
      status: readiness.ready ? "True" : "False",
      reason: readiness.ready ? "KubeletReady" : "KubeletNotReady",
      message: readiness.ready
        ? "systemk is posting ready status"
        : readiness.message ?? "systemk is not ready",
    },
    memory
      ? state("MemoryPressure", true, "KubeletHasInsufficientMemory", "memory available < 100Mi")
      : state("MemoryPressure", false, "KubeletHasSufficientMemory", "sufficient memory available"),
    disk
      ? state("DiskPressure", true, "KubeletHasDiskPressure", "root filesystem space < 10%")
      : state("DiskPressure", false, "KubeletHasNoDiskPressure", "no disk pressure"),
    pid
      ? state("PIDPressure", true, "KubeletHasInsufficientPID", "tasks > 90% of the limit")
      : state("PIDPressure", false, "KubeletHasSufficientPID", "sufficient PID available"),
    // systemk's pods use the host network, so the node's network is always the pods' network.
    state("NetworkUnavailable", false, "RouteCreated", "pods use the host network"),
  ];
}

function state(type: string, on: boolean, reason: string, message: string): ConditionState {
  return { type, status: on ? "True" : "False", reason, message };
}

/**
 * The node conditions for the given facts: every call is a heartbeat (`lastHeartbeatTime` =
 * now); `lastTransitionTime` is carried over from `previous` while a condition's status stays
 * the same.
 *
 * @param facts machine facts.
 * @param options whether the node can run pods (`readiness`), the conditions last reported
 *   or read from the API (`previous`, for transition times) and the heartbeat time (`now`).
 */
export function nodeConditions(
  facts: MachineFacts,
  options: { readiness: Readiness; previous?: readonly V1NodeCondition[]; now: Date },
): V1NodeCondition[] {
  const { readiness, previous, now } = options;
  return conditionStates(facts, readiness).map((c) => {
    const before = previous?.find((p) => p.type === c.type);
    const transition = before && before.status === c.status && before.lastTransitionTime
      ? new Date(before.lastTransitionTime)
      : now;
    return { ...c, lastHeartbeatTime: now, lastTransitionTime: transition };
  });
}

/** What {@link nodeStatus} reports beside the configuration. */
export interface NodeStatusOptions {
  /** Machine facts: capacity, addresses, system info. */
  facts: MachineFacts;
  /** The Node's conditions, from {@link nodeConditions}. */
  conditions: V1NodeCondition[];
}

/**
 * The Node's whole status for the given facts.
 *
 * @param config node configuration.
 * @param options machine facts and conditions.
 */
export function nodeStatus(config: NodeConfig, options: NodeStatusOptions): V1NodeStatus {
  const { facts, conditions } = options;
  const { capacity, allocatable } = nodeResources(config, facts);
  return {
    addresses: nodeAddresses(config),
    capacity,
    allocatable,
    conditions,
    daemonEndpoints: { kubeletEndpoint: { Port: config.port } },
    nodeInfo: {
      machineID: facts.machineID,
      systemUUID: facts.systemUUID,
      bootID: facts.bootID,
      kernelVersion: facts.kernelVersion,
      osImage: facts.osImage,
      containerRuntimeVersion: `systemd://${config.systemdVersion}`,
      kubeletVersion: config.kubeletVersion,
      kubeProxyVersion: "",
      operatingSystem: "linux",
      architecture: facts.arch,
    },
  };
}

/**
 * The Node to create when none exists.
 *
 * @param config node configuration.
 * @param registration machine facts; registration time (heartbeat and transition times of the
 *   conditions); initial readiness (default ready).
 */
export function buildNode(
  config: NodeConfig,
  registration: { facts: MachineFacts; now: Date; readiness?: Readiness },
): V1Node {
  const { facts, now, readiness = { ready: true } } = registration;
  return {
    apiVersion: "v1",
    kind: "Node",
    metadata: {
      name: config.name,
      labels: nodeLabels(config, facts.arch),
      annotations: recordAnnotations(config),
    },
    spec: nodeTaints(config).length ? { taints: nodeTaints(config) } : {},
    status: nodeStatus(config, { facts, conditions: nodeConditions(facts, { readiness, now }) }),
  };
}

/** A strategic merge patch of a Node's metadata: labels and annotations set or (null) removed. */
export interface NodeMetadataPatch {
  metadata: {
    labels?: Record<string, string | null>;
    annotations?: Record<string, string | null>;
  };
}

/** What {@link nodeLabelPatch} labels beside the configuration. */
export interface NodeLabelOptions {
  /** The machine's Kubernetes architecture name (`kubernetes.io/arch`). */
  arch: string;
}

/**
 * The strategic merge patch of `nodes/<name>` that brings an existing Node's labels in line
 * with the configuration, as on re-registration: systemk's labels and `--node-labels` are set
 * where they differ; a label that an earlier `--node-labels` set (recorded in
 * {@link NODE_LABELS_ANNOTATION}) and the flag no longer has is removed; every other label is
 * left alone. Undefined when nothing differs.
 *
 * @param existing the Node as read from the API.
 * @param config node configuration.
 * @param options the machine's architecture.
 */
export function nodeLabelPatch(
  existing: V1Node,
  config: NodeConfig,
  options: NodeLabelOptions,
): NodeMetadataPatch | undefined {
  const { arch } = options;
  const have = existing.metadata?.labels ?? {};
  const want = nodeLabels(config, arch);
  const labels: Record<string, string | null> = Object.fromEntries(
    Object.entries(want).filter(([k, v]) => have[k] !== v),
  );
  for (const key of recorded(existing, NODE_LABELS_ANNOTATION)) {
    if (!(key in want) && key in have) labels[key] = null;
  }
  const record = recordAnnotations(config)[NODE_LABELS_ANNOTATION] ?? null;
  const annotations = (existing.metadata?.annotations?.[NODE_LABELS_ANNOTATION] ?? null) !== record
    ? { [NODE_LABELS_ANNOTATION]: record }
    : undefined;
  if (Object.keys(labels).length === 0 && !annotations) return undefined;
  return {
    metadata: {
      ...(Object.keys(labels).length ? { labels } : {}),
      ...(annotations ? { annotations } : {}),
    },
  };
}

/** How an existing Node's taints differ from the configuration, and the patch that fixes it. */
export interface NodeTaintUpdate {
  /**
   * Strategic merge patch of `nodes/<name>`: the whole new taint list (taints are replaced as
   * a list) and the record annotation, with the read `resourceVersion` as precondition, so a
   * taint the node lifecycle controller adds meanwhile is not lost.
   */
  patch: {
    metadata: { resourceVersion?: string; annotations: Record<string, string | null> };
    spec: { taints: V1Taint[] };
  };
  /** Whether the taints change (and not only the record): NodeRestriction refuses that. */
  taintsChange: boolean;
  /** The `kubectl taint` commands with which a cluster admin makes the same change. */
  commands: string[];
}

/**
 * What brings an existing Node's taints in line with `--register-with-taints` and
 * `--disable-taint`: flag taints added or given their value; taints an earlier
 * `--register-with-taints` set (recorded in {@link REGISTER_WITH_TAINTS_ANNOTATION}) or the
 * provider taint, when no longer configured, removed; every other taint (the node lifecycle
 * controller's, an admin's) kept. Undefined when the Node is in line.
 *
 * @param existing the Node as read from the API.
 * @param config node configuration.
 */
export function nodeTaintUpdate(existing: V1Node, config: NodeConfig): NodeTaintUpdate | undefined {
  const name = existing.metadata?.name ?? config.name;
  const have = existing.spec?.taints ?? [];
  const want = nodeTaints(config);
  const managed = new Set([
    taintID(PROVIDER_TAINT),
    ...recorded(existing, REGISTER_WITH_TAINTS_ANNOTATION),
  ]);
  const dropped = have.filter((t) => managed.has(taintID(t)) && !want.some((w) => sameTaint(w, t)));
  const changed = want.filter((w) =>
    !have.some((t) => sameTaint(w, t) && (t.value ?? "") === (w.value ?? ""))
  );
  // Unchanged taints stay the very objects read (with their timeAdded), so that a patch of
  // the record alone leaves the list as NodeRestriction compares it.
  const taints = [
    ...have.filter((t) => !dropped.includes(t)).map((t) =>
      changed.find((w) => sameTaint(w, t)) ?? t
    ),
    ...changed.filter((w) => !have.some((t) => sameTaint(w, t))),
  ];
  const record = recordAnnotations(config)[REGISTER_WITH_TAINTS_ANNOTATION] ?? null;
  const recordChanges =
    (existing.metadata?.annotations?.[REGISTER_WITH_TAINTS_ANNOTATION] ?? null) !== record;
  const taintsChange = dropped.length > 0 || changed.length > 0;
  if (!taintsChange && !recordChanges) return undefined;
  return {
    patch: {
      metadata: {
        resourceVersion: existing.metadata?.resourceVersion,
        annotations: { [REGISTER_WITH_TAINTS_ANNOTATION]: record },
      },
      spec: { taints },
    },
    taintsChange,
    commands: [
      ...changed.map((t) => `kubectl taint node ${name} ${formatTaint(t)} --overwrite`),
      ...dropped.map((t) => `kubectl taint node ${name} ${t.key}:${t.effect}-`),
    ],
  };
}

/**
 * A strategic merge patch of `nodes/<name>/status` carrying the whole status systemk owns.
 * Addresses are replaced as a list: their merge key is `type`, so a merge would keep stale
 * addresses of a type next to new ones.
 *
 * @param status from `nodeStatus`.
 */
export function nodeStatusPatch(status: V1NodeStatus): { status: Record<string, unknown> } {
  return {
    status: {
      ...status,
      addresses: [{ $patch: "replace" }, ...(status.addresses ?? [])],
    },
  };
}

/**
 * What a status reports apart from heartbeat times; two statuses with the same fingerprint
 * need no patch until the next periodic report.
 */
export function statusFingerprint(status: V1NodeStatus): string {
  const conditions = (status.conditions ?? []).map((c) => ({
    type: c.type,
    status: c.status,
    reason: c.reason,
    message: c.message,
  }));
  return JSON.stringify({ ...status, conditions });
}

/** The Node a Lease belongs to. */
export interface LeaseHolder {
  /** The node's name: the Lease's name and holder. */
  name: string;
  /** The Node's UID, for the owner reference. */
  uid: string;
}

/**
 * The node's heartbeat Lease, owned by the Node (so it goes away with it).
 *
 * @param node the Node's name and UID.
 * @param renewTime the renewal time (a client-node `V1MicroTime`).
 */
export function nodeLease(node: LeaseHolder, renewTime: Date): V1Lease {
  const { name: nodeName, uid: nodeUID } = node;
  return {
    apiVersion: "coordination.k8s.io/v1",
    kind: "Lease",
    metadata: {
      name: nodeName,
      namespace: NODE_LEASE_NAMESPACE,
      ownerReferences: [{ apiVersion: "v1", kind: "Node", name: nodeName, uid: nodeUID }],
    },
    spec: {
      holderIdentity: nodeName,
      leaseDurationSeconds: LEASE_DURATION_SECONDS,
      renewTime,
    },
  };
}
