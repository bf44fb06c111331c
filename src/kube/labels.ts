/**
 * The node's own labels and taints as the kubelet takes them from its command line:
 * `--node-labels key=value,...` and `--register-with-taints key=value:Effect,...`, with the
 * kubelet's startup checks: label keys and values of Kubernetes' syntax, and no label in the
 * `kubernetes.io`/`k8s.io` namespaces that NodeRestriction forbids a node to set on itself
 * (only the `kubelet.kubernetes.io` and `node.kubernetes.io` prefixes and the well-known
 * labels are a node's own). Pure.
 *
 * @module
 */
import type { V1Taint } from "@kubernetes/client-node";

/** A `--node-labels` or `--register-with-taints` value the kubelet would refuse at startup. */
export class NodeFlagError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "NodeFlagError";
  }
}

/** Label namespaces (and their subdomains) a node may use for its own labels. */
export const KUBELET_LABEL_NAMESPACES = ["kubelet.kubernetes.io", "node.kubernetes.io"] as const;

/** The well-known labels a node may set on itself although they are in `kubernetes.io`. */
export const KUBELET_LABELS = [
  "beta.kubernetes.io/arch",
  "beta.kubernetes.io/instance-type",
  "beta.kubernetes.io/os",
  "failure-domain.beta.kubernetes.io/region",
  "failure-domain.beta.kubernetes.io/zone",
  "kubernetes.io/arch",
  "kubernetes.io/hostname",
  "kubernetes.io/os",
  "node.kubernetes.io/instance-type",
  "topology.kubernetes.io/region",
  "topology.kubernetes.io/zone",
] as const;

/** The taint effects the scheduler knows. */
export const TAINT_EFFECTS = ["NoSchedule", "PreferNoSchedule", "NoExecute"] as const;

const NAME = /^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$/;
const DNS1123_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const NAME_RULE = "alphanumeric characters, '-', '_' or '.', starting and ending with an " +
  "alphanumeric character";

/** The part of a label key before `/`, or "" when it has none. */
function labelNamespace(key: string): string {
  const slash = key.indexOf("/");
  return slash < 0 ? "" : key.slice(0, slash);
}

function inDomain(namespace: string, domain: string): boolean {
  return namespace === domain || namespace.endsWith("." + domain);
}

/** Whether `key` lies in the `kubernetes.io` or `k8s.io` namespaces (or a subdomain of them). */
export function isKubernetesLabel(key: string): boolean {
  const namespace = labelNamespace(key);
  return inDomain(namespace, "kubernetes.io") || inDomain(namespace, "k8s.io");
}

/**
 * Whether a node may set label `key` on its own Node (k8s.io/kubelet's `IsKubeletLabel`, which
 * NodeRestriction applies to every label of the `kubernetes.io`/`k8s.io` namespaces).
 *
 * @example Usage
 * ```ts
 * import assert from "node:assert/strict";
 * assert.equal(isKubeletLabel("node.kubernetes.io/pool"), true);
 * assert.equal(isKubeletLabel("node-role.kubernetes.io/worker"), false);
 * ```
 */
export function isKubeletLabel(key: string): boolean {
  if ((KUBELET_LABELS as readonly string[]).includes(key)) return true;
  const namespace = labelNamespace(key);
  return KUBELET_LABEL_NAMESPACES.some((allowed) => inDomain(namespace, allowed));
}

/**
 * What is wrong with `key` as a label key or taint key (apimachinery's `IsQualifiedName`): an
 * optional DNS-1123 subdomain prefix and `/`, then a name of at most 63 characters.
 *
 * @return the problems; empty when the key is valid.
 */
export function qualifiedNameProblems(key: string): string[] {
  const parts = key.split("/");
  if (parts.length > 2) return ["a qualified name has at most one '/'"];
  const name = parts.at(-1)!;
  const problems: string[] = [];
  if (parts.length === 2) {
    const prefix = parts[0];
    if (prefix === "") problems.push("prefix part must be non-empty");
    else if (prefix.length > 253 || !DNS1123_SUBDOMAIN.test(prefix)) {
      problems.push("prefix part must be a lowercase DNS-1123 subdomain (e.g. example.com)");
    }
  }
  if (name === "") problems.push("name part must be non-empty");
  else if (name.length > 63) problems.push("name part must be no more than 63 characters");
  else if (!NAME.test(name)) problems.push(`name part must consist of ${NAME_RULE}`);
  return problems;
}

/**
 * What is wrong with `value` as a label value (apimachinery's `IsValidLabelValue`): empty, or
 * at most 63 characters of the name alphabet.
 *
 * @return the problems; empty when the value is valid.
 */
export function labelValueProblems(value: string): string[] {
  if (value === "") return [];
  if (value.length > 63) return ["must be no more than 63 characters"];
  return NAME.test(value) ? [] : [`must be empty or consist of ${NAME_RULE}`];
}

/**
 * Parses `--node-labels`: comma-separated `key=value` pairs (spaces around them ignored), then
 * checks them as the kubelet does at startup.
 *
 * @param spec the flag's value; "" or undefined for none.
 * @return the labels.
 * @throws {NodeFlagError} naming the labels and the rule they break: a malformed pair, an
 *   invalid key or value, or a `kubernetes.io`/`k8s.io` label NodeRestriction would refuse.
 * @example Usage
 * ```ts
 * import assert from "node:assert/strict";
 * assert.deepEqual(parseNodeLabels("tier=edge, node.kubernetes.io/pool=a"), {
 *   tier: "edge",
 *   "node.kubernetes.io/pool": "a",
 * });
 * ```
 */
export function parseNodeLabels(spec: string | undefined): Record<string, string> {
  const labels: Record<string, string> = {};
  for (const pair of (spec ?? "").split(",").map((p) => p.trim()).filter((p) => p !== "")) {
    const eq = pair.indexOf("=");
    if (eq < 0) {
      throw new NodeFlagError(`--node-labels: malformed pair "${pair}", expect key=value`);
    }
    labels[pair.slice(0, eq).trim()] = pair.slice(eq + 1).trim();
  }
  const invalid = Object.entries(labels).flatMap(([key, value]) => {
    const problems = [
      ...qualifiedNameProblems(key).map((p) => `key ${p}`),
      ...labelValueProblems(value).map((p) => `value "${value}" ${p}`),
    ];
    return problems.length ? [`'${key}' - ${problems.join(", ")}`] : [];
  });
  if (invalid.length) throw new NodeFlagError(`invalid node labels: ${invalid.join("; ")}`);
  const forbidden = Object.keys(labels).filter((k) => isKubernetesLabel(k) && !isKubeletLabel(k));
  if (forbidden.length) {
    throw new NodeFlagError(
      `unknown 'kubernetes.io' or 'k8s.io' labels specified with --node-labels: ` +
        `[${forbidden.sort().join(" ")}]\n--node-labels in the 'kubernetes.io' namespace must ` +
        `begin with an allowed prefix (${KUBELET_LABEL_NAMESPACES.join(", ")}) or be in the ` +
        `specifically allowed set (${KUBELET_LABELS.join(", ")}): the NodeRestriction admission ` +
        `plugin refuses any other on a node's own Node. Set such a label as cluster admin ` +
        `instead (kubectl label node <name> ${forbidden[0]}=...)`,
    );
  }
  return labels;
}

/**
 * Parses `--register-with-taints`: comma-separated `key=value:Effect` or `key:Effect` (the
 * kubelet's and `kubectl taint`'s syntax).
 *
 * @param spec the flag's value; "" or undefined for none.
 * @return the taints, in the order given.
 * @throws {NodeFlagError} naming the taint: a malformed spec, an invalid key or value, an
 *   unknown effect, or two taints with the same key and effect.
 * @example Usage
 * ```ts
 * import assert from "node:assert/strict";
 * assert.deepEqual(parseTaints("dedicated=edge:NoSchedule"), [
 *   { key: "dedicated", value: "edge", effect: "NoSchedule" },
 * ]);
 * ```
 */
export function parseTaints(spec: string | undefined): V1Taint[] {
  const taints: V1Taint[] = [];
  for (const one of (spec ?? "").split(",").map((t) => t.trim()).filter((t) => t !== "")) {
    const taint = parseTaint(one);
    if (taints.some((t) => t.key === taint.key && t.effect === taint.effect)) {
      throw new NodeFlagError(
        `--register-with-taints: duplicated taints with the same key and effect: ` +
          `${taint.key}:${taint.effect}`,
      );
    }
    taints.push(taint);
  }
  return taints;
}

function parseTaint(spec: string): V1Taint {
  const invalid = (why: string) =>
    new NodeFlagError(`--register-with-taints: invalid taint spec "${spec}": ${why}`);
  const parts = spec.split(":");
  if (parts.length !== 2) throw invalid("expect key=value:Effect or key:Effect");
  const [keyValue, effect] = parts;
  if (!(TAINT_EFFECTS as readonly string[]).includes(effect)) {
    throw invalid(`unsupported taint effect "${effect}" (${TAINT_EFFECTS.join(", ")})`);
  }
  const kv = keyValue.split("=");
  if (kv.length > 2) throw invalid("more than one '='");
  const [key, value] = kv;
  const problems = [
    ...qualifiedNameProblems(key).map((p) => `key ${p}`),
    ...labelValueProblems(value ?? "").map((p) => `value ${p}`),
  ];
  if (problems.length) throw invalid(problems.join(", "));
  return value === undefined ? { key, effect } : { key, value, effect };
}

/** A taint as `kubectl taint` writes it: `key=value:Effect`, or `key:Effect` without value. */
export function formatTaint(taint: V1Taint): string {
  return `${taint.key}${taint.value ? `=${taint.value}` : ""}:${taint.effect}`;
}
