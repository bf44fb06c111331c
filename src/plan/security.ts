/**
 * `securityContext` (pod- and container-level, container winning) → the identity a unit runs
 * as and its privilege settings, within the node's {@link SecurityPolicy} (ids.ts).
 *
 * Identity: `runAsUser` (numeric) or `windowsOptions.runAsUserName` (a node user name: the
 * seed's trick) from the most specific level that sets one; `runAsGroup` overrides the group,
 * which otherwise is the user's primary group (for a pod id without an account: the group of
 * the same number). No user anywhere → the package unit's `User=`/`Group=`, else root.
 * `supplementalGroups` and `fsGroup` (pod-level) → `SupplementaryGroups=`. Every id must be a
 * pod id or a host id the node allows; pod ids are listed for userdb records.
 *
 * Capabilities: without `capabilities` a unit keeps the host's defaults (a root daemon has
 * every capability, as it would outside systemk). With them the bounding set becomes
 * `drop: [ALL]` → exactly `add`; otherwise every capability except `drop` (drop wins over add,
 * as in containerd). A non-root user gets no ambient capabilities from `add`, as with
 * containerd and CRI-O: its processes hold none, and only files with file capabilities gain
 * them within the bounding set (an ambient CAP_SETUID would let it become root).
 *
 * `privileged: true` is refused when the node does not allow it (`--allow-privileged=false`).
 *
 * @module
 */
import type { V1Container, V1SecurityContext } from "@kubernetes/client-node";
import { fail, type PodContext } from "./_context.ts";
import { admitGroup, admitUser, checkId, securityPolicy } from "./ids.ts";

/** Who a unit runs as and with which privileges. */
export interface EffectiveSecurity {
  /** `User=` value, or undefined to keep the package's / run as root. */
  user?: string;
  /** `Group=` value (numeric). */
  group?: string;
  uid: number;
  gid: number;
  /** The pod sets the user (the package's `User=` is then dropped). */
  podSetsUser: boolean;
  /** The pod sets the group (the package's `Group=` is then dropped). */
  podSetsGroup: boolean;
  supplementaryGroups: number[];
  noNewPrivileges: boolean;
  /** `CapabilityBoundingSet=` value (`""` = none), undefined = unrestricted. */
  boundingSet?: string;
  podSetsCapabilities: boolean;
  readOnlyRootFilesystem: boolean;
  privileged: boolean;
  /** Pod ids the unit runs with (ids.ts), which need userdb records. */
  podIds: { users: number[]; groups: number[] };
}

/** Linux capabilities systemd knows (capability(7)). */
const CAPABILITIES = [
  "CHOWN",
  "DAC_OVERRIDE",
  "DAC_READ_SEARCH",
  "FOWNER",
  "FSETID",
  "KILL",
  "SETGID",
  "SETUID",
  "SETPCAP",
  "LINUX_IMMUTABLE",
  "NET_BIND_SERVICE",
  "NET_BROADCAST",
  "NET_ADMIN",
  "NET_RAW",
  "IPC_LOCK",
  "IPC_OWNER",
  "SYS_MODULE",
  "SYS_RAWIO",
  "SYS_CHROOT",
  "SYS_PTRACE",
  "SYS_PACCT",
  "SYS_ADMIN",
  "SYS_BOOT",
  "SYS_NICE",
  "SYS_RESOURCE",
  "SYS_TIME",
  "SYS_TTY_CONFIG",
  "MKNOD",
  "LEASE",
  "AUDIT_WRITE",
  "AUDIT_CONTROL",
  "SETFCAP",
  "MAC_OVERRIDE",
  "MAC_ADMIN",
  "SYSLOG",
  "WAKE_ALARM",
  "BLOCK_SUSPEND",
  "AUDIT_READ",
  "PERFMON",
  "BPF",
  "CHECKPOINT_RESTORE",
];

function capabilityNames(
  ctx: PodContext,
  container: string,
  field: string,
  list: string[] | undefined,
): string[] | "ALL" {
  const out: string[] = [];
  for (const raw of list ?? []) {
    const name = raw.toUpperCase().replace(/^CAP_/, "");
    if (name === "ALL") return "ALL";
    if (!CAPABILITIES.includes(name)) {
      throw fail(ctx, {
        container,
        what: `securityContext.capabilities.${field}: unknown capability "${raw}"`,
        todo: "use names from capabilities(7) such as NET_BIND_SERVICE",
      });
    }
    const cap = `CAP_${name}`;
    if (!out.includes(cap)) out.push(cap);
  }
  return out;
}

/** User names written as they are into `User=`: what useradd accepts, nothing systemd expands. */
const PLAIN_USER_NAME = /^[A-Za-z_][A-Za-z0-9_.-]*$/;

/** A package unit's identity (`User=`, `Group=`), when it sets one. */
export interface PackageIdentity {
  user?: string;
  group?: string;
}

/** The host ids the pod's package units run with: permitted to all its containers (ids.ts). */
export interface PackageAccounts {
  /** Non-root uids of their `User=`. */
  users: number[];
  /** Their `Group=` and their users' primary groups. */
  groups: number[];
}

/** A unit's `User=`: a name or a uid. */
function unitUser(ctx: PodContext, user: string) {
  return ctx.input.node.lookupUser(/^\d+$/.test(user) ? Number(user) : user);
}

/** A unit's `Group=`: a name or a gid. */
function unitGroup(ctx: PodContext, group: string): number | undefined {
  return /^\d+$/.test(group) ? Number(group) : ctx.input.node.lookupGroup(group);
}

/** The host ids of the package units among the pod's images. */
export function packageAccounts(
  ctx: PodContext,
  identities: readonly PackageIdentity[],
): PackageAccounts {
  const accounts: PackageAccounts = { users: [], groups: [] };
  for (const { user, group } of identities) {
    const info = user === undefined ? undefined : unitUser(ctx, user);
    if (info && info.uid !== 0) accounts.users.push(info.uid);
    if (info) accounts.groups.push(info.gid);
    const gid = group === undefined ? undefined : unitGroup(ctx, group);
    if (gid !== undefined) accounts.groups.push(gid);
  }
  return accounts;
}

/** The user who runs the container, admitted under the node's policy. */
interface ChosenUser {
  /** `User=` value; undefined keeps the package's own or root. */
  user?: string;
  uid?: number;
  /** Primary group; undefined when the package's user is unknown. */
  gid?: number;
  /** The uid is a pod id (it needs a record; its primary group is the same number). */
  podId: boolean;
}

function resolveUser(
  ctx: PodContext,
  container: string,
  level: V1SecurityContext | undefined,
  packages: { own: PackageIdentity; pod: PackageAccounts },
): ChosenUser {
  const node = ctx.input.node;
  const pkg = packages.own;
  const packageUids = packages.pod.users;
  if (!level) {
    if (pkg.user !== undefined) {
      const info = unitUser(ctx, pkg.user);
      // The package's choice stands for a non-root user; root needs the node's permission.
      if (info?.uid === 0) {
        admitUser(ctx, 0, { container, field: `the package unit's User=${pkg.user}` });
      }
      return { uid: info?.uid, gid: info?.gid, podId: false };
    }
    admitUser(ctx, 0, {
      container,
      field: "the container (no runAsUser, no User= in its image's unit)",
    });
    return { uid: 0, gid: 0, podId: false };
  }
  const name = level.windowsOptions?.runAsUserName;
  if (name !== undefined) {
    const info = node.lookupUser(name);
    if (!info) {
      throw fail(ctx, {
        container,
        what: `securityContext.windowsOptions.runAsUserName "${name}" is not a user on node ` +
          node.name,
        todo: "create the user on the node or use an existing one",
      });
    }
    if (level.runAsUser !== undefined && level.runAsUser !== info.uid) {
      throw fail(ctx, {
        container,
        what: `securityContext.runAsUser ${level.runAsUser} contradicts runAsUserName "${name}" ` +
          `(uid ${info.uid})`,
        todo: "set only one of them",
      });
    }
    const field = `securityContext.windowsOptions.runAsUserName "${name}" (uid ${info.uid})`;
    admitUser(ctx, info.uid, { container, field, packageUids });
    // A name systemd might read differently (`%` specifiers, blanks, line breaks) is written
    // as the uid it resolved to, which systemd cannot misread.
    const user = PLAIN_USER_NAME.test(name) ? name : String(info.uid);
    return { user, uid: info.uid, gid: info.gid, podId: false };
  }
  const uid = checkId(ctx, level.runAsUser!, { container, field: "securityContext.runAsUser" });
  const podId = admitUser(ctx, uid, {
    container,
    field: `securityContext.runAsUser ${uid}`,
    packageUids,
  });
  return { user: String(uid), uid, gid: podId ? uid : node.lookupUser(uid)!.gid, podId };
}

/** What {@link effectiveSecurity} needs to know of the pod's package units. */
export interface PackageIdentities {
  /** The container's own package unit: its user runs the container when the pod sets none. */
  own: PackageIdentity;
  /** Those of all the pod's containers ({@link packageAccounts}): permitted host ids. */
  pod: PackageAccounts;
}

/**
 * Computes the effective security of a container.
 *
 * @throws PodError for users and groups the node does not know or its policy refuses, when
 *   runAsNonRoot would run as root, and for privileged containers the node refuses.
 */
export function effectiveSecurity(
  ctx: PodContext,
  container: V1Container,
  packages: PackageIdentities,
): EffectiveSecurity {
  const pkg = packages.own;
  const pod = ctx.spec.securityContext ?? {};
  const own: V1SecurityContext = container.securityContext ?? {};
  const node = ctx.input.node;
  const userLevel = [own, pod].find((l) =>
    l.runAsUser !== undefined || l.windowsOptions?.runAsUserName !== undefined
  );
  const runAsGroup = checkId(ctx, own.runAsGroup ?? pod.runAsGroup, {
    container: container.name,
    field: "securityContext.runAsGroup",
  });
  const chosen = resolveUser(ctx, container.name, userLevel, packages);
  const { uid } = chosen;

  const runAsNonRoot = own.runAsNonRoot ?? pod.runAsNonRoot;
  if (runAsNonRoot && uid !== undefined && uid === 0) {
    throw fail(ctx, {
      container: container.name,
      what: "securityContext.runAsNonRoot is set but the container would run as root (uid 0)",
      todo: "set runAsUser or windowsOptions.runAsUserName to a non-root user",
    });
  }
  if (runAsNonRoot && uid === undefined) {
    throw fail(ctx, {
      container: container.name,
      what: `securityContext.runAsNonRoot is set but the package's user "${pkg.user}" is unknown ` +
        "on the node, so it cannot be verified as non-root",
      todo: "set runAsUser or windowsOptions.runAsUserName",
    });
  }

  // Host groups this container may use without being listed: its user's own primary group,
  // and those of the pod's package units.
  const granted = [chosen.gid, ...packages.pod.groups].filter((g) => g !== undefined);
  const podIds = { users: chosen.podId ? [uid!] : [], groups: chosen.podId ? [uid!] : [] };
  const admit = (field: string, gid: number) => {
    if (admitGroup(ctx, gid, { container: container.name, field: `${field} ${gid}`, granted })) {
      if (!podIds.groups.includes(gid)) podIds.groups.push(gid);
    }
  };

  let gid = chosen.gid;
  if (runAsGroup !== undefined) {
    admit("securityContext.runAsGroup", runAsGroup);
    gid = runAsGroup;
  }
  const supplementaryGroups: number[] = [];
  const groups = [
    ...(pod.supplementalGroups ?? []).map((g) => ({ field: "supplementalGroups", g })),
    ...(pod.fsGroup !== undefined ? [{ field: "fsGroup", g: pod.fsGroup }] : []),
  ];
  for (const { field, g } of groups) {
    checkId(ctx, g, { container: container.name, field: `pod securityContext.${field}` });
    admit(`pod securityContext.${field}`, g);
    if (!supplementaryGroups.includes(g)) supplementaryGroups.push(g);
  }

  const privileged = own.privileged === true;
  if (privileged && !securityPolicy(ctx).allowPrivileged) {
    throw fail(ctx, {
      container: container.name,
      what: `securityContext.privileged is set, and node ${node.name} does not run privileged ` +
        "containers (--allow-privileged=false)",
      todo: "remove privileged and ask for the capabilities the container needs",
    });
  }
  const caps = own.capabilities;
  let boundingSet: string | undefined;
  if (caps && !privileged) {
    const add = capabilityNames(ctx, container.name, "add", caps.add);
    const drop = capabilityNames(ctx, container.name, "drop", caps.drop);
    if (drop === "ALL") {
      boundingSet = add === "ALL" ? undefined : add.join(" ");
    } else if (drop.length > 0) {
      boundingSet = "~" + drop.join(" ");
    }
  }

  return {
    user: chosen.user,
    group: userLevel || runAsGroup !== undefined ? String(gid) : undefined,
    uid: uid ?? 0,
    gid: gid ?? 0,
    podSetsUser: userLevel !== undefined,
    podSetsGroup: userLevel !== undefined || runAsGroup !== undefined,
    supplementaryGroups,
    noNewPrivileges: own.allowPrivilegeEscalation === false && !privileged,
    boundingSet,
    podSetsCapabilities: caps !== undefined,
    readOnlyRootFilesystem: own.readOnlyRootFilesystem === true,
    privileged,
    podIds,
  };
}
