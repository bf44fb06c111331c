/**
 * A `persistentVolumeClaim` volume → the node path of the PersistentVolume bound to it, checked
 * the way the kubelet checks it before mounting (`desired_state_of_world_populator.go`:
 * `getPVCExtractPV` and `getPVSpec`; the operation generator's `checkNodeAffinity`):
 *
 * - the claim exists, is not being deleted, is `Bound` and names its volume;
 * - the PersistentVolume exists and its `claimRef.uid` is the claim's UID (it is bound to this
 *   claim, not to an earlier one of the same name);
 * - its `nodeAffinity` matches this node (a local volume of another node is not here);
 * - its mode is `Filesystem` and its source one systemk mounts: `local` or `hostPath` (a bind
 *   mount of a node path, which is all a systemd unit can do; CSI, NFS, iSCSI, ... need a driver).
 *
 * A PersistentVolume is the administrator's object: its path is not limited by
 * `--allowed-host-paths` (that guards the hostPath volumes pod authors write into pods); the
 * volume planner still keeps it clear of systemk's state directory. Pure.
 *
 * @module
 */
import type {
  V1NodeSelector,
  V1NodeSelectorRequirement,
  V1PersistentVolume,
  V1PersistentVolumeClaim,
  V1Volume,
} from "@kubernetes/client-node";

/** What a claim resolves to on this node: a path systemd binds into the containers. */
export interface ClaimedVolume {
  /** The PersistentVolume's name. */
  persistentVolume: string;
  /** `local` (`local.path`, which must exist) or `hostPath` (with its `type` semantics). */
  source: "local" | "hostPath";
  /** The node path, as the PersistentVolume gives it. */
  path: string;
  /** hostPath: the Kubernetes `HostPathType` (`""` = no check); local: `""`. */
  type: string;
  /** `persistentVolumeClaim.readOnly` of the pod's volume. */
  readOnly: boolean;
}

/** Why a claim cannot be mounted now: what is wrong and what to do. */
export interface ClaimProblem {
  what: string;
  todo: string;
}

/** What {@link claimedVolume} looks at besides the pod's volume. */
export interface ClaimLookup {
  /** The pod's namespace. */
  namespace: string;
  /** Claims of that namespace, by name (absent = not found). */
  claims: ReadonlyMap<string, V1PersistentVolumeClaim>;
  /** PersistentVolumes by name (absent = not found). */
  volumes: ReadonlyMap<string, V1PersistentVolume>;
  /** This node: its name and labels, for the volume's `nodeAffinity`. */
  node: { name: string; labels: Readonly<Record<string, string>> };
}

/** The volume sources of a PersistentVolumeSpec (Kubernetes 1.34). */
const PV_SOURCES = [
  "awsElasticBlockStore",
  "azureDisk",
  "azureFile",
  "cephfs",
  "cinder",
  "csi",
  "fc",
  "flexVolume",
  "flocker",
  "gcePersistentDisk",
  "glusterfs",
  "hostPath",
  "iscsi",
  "local",
  "nfs",
  "photonPersistentDisk",
  "portworxVolume",
  "quobyte",
  "rbd",
  "scaleIO",
  "storageos",
  "vsphereVolume",
];

const RETRYING = "systemk retries";

/**
 * The claim of a pod's `persistentVolumeClaim` volume resolved to its PersistentVolume's path,
 * or the problem that keeps it from being mounted.
 *
 * @param volume the pod's volume (with `persistentVolumeClaim`).
 * @param lookup the claims, volumes and node it is resolved against.
 * @example Usage
 * ```ts
 * const result = claimedVolume({ name: "data", persistentVolumeClaim: { claimName: "c" } }, {
 *   namespace: "default", claims: new Map(), volumes: new Map(),
 *   node: { name: "n1", labels: {} },
 * });
 * // { what: 'persistentvolumeclaim "c" not found', todo: "create it; systemk retries" }
 * ```
 */
export function claimedVolume(
  volume: V1Volume,
  lookup: ClaimLookup,
): ClaimedVolume | ClaimProblem {
  const { claimName, readOnly = false } = volume.persistentVolumeClaim!;
  const key = `${lookup.namespace}/${claimName}`;
  const claim = lookup.claims.get(claimName);
  if (!claim) {
    return {
      what: `persistentvolumeclaim "${claimName}" not found`,
      todo: `create it; ${RETRYING}`,
    };
  }
  if (claim.metadata?.deletionTimestamp) {
    return {
      what: `can't start pod because PVC ${key} is being deleted`,
      todo: "use another claim",
    };
  }
  const phase = claim.status?.phase ?? "";
  const volumeName = claim.spec?.volumeName ?? "";
  if (phase !== "Bound" || volumeName === "") {
    return {
      what: `PVC ${key} has non-bound phase ("${phase}") or empty pvc.Spec.VolumeName ` +
        `("${volumeName}")`,
      todo: `wait for the claim to be bound to a PersistentVolume; ${RETRYING}`,
    };
  }
  const pv = lookup.volumes.get(volumeName);
  if (!pv) {
    return {
      what: `PVC ${key}: persistentvolume "${volumeName}" not found`,
      todo: `create it; ${RETRYING}`,
    };
  }
  const claimRef = pv.spec?.claimRef;
  if (!claimRef) {
    return {
      what: `found PV object ${volumeName} but it has a nil pv.Spec.ClaimRef indicating it is ` +
        "not yet bound to the claim",
      todo: `wait for the binding to finish; ${RETRYING}`,
    };
  }
  if (claimRef.uid !== claim.metadata?.uid) {
    return {
      what: `found PV object ${volumeName} but its pv.Spec.ClaimRef.UID (${claimRef.uid}) does ` +
        `not point to claim.UID (${claim.metadata?.uid})`,
      todo: `wait for the binding to finish; ${RETRYING}`,
    };
  }
  const spec = pv.spec!;
  if ((spec.volumeMode ?? "Filesystem") !== "Filesystem") {
    return {
      what: `PersistentVolume ${volumeName} has volumeMode ${spec.volumeMode}`,
      todo: "systemk mounts Filesystem volumes only (no volumeDevices); use volumeMode: Filesystem",
    };
  }
  const required = spec.nodeAffinity?.required;
  if (required && !nodeSelectorMatches(required, lookup.node)) {
    return {
      what: `PersistentVolume ${volumeName} is for another node: its nodeAffinity does not ` +
        `match node ${lookup.node.name} (no matching NodeSelectorTerms)`,
      todo: "schedule the pod to the volume's node, or bind the claim to a volume of this node",
    };
  }
  const sources = PV_SOURCES.filter((s) => (spec as Record<string, unknown>)[s] !== undefined);
  const source = spec.local ? "local" : spec.hostPath ? "hostPath" : undefined;
  if (!source) {
    return {
      what: `PersistentVolume ${volumeName} has a ${
        sources.join(", ") || "missing"
      } source, which systemk cannot mount`,
      todo: "systemk mounts local and hostPath PersistentVolumes (node paths bound into the " +
        "containers); use one of those",
    };
  }
  return {
    persistentVolume: volumeName,
    source,
    path: source === "local" ? spec.local!.path : spec.hostPath!.path,
    type: source === "hostPath" ? spec.hostPath!.type ?? "" : "",
    readOnly,
  };
}

/** Whether {@link claimedVolume} found a problem. */
export function isClaimProblem(result: ClaimedVolume | ClaimProblem): result is ClaimProblem {
  return "what" in result;
}

/**
 * Whether `node` satisfies a NodeSelector (`nodeSelectorTerms` ORed, each term's requirements
 * ANDed; an empty term matches nothing), as `component-helpers`' `nodeaffinity` decides it:
 * `matchExpressions` on labels (`In`, `NotIn`, `Exists`, `DoesNotExist`, `Gt`, `Lt`),
 * `matchFields` on `metadata.name` (`In`, `NotIn`).
 *
 * @example Usage
 * ```ts
 * nodeSelectorMatches({ nodeSelectorTerms: [{ matchExpressions: [
 *   { key: "kubernetes.io/hostname", operator: "In", values: ["n1"] },
 * ] }] }, { name: "n1", labels: { "kubernetes.io/hostname": "n1" } }); // true
 * ```
 */
export function nodeSelectorMatches(
  selector: V1NodeSelector,
  node: { name: string; labels: Readonly<Record<string, string>> },
): boolean {
  return (selector.nodeSelectorTerms ?? []).some((term) => {
    const expressions = term.matchExpressions ?? [];
    const fields = term.matchFields ?? [];
    if (expressions.length === 0 && fields.length === 0) return false;
    return expressions.every((r) => requirementMatches(r, node.labels[r.key])) &&
      fields.every((r) =>
        r.key === "metadata.name" && (r.operator === "In" || r.operator === "NotIn") &&
        requirementMatches(r, node.name)
      );
  });
}

/** One requirement against the value the node has for its key (undefined = absent). */
function requirementMatches(r: V1NodeSelectorRequirement, value: string | undefined): boolean {
  const values = r.values ?? [];
  switch (r.operator) {
    case "In":
      return value !== undefined && values.includes(value);
    case "NotIn":
      return value === undefined || !values.includes(value);
    case "Exists":
      return value !== undefined;
    case "DoesNotExist":
      return value === undefined;
    case "Gt":
    case "Lt": {
      const integer = /^-?\d+$/;
      if (value === undefined || values.length !== 1 || !integer.test(value)) return false;
      if (!integer.test(values[0])) return false;
      const [have, bound] = [BigInt(value), BigInt(values[0])];
      return r.operator === "Gt" ? have > bound : have < bound;
    }
    default:
      return false;
  }
}
