/**
 * `securityContext` (pod- and container-level, container winning) → the identity a unit runs
 * as and its privilege settings.
 *
 * Identity: `runAsUser` (numeric) or `windowsOptions.runAsUserName` (a node user name: the
 * seed's trick) from the most specific level that sets one; `runAsGroup` overrides the group,
 * which otherwise is the user's primary group. The user must exist on the node (systemd, unlike
 * container runtimes, refuses unknown uids). No user anywhere → the package unit's `User=`/`Group=`, else root.
 * `supplementalGroups` and `fsGroup` (pod-level) → `SupplementaryGroups=`.
 *
 * Capabilities: without `capabilities` a unit keeps the host's defaults (a root daemon has
 * every capability, as it would outside systemk). With them the bounding set becomes
 * `drop: [ALL]` → exactly `add`; otherwise every capability except `drop` (drop wins over add,
 * as in containerd). For a non-root user `add` also becomes `AmbientCapabilities=`, since a
 * non-root process otherwise holds no capability at all; root holds its bounding set anyway.
 *
 * @module
 */
import type { V1Container, V1SecurityContext } from "@kubernetes/client-node";
import { fail, type PodContext } from "./_context.ts";

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
  ambient?: string;
  podSetsCapabilities: boolean;
  readOnlyRootFilesystem: boolean;
  privileged: boolean;
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
      throw fail(
        ctx,
        container,
        `securityContext.capabilities.${field}: unknown capability "${raw}"`,
        "use names from capabilities(7) such as NET_BIND_SERVICE",
      );
    }
    const cap = `CAP_${name}`;
    if (!out.includes(cap)) out.push(cap);
  }
  return out;
}

/** User names written as they are into `User=`: what useradd accepts, nothing systemd expands. */
const PLAIN_USER_NAME = /^[A-Za-z_][A-Za-z0-9_.-]*$/;

/** Kubernetes' limit for user and group ids (API validation: 0 to 2^31-1). */
const MAX_ID = 2 ** 31 - 1;

/**
 * A user or group id as `User=`/`Group=`/`SupplementaryGroups=` can take it: an integer from 0
 * to 2^31-1 (what the API server admits; manifests are not validated by it) other than 65535,
 * which systemd refuses as the old 16-bit "invalid id".
 *
 * @param field the field as the message names it, e.g. `securityContext.runAsUser`.
 * @throws PlanError naming the field otherwise.
 */
function checkId<T extends number | undefined>(
  ctx: PodContext,
  container: string,
  field: string,
  id: T,
): T {
  if (id === undefined) return id;
  if (!Number.isInteger(id) || id < 0 || id > MAX_ID || id === 0xffff) {
    throw fail(
      ctx,
      container,
      `${field} ${String(id)} is not a valid user or group id`,
      `use an integer from 0 to ${MAX_ID} other than 65535`,
    );
  }
  return id;
}

/**
 * A group id from the pod ({@link checkId}) that the node knows, when it can tell
 * (`NodeFacts.hasGroup`): systemd 252 fails a unit whose `Group=`/`SupplementaryGroups=` NSS
 * does not know with status 216/GROUP.
 */
function checkGroup<T extends number | undefined>(
  ctx: PodContext,
  container: string,
  field: string,
  gid: T,
): T {
  checkId(ctx, container, field, gid);
  const node = ctx.input.node;
  if (gid !== undefined && node.hasGroup && !node.hasGroup(gid)) {
    throw fail(
      ctx,
      container,
      `${field} ${gid} is not a group on node ${node.name}, and systemd runs units only with ` +
        "known groups",
      `create the group on the node (groupadd --gid ${gid}) or use an existing one`,
    );
  }
  return gid;
}

/**
 * Computes the effective security of a container.
 *
 * @param packageUser the package unit's `User=` value, when it has one (for runAsNonRoot).
 * @throws PlanError for unknown users and groups, and when runAsNonRoot would run as root.
 */
export function effectiveSecurity(
  ctx: PodContext,
  container: V1Container,
  packageUser: string | undefined,
): EffectiveSecurity {
  const pod = ctx.spec.securityContext ?? {};
  const own: V1SecurityContext = container.securityContext ?? {};
  const node = ctx.input.node;
  const levels = [own, pod];
  const userLevel = levels.find((l) =>
    l.runAsUser !== undefined || l.windowsOptions?.runAsUserName !== undefined
  );
  const runAsGroup = checkGroup(
    ctx,
    container.name,
    "securityContext.runAsGroup",
    own.runAsGroup ?? pod.runAsGroup,
  );

  let user: string | undefined;
  let uid: number | undefined;
  let gid: number | undefined;
  if (userLevel) {
    const name = userLevel.windowsOptions?.runAsUserName;
    if (name !== undefined) {
      const info = node.lookupUser(name);
      if (!info) {
        throw fail(
          ctx,
          container.name,
          `securityContext.windowsOptions.runAsUserName "${name}" is not a user on node ` +
            node.name,
          "create the user on the node or use an existing one",
        );
      }
      if (userLevel.runAsUser !== undefined && userLevel.runAsUser !== info.uid) {
        throw fail(
          ctx,
          container.name,
          `securityContext.runAsUser ${userLevel.runAsUser} contradicts runAsUserName "${name}" ` +
            `(uid ${info.uid})`,
          "set only one of them",
        );
      }
      // A name systemd might read differently (`%` specifiers, blanks, line breaks) is written
      // as the uid it resolved to, which systemd cannot misread.
      user = PLAIN_USER_NAME.test(name) ? name : String(info.uid);
      uid = info.uid;
      gid = info.gid;
    } else {
      uid = checkId(ctx, container.name, "securityContext.runAsUser", userLevel.runAsUser!);
      user = String(uid);
      // systemd 252 starts a unit only as a uid NSS knows (status 217/USER otherwise), unlike
      // container runtimes: refuse here, with what to do, rather than crash-loop.
      const info = node.lookupUser(uid);
      if (!info) {
        throw fail(
          ctx,
          container.name,
          `securityContext.runAsUser ${uid} is not a user on node ${node.name}, and systemd ` +
            "runs units only as known users",
          `create the user on the node (useradd --uid ${uid}) or use an existing one`,
        );
      }
      gid = info.gid;
    }
  } else if (packageUser !== undefined) {
    const info = node.lookupUser(/^\d+$/.test(packageUser) ? Number(packageUser) : packageUser);
    uid = info?.uid;
    gid = info?.gid;
  } else {
    uid = 0;
    gid = 0;
  }
  if (runAsGroup !== undefined) gid = runAsGroup;

  const runAsNonRoot = own.runAsNonRoot ?? pod.runAsNonRoot;
  if (runAsNonRoot && uid !== undefined && uid === 0) {
    throw fail(
      ctx,
      container.name,
      "securityContext.runAsNonRoot is set but the container would run as root (uid 0)",
      "set runAsUser or windowsOptions.runAsUserName to a non-root user",
    );
  }
  if (runAsNonRoot && uid === undefined) {
    throw fail(
      ctx,
      container.name,
      `securityContext.runAsNonRoot is set but the package's user "${packageUser}" is unknown ` +
        "on the node, so it cannot be verified as non-root",
      "set runAsUser or windowsOptions.runAsUserName",
    );
  }

  const supplementaryGroups: number[] = [];
  const groups = [
    ...(pod.supplementalGroups ?? []).map((g) => ({ field: "supplementalGroups", g })),
    ...(pod.fsGroup !== undefined ? [{ field: "fsGroup", g: pod.fsGroup }] : []),
  ];
  for (const { field, g } of groups) {
    checkGroup(ctx, container.name, `pod securityContext.${field}`, g);
    if (!supplementaryGroups.includes(g)) supplementaryGroups.push(g);
  }

  const privileged = own.privileged === true;
  const caps = own.capabilities;
  let boundingSet: string | undefined;
  let ambient: string | undefined;
  if (caps && !privileged) {
    const add = capabilityNames(ctx, container.name, "add", caps.add);
    const drop = capabilityNames(ctx, container.name, "drop", caps.drop);
    if (drop === "ALL") {
      boundingSet = add === "ALL" ? undefined : add.join(" ");
    } else if (drop.length > 0) {
      boundingSet = "~" + drop.join(" ");
    }
    if (uid !== 0 && add !== "ALL" && add.length > 0) {
      const kept = drop === "ALL" ? add : add.filter((c) => !drop.includes(c));
      if (kept.length > 0) ambient = kept.join(" ");
    }
  }

  return {
    user,
    group: userLevel || runAsGroup !== undefined ? String(gid) : undefined,
    uid: uid ?? 0,
    gid: gid ?? 0,
    podSetsUser: userLevel !== undefined,
    podSetsGroup: userLevel !== undefined || runAsGroup !== undefined,
    supplementaryGroups,
    noNewPrivileges: own.allowPrivilegeEscalation === false && !privileged,
    boundingSet,
    ambient,
    podSetsCapabilities: caps !== undefined,
    readOnlyRootFilesystem: own.readOnlyRootFilesystem === true,
    privileged,
  };
}
