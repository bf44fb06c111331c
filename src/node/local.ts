/**
 * Node facts of the machine systemk runs on: users and groups from /etc/passwd and /etc/group
 * (and whether NSS resolves systemd's userdb records, from /etc/nsswitch.conf),
 * the hostname, and the node addresses chosen as the seed describes (`--node-ip` /
 * `--node-external-ip`, else the first RFC 1918 address for internal and the first other
 * non-loopback address for external, one copied to the other when missing).
 *
 * @module
 */
import { AccountFile, readOptionalSync } from "./_accounts.ts";
import type { NodeFacts, UserInfo } from "../plan/types.ts";

/** An interface address as `Deno.networkInterfaces()` reports it. */
export interface InterfaceAddress {
  family: "IPv4" | "IPv6";
  address: string;
}

/** Whether an IPv4 address is private per RFC 1918 (10/8, 172.16/12, 192.168/16). */
export function isRFC1918(address: string): boolean {
  const parts = address.split(".").map(Number);
  if (parts.length !== 4 || parts.some((p) => !Number.isInteger(p) || p < 0 || p > 255)) {
    return false;
  }
  const [a, b] = parts;
  return a === 10 || (a === 172 && b >= 16 && b <= 31) || (a === 192 && b === 168);
}

function isUsable(a: InterfaceAddress): boolean {
  if (a.family === "IPv4") return !a.address.startsWith("127.") && a.address !== "0.0.0.0";
  const lower = a.address.toLowerCase();
  // Loopback, unspecified and link-local (fe80::/10) addresses do not reach other nodes.
  return lower !== "::1" && lower !== "::" && !/^fe[89ab]/.test(lower);
}

/**
 * Chooses the node's internal and external addresses.
 *
 * @param flags `--node-ip` / `--node-external-ip` values, when given.
 * @param addresses the machine's interface addresses, in interface order.
 * @throws Error naming both flags when no address can be found.
 */
export function chooseNodeAddresses(
  flags: { internalIP?: string; externalIP?: string },
  addresses: readonly InterfaceAddress[],
): { internalIP: string; externalIP: string } {
  const usable = addresses.filter(isUsable);
  let internalIP = flags.internalIP || usable.find((a) => isRFC1918(a.address))?.address;
  let externalIP = flags.externalIP || usable.find((a) => !isRFC1918(a.address))?.address;
  internalIP ??= externalIP;
  externalIP ??= internalIP;
  if (internalIP === undefined || externalIP === undefined) {
    throw new Error(
      "no node address found on any interface: pass --node-ip (internal) and/or " +
        "--node-external-ip",
    );
  }
  return { internalIP, externalIP };
}

/** Parses /etc/passwd text into users (name, uid, primary gid). */
export function parsePasswd(text: string): UserInfo[] {
  const users: UserInfo[] = [];
  for (const line of text.split("\n")) {
    const [name, , uid, gid] = line.split(":");
    if (!name || name.startsWith("#") || !/^\d+$/.test(uid ?? "") || !/^\d+$/.test(gid ?? "")) {
      continue;
    }
    users.push({ name, uid: Number(uid), gid: Number(gid) });
  }
  return users;
}

/** Parses /etc/group text into group name → gid. */
export function parseGroup(text: string): Map<string, number> {
  const groups = new Map<string, number>();
  for (const line of text.split("\n")) {
    const [name, , gid] = line.split(":");
    if (name && !name.startsWith("#") && /^\d+$/.test(gid ?? "") && !groups.has(name)) {
      groups.set(name, Number(gid));
    }
  }
  return groups;
}

/** Splits `host:port`, `[v6]:port` or a URL into host and port; undefined when unparseable. */
export function parseAPIServer(text: string): { host: string; port: number } | undefined {
  let url: URL;
  try {
    url = new URL(/^[a-z]+:\/\//i.test(text) ? text : `https://${text}`);
  } catch {
    return undefined;
  }
  const port = url.port ? Number(url.port) : url.protocol === "http:" ? 80 : 443;
  const host = url.hostname.replace(/^\[(.*)\]$/, "$1");
  return host === "" ? undefined : { host, port };
}

/** Options of {@link localNodeFacts}; empty strings count as not given. */
export interface LocalNodeOptions {
  /** Node name; default the hostname. */
  nodeName?: string;
  /** `--node-ip`. */
  internalIP?: string;
  /** `--node-external-ip`. */
  externalIP?: string;
  /** API server as `host:port` or URL, reachable from this node. */
  apiServer?: string;
}

/**
 * Node facts of this machine. Users and groups are read once (a snapshot: the planner needs a
 * consistent view for one plan; callers refresh by calling again).
 *
 * @throws Error when no node address can be found (naming --node-ip/--node-external-ip), or
 *   when `apiServer` cannot be parsed.
 */
export function localNodeFacts(opts: LocalNodeOptions = {}): NodeFacts {
  const passwd = new AccountFile("/etc/passwd", parsePasswd);
  const group = new AccountFile("/etc/group", parseGroup);
  const hostname = Deno.hostname();
  const addresses = Deno.networkInterfaces().map((i) => ({
    family: i.family,
    address: i.address,
  }));
  const { internalIP, externalIP } = chooseNodeAddresses(opts, addresses);
  let api: { host: string; port: number } | undefined;
  if (opts.apiServer) {
    api = parseAPIServer(opts.apiServer);
    if (!api) throw new Error(`cannot parse API server address "${opts.apiServer}"`);
  }
  return {
    name: opts.nodeName || hostname,
    hostname,
    internalIP,
    externalIP,
    apiServerHost: api?.host,
    apiServerPort: api?.port,
    allocatable: {
      cpuMilli: navigator.hardwareConcurrency * 1000,
      memoryBytes: Deno.systemMemoryInfo().total,
    },
    lookupUser: (key) =>
      passwd.lookup((users) =>
        users.find((u) => (typeof key === "number" ? u.uid === key : u.name === key))
      ),
    lookupGroup: (name) => group.lookup((groups) => groups.get(name)),
    groupName: (gid) => group.lookup((groups) => [...groups].find(([, id]) => id === gid)?.[0]),
    userRecords: nssResolvesUserRecords(readOptionalSync("/etc/nsswitch.conf")),
  };
}

/**
 * Whether glibc resolves users and groups through nss-systemd, and with it systemd's userdb
 * drop-in records: `systemd` among the sources of both the `passwd` and `group` lines of
 * nsswitch.conf `text` (Debian's default: `files systemd`).
 *
 * @example Usage
 * ```ts
 * import assert from "node:assert/strict";
 * assert.equal(nssResolvesUserRecords("passwd: files systemd\ngroup: files systemd\n"), true);
 * assert.equal(nssResolvesUserRecords("passwd: files\ngroup: files\n"), false);
 * ```
 */
export function nssResolvesUserRecords(text: string): boolean {
  const sources = (database: string) => {
    const line = text.split("\n").map((l) => l.replace(/#.*/, "").trim())
      .find((l) => l.startsWith(`${database}:`));
    // `[NOTFOUND=return]`-style actions are not sources.
    return line?.slice(database.length + 1).trim().split(/\s+/).filter((w) => !w.startsWith("["));
  };
  return ["passwd", "group"].every((db) => sources(db)?.includes("systemd") ?? false);
}
