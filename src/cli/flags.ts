/**
 * systemk's command line: the seed's flags (`--kubeconfig`, `--nodename`, `--disable-taint`,
 * `--node-ip`, `--node-external-ip`, `--certfile`, `--keyfile`) kept exactly, beside the
 * kubelet's names for the same things.
 *
 * @module
 */
import { parseArgs } from "node:util";
import type { V1Taint } from "@kubernetes/client-node";
import type { LocalNodeOptions } from "../node/local.ts";
import { LOG_FORMATS, LOG_LEVELS, type LogFormat, type LogLevel } from "../log/mod.ts";
import { DEFAULT_SECURITY_POLICY, type IdRange, type SecurityPolicy } from "../plan/types.ts";
import { formatIdRanges } from "../plan/ids.ts";
import { isPackageName } from "../packages/image.ts";
import type { ImagePolicy } from "../packages/policy.ts";
import { NodeFlagError, parseNodeLabels, parseTaints } from "../kube/labels.ts";

/** Everything the flags configure. */
export interface Config {
  kubeconfig?: string;
  nodeName?: string;
  disableTaint: boolean;
  /** `--node-labels`: labels the Node is registered (and kept) with. */
  nodeLabels: Record<string, string>;
  /** `--register-with-taints`: taints the Node is registered with. */
  registerWithTaints: V1Taint[];
  nodeIP?: string;
  nodeExternalIP?: string;
  tlsCertFile?: string;
  tlsKeyFile?: string;
  clientCAFile?: string;
  rotateServerCertificates: boolean;
  bootstrapKubeconfig?: string;
  certDir: string;
  address: string;
  podManifestPath?: string;
  maxPods: number;
  port: number;
  stateDir: string;
  unitDir: string;
  /** `--allowed-host-paths`: path prefixes hostPath volumes may use; empty = none. */
  allowedHostPaths: string[];
  /** `--allowed-image-url-prefixes`: where `https://` images may come from; empty = nowhere. */
  allowedImageURLPrefixes: string[];
  /** `--require-image-digest`: `https://` images must carry `#sha256=`. */
  requireImageDigest: boolean;
  /** `--allow-package-downgrades`: a pinned version may downgrade installed packages. */
  allowPackageDowngrades: boolean;
  /** `--allowed-packages`: the only package names images may install; undefined = any. */
  allowedPackages?: string[];
  /** `--allow-privileged`: `privileged: true` containers run. */
  allowPrivileged: boolean;
  /** `--allowed-host-users`: host accounts (names or uids) containers may run as. */
  allowedHostUsers: string[];
  /** `--allowed-host-groups`: host groups (names or gids) containers may run with. */
  allowedHostGroups: string[];
  /** `--pod-id-range`: ids pods may use freely (records made for them). */
  podIDRanges: IdRange[];
  /** `--enable-system-log-handler`: the kubelet API serves /var/log at `/logs/`. */
  enableSystemLogHandler: boolean;
  /** `--enable-system-log-query`: `/logs/?query=` reads journald (the node log query). */
  enableSystemLogQuery: boolean;
  logLevel: LogLevel;
  /** `--log-format` (the kubelet's `--logging-format`): text, or JSON lines. */
  logFormat: LogFormat;
  /** `--shutdown-grace-period`, in seconds: what the pods get on a shutdown; 0 = off. */
  shutdownGracePeriod: number;
  /** `--shutdown-grace-period-critical-pods`, in seconds: the critical pods' share of it. */
  shutdownGracePeriodCriticalPods: number;
}

/** One flag: its names, whether it takes a value, its default and its help text. */
interface FlagSpec {
  key: keyof Config;
  names: string[];
  value: boolean;
  defaultValue?: string | boolean | number;
  help: string;
}

/** The flag table; `--help` prints it, the README lists it. */
export const FLAGS: readonly FlagSpec[] = [
  {
    key: "kubeconfig",
    names: ["kubeconfig"],
    value: true,
    help: "kubeconfig of the node identity (default: $KUBECONFIG)",
  },
  {
    key: "nodeName",
    names: ["nodename", "hostname-override"],
    value: true,
    help: "node name to register (default: the hostname)",
  },
  {
    key: "disableTaint",
    names: ["disable-taint"],
    value: false,
    defaultValue: false,
    help: "do not taint the node with virtual-kubelet.io/provider=systemk:NoSchedule",
  },
  {
    key: "nodeLabels",
    names: ["node-labels"],
    value: true,
    help: "labels of the Node, key=value,...; in kubernetes.io/k8s.io only what NodeRestriction " +
      "lets a node set (kubelet.kubernetes.io/, node.kubernetes.io/ and the well-known labels)",
  },
  {
    key: "registerWithTaints",
    names: ["register-with-taints"],
    value: true,
    help: "taints to register the Node with, key=value:Effect,...",
  },
  {
    key: "nodeIP",
    names: ["node-ip"],
    value: true,
    help: "internal IP (IPv4 or IPv6; default: first RFC 1918 address)",
  },
  {
    key: "nodeExternalIP",
    names: ["node-external-ip"],
    value: true,
    help: "external IP, also every pod's IP (default: first non-RFC 1918 address)",
  },
  {
    key: "tlsCertFile",
    names: ["certfile", "tls-cert-file"],
    value: true,
    help: "serving certificate of the kubelet API",
  },
  {
    key: "tlsKeyFile",
    names: ["keyfile", "tls-private-key-file"],
    value: true,
    help: "private key of the serving certificate",
  },
  {
    key: "clientCAFile",
    names: ["client-ca-file"],
    value: true,
    help: "CA bundle that signs client certificates of kubelet API callers " +
      "(default: the kubeconfig's cluster CA)",
  },
  {
    key: "rotateServerCertificates",
    names: ["rotate-server-certificates"],
    value: false,
    defaultValue: false,
    help: "get the kubelet API's serving certificate from the cluster (CSR, signer " +
      "kubernetes.io/kubelet-serving) and renew it; an admin approves it",
  },
  {
    key: "bootstrapKubeconfig",
    names: ["bootstrap-kubeconfig"],
    value: true,
    help: "kubeconfig with a bootstrap token; used to get the node's client certificate " +
      "when --kubeconfig does not exist yet, which is then written there",
  },
  {
    key: "certDir",
    names: ["cert-dir"],
    value: true,
    defaultValue: "/var/lib/systemk/pki",
    help: "where the kubelet API's and the node's certificates and keys are kept",
  },
  {
    key: "address",
    names: ["address"],
    value: true,
    defaultValue: "0.0.0.0",
    help: "address the kubelet API listens on",
  },
  {
    key: "podManifestPath",
    names: ["pod-manifest-path", "manifests"],
    value: true,
    help: "directory of static Pod manifests to run (standalone mode when no kubeconfig is given)",
  },
  {
    key: "maxPods",
    names: ["max-pods"],
    value: true,
    defaultValue: 110,
    help: "pods this node accepts",
  },
  { key: "port", names: ["port"], value: true, defaultValue: 10250, help: "kubelet API port" },
  {
    key: "stateDir",
    names: ["state-dir"],
    value: true,
    defaultValue: "/run/systemk",
    help: "runtime state: volume files of the pods",
  },
  {
    key: "unitDir",
    names: ["unit-dir"],
    value: true,
    defaultValue: "/run/systemd/system",
    help: "where unit files are written (runtime only, gone after a reboot)",
  },
  {
    key: "allowedHostPaths",
    names: ["allowed-host-paths"],
    value: true,
    help: "comma-separated path prefixes hostPath volumes may use (default: none)",
  },
  {
    key: "allowedImageURLPrefixes",
    names: ["allowed-image-url-prefixes"],
    value: true,
    help: "comma-separated https:// URL prefixes images may be downloaded from " +
      "(default: none, so no https:// image is installed)",
  },
  {
    key: "requireImageDigest",
    names: ["require-image-digest"],
    value: false,
    defaultValue: true,
    help: "https:// images must carry #sha256=<digest> (=false: not required)",
  },
  {
    key: "allowPackageDowngrades",
    names: ["allow-package-downgrades"],
    value: false,
    defaultValue: false,
    help: "let an image pinned to a version (name=version) downgrade installed packages",
  },
  {
    key: "allowedPackages",
    names: ["allowed-packages"],
    value: true,
    help: "comma-separated package names images may install (default: any)",
  },
  {
    key: "allowPrivileged",
    names: ["allow-privileged"],
    value: false,
    defaultValue: true,
    help: "run privileged containers (=false: refuse them)",
  },
  {
    key: "allowedHostUsers",
    names: ["allowed-host-users"],
    value: true,
    defaultValue: DEFAULT_SECURITY_POLICY.allowedHostUsers.join(","),
    help: "comma-separated host accounts (names or uids) containers may run as; " +
      "root allows uid 0",
  },
  {
    key: "allowedHostGroups",
    names: ["allowed-host-groups"],
    value: true,
    defaultValue: DEFAULT_SECURITY_POLICY.allowedHostGroups.join(","),
    help: "comma-separated host groups (names or gids) containers may run with",
  },
  {
    key: "podIDRanges",
    names: ["pod-id-range"],
    value: true,
    defaultValue: formatIdRanges(DEFAULT_SECURITY_POLICY.podIDRanges),
    help: "comma-separated id ranges (min-max) pods may run with when no host account or " +
      "group uses the id",
  },
  {
    key: "enableSystemLogHandler",
    names: ["enable-system-log-handler"],
    value: false,
    defaultValue: true,
    help: "serve /var/log at the kubelet API's /logs/ (to callers allowed nodes/log)",
  },
  {
    key: "enableSystemLogQuery",
    names: ["enable-system-log-query"],
    value: false,
    defaultValue: false,
    help: "node log query: /logs/?query=<unit> reads the unit's journal (needs the log handler)",
  },
  {
    key: "shutdownGracePeriod",
    names: ["shutdown-grace-period"],
    value: true,
    defaultValue: "30s",
    help: "how long the pods get to stop when the machine shuts down (logind's delay lock; " +
      "0 turns graceful node shutdown off)",
  },
  {
    key: "shutdownGracePeriodCriticalPods",
    names: ["shutdown-grace-period-critical-pods"],
    value: true,
    defaultValue: "10s",
    help: "the last part of --shutdown-grace-period, kept for critical pods " +
      "(priority system-cluster-critical and above)",
  },
  {
    key: "logLevel",
    names: ["log-level", "v"],
    value: true,
    defaultValue: "info",
    help: "debug (each pod's reconcile decisions), info, warning or error; a number is " +
      "klog's verbosity, as the kubelet's --v takes it: 4 and above debug, below info",
  },
  {
    key: "logFormat",
    names: ["log-format", "logging-format"],
    value: true,
    defaultValue: "text",
    help: "text, or json (one JSON object per line, for log shippers)",
  },
];

/** A command line that cannot be understood; the message says which flag and why. */
export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "UsageError";
  }
}

/** Parses flags into a Config plus the positional arguments. */
export function parseFlags(args: readonly string[]): { config: Config; positionals: string[] } {
  const options: Record<string, { type: "string" | "boolean" }> = {};
  for (const flag of FLAGS) {
    for (const name of flag.names) options[name] = { type: flag.value ? "string" : "boolean" };
  }
  const { rest, switches } = booleanValues(args, options);
  let parsed;
  try {
    parsed = parseArgs({ args: rest, options, allowPositionals: true, strict: true });
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
  const values = {
    ...parsed.values,
    ...switches,
  } as Record<string, string | boolean | undefined>;
  const config: Record<string, unknown> = {};
  for (const flag of FLAGS) {
    const given = flag.names.filter((n) => values[n] !== undefined);
    if (given.length > 1) {
      throw new UsageError(`--${given[0]} and --${given[1]} are the same flag; give one`);
    }
    const raw = given.length ? values[given[0]] : flag.defaultValue;
    config[flag.key] = typeof flag.defaultValue === "number" && raw !== undefined
      ? toCount(flag.names[0], raw)
      : raw;
  }
  // klog's verbosity levels: the kubelet logs its debug detail (pod workers' decisions) at 4.
  if (/^\d+$/.test(config.logLevel as string)) {
    config.logLevel = Number(config.logLevel) >= 4 ? "debug" : "info";
  }
  const logLevel = config.logLevel as LogLevel;
  if (!LOG_LEVELS.includes(logLevel)) {
    throw new UsageError(`--log-level must be debug, info, warning or error, not "${logLevel}"`);
  }
  const logFormat = config.logFormat as LogFormat;
  if (!LOG_FORMATS.includes(logFormat)) {
    throw new UsageError(`--log-format must be text or json, not "${logFormat}"`);
  }
  config.allowedHostPaths = hostPathPrefixes(config.allowedHostPaths as string | undefined);
  const shutdown = toSeconds("shutdown-grace-period", config.shutdownGracePeriod as string);
  const critical = toSeconds(
    "shutdown-grace-period-critical-pods",
    config.shutdownGracePeriodCriticalPods as string,
  );
  // 0 turns graceful shutdown off, whatever the critical pods' share says.
  if (shutdown > 0 && critical > shutdown) {
    throw new UsageError(
      `--shutdown-grace-period-critical-pods (${critical}s) must not be longer than ` +
        `--shutdown-grace-period (${shutdown}s): it is the critical pods' part of it`,
    );
  }
  config.shutdownGracePeriod = shutdown;
  config.shutdownGracePeriodCriticalPods = shutdown > 0 ? critical : 0;
  try {
    config.nodeLabels = parseNodeLabels(config.nodeLabels as string | undefined);
    config.registerWithTaints = parseTaints(config.registerWithTaints as string | undefined);
  } catch (e) {
    if (e instanceof NodeFlagError) throw new UsageError(e.message);
    throw e;
  }
  config.allowedImageURLPrefixes = urlPrefixes(config.allowedImageURLPrefixes as string);
  const packages = config.allowedPackages as string | undefined;
  config.allowedPackages = packages === undefined ? undefined : packageNames(packages);
  config.allowedHostUsers = accountList("allowed-host-users", config.allowedHostUsers as string);
  config.allowedHostGroups = accountList(
    "allowed-host-groups",
    config.allowedHostGroups as string,
  );
  config.podIDRanges = idRanges(config.podIDRanges as string);
  return { config: config as unknown as Config, positionals: parsed.positionals };
}

/** A comma-separated flag value as its non-empty, trimmed entries. */
function list(raw: string | undefined): string[] {
  return (raw ?? "").split(",").map((p) => p.trim()).filter((p) => p !== "");
}

/** `--allowed-image-url-prefixes`: https URLs without credentials, query or fragment. */
function urlPrefixes(raw: string | undefined): string[] {
  return list(raw).map((prefix) => {
    const url = URL.canParse(prefix) ? new URL(prefix) : undefined;
    if (url?.protocol !== "https:" || url.username || url.password || url.search || url.hash) {
      throw new UsageError(
        `--allowed-image-url-prefixes needs https:// URLs without credentials, query or ` +
          `fragment, not "${prefix}"`,
      );
    }
    return url.href;
  });
}

/** `--allowed-packages`: Debian package names. */
function packageNames(raw: string): string[] {
  const names = list(raw);
  const bad = names.find((n) => !isPackageName(n));
  if (bad !== undefined) {
    throw new UsageError(`--allowed-packages needs Debian package names, not "${bad}"`);
  }
  return names;
}

/** `--allowed-host-users`/`--allowed-host-groups`: account names or numeric ids. */
function accountList(flag: string, raw: string): string[] {
  const entries = list(raw);
  const bad = entries.find((e) => !/^(\d+|[A-Za-z_][A-Za-z0-9_.-]*\$?)$/.test(e));
  if (bad !== undefined) throw new UsageError(`--${flag} needs names or ids, not "${bad}"`);
  return entries;
}

/** `--pod-id-range`: `min-max` (or a single id), comma-separated, within 0 to 2^31-1. */
function idRanges(raw: string): IdRange[] {
  return list(raw).map((part) => {
    const m = /^(\d+)(?:-(\d+))?$/.exec(part);
    const min = Number(m?.[1]);
    const max = Number(m?.[2] ?? m?.[1]);
    if (!m || min > max || max > 2 ** 31 - 1) {
      throw new UsageError(
        `--pod-id-range needs ranges min-max of ids from 0 to ${2 ** 31 - 1}, not "${part}"`,
      );
    }
    return { min, max };
  });
}

/**
 * Takes the kubelet's `--flag=true` / `--flag=false` form of boolean flags out of `args`
 * (`parseArgs` knows only the bare `--flag`), so a flag on by default can be turned off.
 */
function booleanValues(
  args: readonly string[],
  options: Record<string, { type: "string" | "boolean" }>,
): { rest: string[]; switches: Record<string, boolean> } {
  const switches: Record<string, boolean> = {};
  const rest = args.filter((arg) => {
    const m = arg.match(/^--([^=]+)=(.*)$/);
    if (!m || options[m[1]]?.type !== "boolean") return true;
    if (m[2] !== "true" && m[2] !== "false") {
      throw new UsageError(`--${m[1]} is true or false, not "${m[2]}"`);
    }
    switches[m[1]] = m[2] === "true";
    return false;
  });
  return { rest, switches };
}

/** `--allowed-host-paths`: absolute path prefixes, comma-separated (empty entries ignored). */
function hostPathPrefixes(raw: string | undefined): string[] {
  const prefixes = list(raw);
  const bad = prefixes.find((p) => !p.startsWith("/") || p.split("/").includes(".."));
  if (bad !== undefined) {
    throw new UsageError(`--allowed-host-paths needs absolute paths without '..', not "${bad}"`);
  }
  return prefixes;
}

function toCount(name: string, raw: string | boolean | number): number {
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 0) {
    throw new UsageError(`--${name} needs a non-negative integer, not "${raw}"`);
  }
  return n;
}

const DURATION_UNITS_MS: Record<string, number> = { h: 3_600_000, m: 60_000, s: 1000, ms: 1 };

/**
 * A duration flag in Go's notation (`30s`, `1m30s`, `1.5m`, `0`), as the kubelet's, in whole
 * seconds (rounded down, as the kubelet counts its shutdown periods).
 */
function toSeconds(name: string, raw: string): number {
  const parts = [...raw.matchAll(/(\d+(?:\.\d+)?)(ms|h|m|s)/g)];
  if (raw !== "0" && (parts.length === 0 || parts.map((p) => p[0]).join("") !== raw)) {
    throw new UsageError(`--${name} needs a duration such as 30s, 1m30s or 0, not "${raw}"`);
  }
  const ms = parts.reduce((sum, [, n, unit]) => sum + Number(n) * DURATION_UNITS_MS[unit], 0);
  return Math.floor(ms / 1000);
}

/** The node's image policy, from `--allowed-image-url-prefixes` and its neighbours. */
export function imagePolicy(config: Config): ImagePolicy {
  return {
    allowedURLPrefixes: config.allowedImageURLPrefixes,
    requireDigest: config.requireImageDigest,
    allowDowngrades: config.allowPackageDowngrades,
    allowedPackages: config.allowedPackages,
  };
}

/** Who pods may run as, from `--allow-privileged`, `--allowed-host-users` and the others. */
export function securityPolicy(config: Config): SecurityPolicy {
  return {
    allowPrivileged: config.allowPrivileged,
    allowedHostUsers: config.allowedHostUsers,
    allowedHostGroups: config.allowedHostGroups,
    podIDRanges: config.podIDRanges,
  };
}

/** What the flags say about this machine as a node, for `localNodeFacts`. */
export function localNodeOptions(config: Config): LocalNodeOptions {
  return {
    nodeName: config.nodeName,
    internalIP: config.nodeIP,
    externalIP: config.nodeExternalIP,
  };
}

/** The `--help` text. */
export function usage(): string {
  const lines = [
    "usage: systemk [flags]                  run as a node (or standalone with --pod-manifest-path)",
    "       systemk plan <pod.yaml|->        print the unit and volume files a Pod becomes",
    "       systemk version                  print version information",
    "",
    "flags:",
  ];
  for (const flag of FLAGS) {
    const names = flag.names.map((n) => `--${n}`).join(", ");
    const def = flag.defaultValue === undefined || flag.defaultValue === false
      ? ""
      : ` (default ${flag.defaultValue})`;
    lines.push(`  ${(names + (flag.value ? " VALUE" : "")).padEnd(40)} ${flag.help}${def}`);
  }
  return lines.join("\n");
}
