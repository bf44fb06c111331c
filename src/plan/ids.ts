/**
 * Which user and group ids a container may run with, under the node's {@link SecurityPolicy}.
 *
 * An id is a *pod id* when it lies in the policy's pod id ranges and no account or group of the
 * host uses that number (as a uid or a gid: a pod user's record has the group of the same
 * number as its primary group). Every pod may use pod ids; the node gives them userdb records
 * (src/node/user_records.ts), so they need not exist beforehand, as in a container. Every other
 * id is a *host id* — root, the host's accounts and groups, the system range where packages
 * create theirs — and needs the administrator's permission: the policy's lists, or, for a
 * non-root user, being the `User=` (and its groups) of a package unit among the pod's images,
 * the choice of a package the administrator's apt sources provide. Every container of the pod
 * may use those: a pod naming such an image runs what it likes as that user anyway (its
 * `command` replaces the package's).
 *
 * @module
 */
import { fail, type PodContext } from "./_context.ts";
import { DEFAULT_SECURITY_POLICY, type IdRange, type SecurityPolicy } from "./types.ts";

/** Kubernetes' limit for user and group ids (API validation: 0 to 2^31-1). */
const MAX_ID = 2 ** 31 - 1;

/** The policy the pod is planned under. */
export function securityPolicy(ctx: PodContext): SecurityPolicy {
  return ctx.input.policy ?? DEFAULT_SECURITY_POLICY;
}

/** `1000-59999,65536-2147483647`: ranges as `--pod-id-range` takes them. */
export function formatIdRanges(ranges: readonly IdRange[]): string {
  return ranges.map((r) => r.min === r.max ? String(r.min) : `${r.min}-${r.max}`).join(",");
}

/** Where an id comes from, for messages. */
export interface IdSource {
  /** The container that runs with it. */
  container: string;
  /**
   * The field that chose it, as the message names it: `securityContext.runAsUser 998`,
   * `the package unit's User=root`, `pod securityContext.fsGroup 6`.
   */
  field: string;
}

/**
 * A user or group id as `User=`/`Group=`/`SupplementaryGroups=` can take it: an integer from 0
 * to 2^31-1 (what the API server admits; manifests are not validated by it) other than 65535,
 * which systemd refuses as the old 16-bit "invalid id".
 *
 * @throws PodError naming the field otherwise.
 */
export function checkId<T extends number | undefined>(
  ctx: PodContext,
  id: T,
  source: IdSource,
): T {
  const { container, field } = source;
  if (id === undefined) return id;
  if (!Number.isInteger(id) || id < 0 || id > MAX_ID || id === 0xffff) {
    throw fail(ctx, {
      container,
      what: `${field} ${String(id)} is not a valid user or group id`,
      todo: `use an integer from 0 to ${MAX_ID} other than 65535`,
    });
  }
  return id;
}

/** Whether `id` is a pod id: in the pod id ranges, and no host account or group uses it. */
export function isPodId(ctx: PodContext, id: number): boolean {
  const node = ctx.input.node;
  return securityPolicy(ctx).podIDRanges.some((r) => id >= r.min && id <= r.max) &&
    node.lookupUser(id) === undefined && node.groupName(id) === undefined;
}

/** Whether a policy list (names or numbers) holds `id`, known by `name` on the host. */
function listed(entries: readonly string[], id: number, name: string | undefined): boolean {
  return entries.some((e) => (/^\d+$/.test(e) ? Number(e) === id : e === name));
}

/** What host id `id` is, for messages: its account or group, else where it lies. */
function hostIdDescription(ctx: PodContext, id: number, kind: "account" | "group"): string {
  const node = ctx.input.node;
  const account = node.lookupUser(id)?.name;
  const group = node.groupName(id);
  if (kind === "account" && account !== undefined) return `the host's account ${account}`;
  if (kind === "group" && group !== undefined) return `the host's group ${group}`;
  if (account !== undefined) return `the id of the host's account ${account}`;
  if (group !== undefined) return `the id of the host's group ${group}`;
  return `outside --pod-id-range (${formatIdRanges(securityPolicy(ctx).podIDRanges)})`;
}

/** Options of {@link admitUser}. */
export interface AdmitUserOptions extends IdSource {
  /** Uids of the `User=` of the pod's package units, permitted unless root; default none. */
  packageUids?: readonly number[];
}

/**
 * Admits the user a container runs as.
 *
 * @return true when `uid` is a pod id (it needs a userdb record).
 * @throws PodError when the policy refuses it, or the node cannot run as it.
 */
export function admitUser(ctx: PodContext, uid: number, options: AdmitUserOptions): boolean {
  const { container, field, packageUids = [] } = options;
  const node = ctx.input.node;
  if (isPodId(ctx, uid)) {
    if (!node.userRecords) {
      // systemd 252 starts a unit only as a uid NSS knows (status 217/USER otherwise).
      throw fail(ctx, {
        container,
        what: `${field} is not a user on node ${node.name}, and systemd runs units only as known ` +
          "users",
        todo: `create the user on the node (useradd --uid ${uid}) or use an existing one`,
      });
    }
    return true;
  }
  const account = node.lookupUser(uid);
  const policy = securityPolicy(ctx);
  const permitted = listed(policy.allowedHostUsers, uid, account?.name) ||
    (uid !== 0 && packageUids.includes(uid));
  if (!permitted) {
    const what = uid === 0 ? "root" : hostIdDescription(ctx, uid, "account");
    throw fail(ctx, {
      container,
      what: `${field} is ${what}, which pods may run as only with the node's permission`,
      todo: `use an id of --pod-id-range (${formatIdRanges(policy.podIDRanges)}) in ` +
        `securityContext.runAsUser, or allow it on the node with --allowed-host-users=` +
        (account?.name ?? uid),
    });
  }
  if (!account) {
    throw fail(ctx, {
      container,
      what:
        `${field} is not a user on node ${node.name}, and systemd runs units only as known users`,
      todo: `create the user on the node (useradd --uid ${uid}) or use an existing one`,
    });
  }
  return false;
}

/** Options of {@link admitGroup}. */
export interface AdmitGroupOptions extends IdSource {
  /**
   * Host gids this container may use anyway: its user's primary group, the groups of the
   * pod's package units (`Group=`, their users' primary groups).
   */
  granted: readonly number[];
}

/**
 * Admits a group a container runs with.
 *
 * @return true when `gid` is a pod id (it needs a userdb record).
 * @throws PodError when the policy refuses it, or the node does not know it.
 */
export function admitGroup(ctx: PodContext, gid: number, options: AdmitGroupOptions): boolean {
  const { container, field, granted } = options;
  const node = ctx.input.node;
  const name = node.groupName(gid);
  if (isPodId(ctx, gid) && node.userRecords) return true;
  if (!isPodId(ctx, gid)) {
    const policy = securityPolicy(ctx);
    if (!listed(policy.allowedHostGroups, gid, name) && !granted.includes(gid)) {
      throw fail(ctx, {
        container,
        what: `${field} is ${hostIdDescription(ctx, gid, "group")}, which pods may use only with ` +
          "the node's permission",
        todo:
          `use a group id of --pod-id-range (${formatIdRanges(policy.podIDRanges)}), or allow ` +
          `it on the node with --allowed-host-groups=${name ?? gid}`,
      });
    }
  }
  if (name === undefined) {
    // systemd 252 fails a unit whose Group=/SupplementaryGroups= NSS does not know (216/GROUP).
    throw fail(ctx, {
      container,
      what:
        `${field} is not a group on node ${node.name}, and systemd runs units only with known ` +
        "groups",
      todo: `create the group on the node (groupadd --gid ${gid}) or use an existing one`,
    });
  }
  return false;
}
