/**
 * Fixed inputs for planner tests: a node with known users and addresses, and a loader turning a
 * test manifest into a PlanInput the way the agent would (package images resolved against the
 * unit files in tests/testdata/units/).
 *
 * @module
 */
import type { V1Pod } from "@kubernetes/client-node";
import { parseManifests } from "../../src/plan/manifest.ts";
import { serviceAccountTokenKey } from "../../src/plan/volumes.ts";
import {
  DEFAULT_SECURITY_POLICY,
  type NodeFacts,
  type PackageInfo,
  type PlanInput,
  type SecurityPolicy,
  type UserInfo,
} from "../../src/plan/types.ts";

const USERS: UserInfo[] = [
  { name: "root", uid: 0, gid: 0 },
  { name: "daemon", uid: 1, gid: 1 },
  { name: "nobody", uid: 65534, gid: 65534 },
  { name: "prometheus", uid: 998, gid: 997 },
  { name: "uptimed", uid: 996, gid: 995 },
];
const GROUPS = new Map([
  ["root", 0],
  ["daemon", 1],
  ["adm", 4],
  ["disk", 6],
  ["sudo", 27],
  ["nogroup", 65534],
  ["prometheus", 997],
  ["uptimed", 995],
]);

/** The node every planner test runs on. */
export const NODE: NodeFacts = {
  name: "node-1",
  hostname: "node-1.example",
  internalIP: "10.0.0.2",
  externalIP: "198.51.100.2",
  apiServerHost: "198.51.100.1",
  apiServerPort: 6443,
  allocatable: { cpuMilli: 2000, memoryBytes: 4 * 1024 ** 3 },
  lookupUser: (key) => USERS.find((u) => (typeof key === "number" ? u.uid : u.name) === key),
  lookupGroup: (name) => GROUPS.get(name),
  groupName: (gid) => [...GROUPS].find(([, id]) => id === gid)?.[0],
  userRecords: true,
};

/**
 * The node's policy in planner tests: the flags' defaults, plus the host accounts and groups
 * the golden files run with (disk stays refused).
 */
export const POLICY: SecurityPolicy = {
  ...DEFAULT_SECURITY_POLICY,
  allowedHostUsers: [...DEFAULT_SECURITY_POLICY.allowedHostUsers, "prometheus", "uptimed"],
  allowedHostGroups: [...DEFAULT_SECURITY_POLICY.allowedHostGroups, "adm", "sudo"],
};

const UNITS = new URL("../testdata/units/", import.meta.url);

/** The labels of the test node, which PersistentVolumes' nodeAffinity is matched against. */
export const NODE_LABELS = { "kubernetes.io/hostname": "node-1", "disk": "ssd" };

function byName<T extends { metadata?: { name?: string } }>(list: T[] = []): Map<string, T> {
  return new Map(list.map((o) => [o.metadata!.name!, o]));
}

/** What the package backend would report for an image: `/abs/path` → nothing. */
export function packageFor(image: string): PackageInfo | undefined {
  if (image.startsWith("/")) return undefined;
  const name = image.split(/[=:]/)[0];
  try {
    const unitText = Deno.readTextFileSync(new URL(`${name}.service`, UNITS));
    return { name, unitText, unitName: `${name}.service` };
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
    return { name };
  }
}

/** A PlanInput for `pod` with the given objects; tokens are `token:<volume>/<path>`. */
export function inputFor(
  pod: V1Pod,
  objects: Partial<ReturnType<typeof parseManifests>> = {},
): PlanInput {
  const packages = new Map<string, PackageInfo>();
  for (const c of [...(pod.spec?.initContainers ?? []), ...(pod.spec?.containers ?? [])]) {
    const pkg = packageFor(c.image ?? "");
    if (pkg) packages.set(c.name, pkg);
  }
  const serviceAccountTokens = new Map<string, string>();
  for (const v of pod.spec?.volumes ?? []) {
    for (const s of v.projected?.sources ?? []) {
      if (s.serviceAccountToken) {
        const key = serviceAccountTokenKey(v.name, s.serviceAccountToken.path);
        serviceAccountTokens.set(key, `token:${key}`);
      }
    }
  }
  return {
    pod,
    configMaps: byName(objects.configMaps),
    secrets: byName(objects.secrets),
    persistentVolumeClaims: byName(objects.persistentVolumeClaims),
    persistentVolumes: byName(objects.persistentVolumes),
    nodeLabels: NODE_LABELS,
    node: NODE,
    packages,
    serviceAccountTokens,
    // The hostPath volumes of the golden files and tests; /etc stays forbidden.
    allowedHostPaths: ["/var/log", "/run/docker.sock", "/srv"],
    policy: POLICY,
  };
}

/** The PlanInput of a manifest text holding one Pod and its ConfigMaps/Secrets. */
export function inputFromManifest(text: string): PlanInput {
  const m = parseManifests(text);
  if (m.pods.length !== 1) throw new Error(`expected one Pod, found ${m.pods.length}`);
  return inputFor(m.pods[0], m);
}
