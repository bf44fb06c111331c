/**
 * The downward API: pod fields and container resources as strings, shared by `env` and by
 * `downwardAPI` volume items so both report the same values.
 *
 * @module
 */
import type { V1Container } from "@kubernetes/client-node";
import { fail, type PodContext } from "./_context.ts";
import { containerResources } from "./resources.ts";
import { divideCeil, integerValue, milliValue, parseQuantity, QuantityError } from "./quantity.ts";
import type { NodeFacts } from "./types.ts";

/**
 * Pod and host addresses under host networking: the pod IP is the node's external address
 * (the seed's "primary Pod address"), the host IP its internal address (what the kubelet
 * reports as hostIP: the node's InternalIP).
 */
export function podAddresses(node: NodeFacts): { podIP: string; hostIP: string } {
  return { podIP: node.externalIP, hostIP: node.internalIP };
}

/**
 * Go's `%q` for the strings the kubelet formats label/annotation maps with: Go escapes for
 * quotes, backslashes and control characters; other characters as they are.
 */
function goQuote(s: string): string {
  const named: Record<string, string> = {
    "\x07": "\\a",
    "\b": "\\b",
    "\f": "\\f",
    "\n": "\\n",
    "\r": "\\r",
    "\t": "\\t",
    "\v": "\\v",
    '"': '\\"',
    "\\": "\\\\",
  };
  let out = '"';
  for (const ch of s) {
    const code = ch.codePointAt(0)!;
    if (named[ch]) out += named[ch];
    else if (code < 0x20 || code === 0x7f) out += "\\x" + code.toString(16).padStart(2, "0");
    else out += ch;
  }
  return out + '"';
}

/** The kubelet's `fieldpath.FormatMap`: sorted `key="value"` lines. */
function formatMap(map: Record<string, string> | undefined): string {
  return Object.keys(map ?? {}).sort().map((k) => `${k}=${goQuote(map![k])}`).join("\n");
}

// `metadata.labels['key']` (the API also accepts double quotes).
const SUBSCRIPT = /^metadata\.(labels|annotations)\[(['"])(.*)\2\]$/;

/** Where a `fieldRef` stands: see {@link fieldRefValue}. */
export interface FieldRefOptions {
  /** The container whose env refers to it; none for a downwardAPI volume. */
  container?: string;
  /**
   * True for a downwardAPI volume, which also allows whole `metadata.labels`/`annotations`;
   * env (false, the default) allows the node and status fields instead (the API's
   * validation rules).
   */
  forVolume?: boolean;
}

/**
 * The value of a `fieldRef.fieldPath`.
 *
 * @throws PodError for a field the downward API does not offer there.
 */
export function fieldRefValue(
  ctx: PodContext,
  fieldPath: string,
  options: FieldRefOptions = {},
): string {
  const { container, forVolume = false } = options;
  const meta = ctx.pod.metadata ?? {};
  const sub = SUBSCRIPT.exec(fieldPath);
  if (sub) {
    const map = sub[1] === "labels" ? meta.labels : meta.annotations;
    return map?.[sub[3]] ?? "";
  }
  switch (fieldPath) {
    case "metadata.name":
      return ctx.name;
    case "metadata.namespace":
      return ctx.namespace;
    case "metadata.uid":
      return ctx.uid;
  }
  if (forVolume) {
    if (fieldPath === "metadata.labels") return formatMap(meta.labels);
    if (fieldPath === "metadata.annotations") return formatMap(meta.annotations);
  } else {
    const { podIP, hostIP } = podAddresses(ctx.input.node);
    switch (fieldPath) {
      case "spec.nodeName":
        return ctx.spec.nodeName ?? ctx.input.node.name;
      case "spec.serviceAccountName":
        return ctx.spec.serviceAccountName ?? "";
      case "status.hostIP":
      case "status.hostIPs":
        return hostIP;
      case "status.podIP":
      case "status.podIPs":
        return podIP;
    }
  }
  throw fail(ctx, {
    container,
    what: `fieldRef.fieldPath "${fieldPath}" is not supported ${
      forVolume ? "in a downwardAPI volume" : "in env"
    }`,
    todo: "use metadata.name, metadata.namespace, metadata.uid, metadata.labels['k'] or " +
      "metadata.annotations['k']" +
      (forVolume ? " (or all labels/annotations)" : ", spec.nodeName, spec.serviceAccountName, " +
        "status.hostIP(s) or status.podIP(s)"),
  });
}

/** A `resourceFieldRef` as in env (container optional) and downwardAPI items. */
export interface ResourceFieldRef {
  containerName?: string;
  resource: string;
  divisor?: string | number;
}

/** Where a `resourceFieldRef` stands: see {@link resourceFieldValue}. */
export interface ResourceFieldOptions {
  /**
   * The container whose env refers to it, the default `containerName`; none for a downwardAPI
   * volume.
   */
  container?: V1Container;
}

/**
 * The value of a `resourceFieldRef`, as the kubelet computes it: limits the container does not
 * set default to the pod-level limit (`spec.resources`), then to the node's allocatable; the
 * value is divided by `divisor` (default 1) and
 * rounded up (CPU in millicores first).
 */
export function resourceFieldValue(
  ctx: PodContext,
  ref: ResourceFieldRef,
  options: ResourceFieldOptions = {},
): string {
  const self = options.container;
  const who = self?.name;
  const target = ref.containerName
    ? [...(ctx.spec.initContainers ?? []), ...ctx.spec.containers].find((c) =>
      c.name === ref.containerName
    )
    : self;
  if (!target) {
    throw fail(ctx, {
      container: who,
      what: `resourceFieldRef names container "${
        ref.containerName ?? ""
      }", which the pod does not have`,
      todo: "set resourceFieldRef.containerName to one of the pod's containers",
    });
  }
  const m = /^(limits|requests)\.(cpu|memory|ephemeral-storage)$/.exec(ref.resource);
  if (!m) {
    throw fail(ctx, {
      container: who,
      what: `resourceFieldRef.resource "${ref.resource}" is not supported`,
      todo: "use limits.cpu, limits.memory, limits.ephemeral-storage or the same requests.*",
    });
  }
  const [, kind, resource] = m;
  let divisor;
  try {
    divisor = parseQuantity(String(ref.divisor ?? "1"));
  } catch (e) {
    if (!(e instanceof QuantityError)) throw e;
    throw fail(ctx, {
      container: who,
      what: `resourceFieldRef.divisor: ${e.message}`,
      todo: "use a quantity like 1m or 1Mi",
    });
  }
  const res = containerResources(ctx, target);
  const q = (kind === "limits" ? res.limits : res.requests).get(resource);
  const cpu = resource === "cpu";
  let value: bigint;
  if (q) {
    value = cpu ? milliValue(q) : integerValue(q);
  } else if (kind === "requests") {
    value = 0n;
  } else {
    const alloc = ctx.input.node.allocatable;
    const fromNode = cpu
      ? alloc?.cpuMilli
      : resource === "memory"
      ? alloc?.memoryBytes
      : alloc?.ephemeralStorageBytes;
    if (fromNode === undefined) {
      throw fail(ctx, {
        container: who,
        what:
          `resourceFieldRef ${ref.resource}: container ${target.name} and the pod set no such ` +
          "limit and the node's allocatable amount is unknown",
        todo: `set resources.limits.${resource} on container ${target.name} or the pod`,
      });
    }
    value = BigInt(fromNode);
  }
  const by = cpu ? milliValue(divisor) : integerValue(divisor);
  if (by === 0n) {
    throw fail(ctx, {
      container: who,
      what: "resourceFieldRef.divisor is zero",
      todo: "use a positive divisor like 1m",
    });
  }
  return String(divideCeil(value, by));
}
