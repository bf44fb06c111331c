/**
 * Container and pod-level resources: parsed once (requests defaulting to limits, as the API
 * server does), then mapped to systemd's cgroup settings, the same for a container's unit and
 * for the pod's slice.
 *
 * @module
 */
import type { V1Container } from "@kubernetes/client-node";
import { METADATA_SECTION, parseUnit, serializeUnit, type UnitFile } from "../unit/mod.ts";
import { fail, type PodContext } from "./_context.ts";
import {
  cpuQuotaForLimit,
  cpuWeightForRequest,
  integerValue,
  milliValue,
  parseQuantity,
  type Quantity,
  QuantityError,
} from "./quantity.ts";

/** Limits and requests (of a container or of the whole pod) by resource name (`cpu`, ...). */
export interface Resources {
  limits: Map<string, Quantity>;
  requests: Map<string, Quantity>;
}

/** `resources` as the API gives them; YAML may give numbers (`cpu: 1`) where it has strings. */
interface ResourceLists {
  limits?: Record<string, string | number>;
  requests?: Record<string, string | number>;
}

/**
 * Parses `lists` (found at `field`, of `container` or of the pod when undefined); a resource
 * with a limit but no request gets the limit as request, as the API server's defaulting does
 * (manifests given to `systemk plan` are not defaulted).
 */
function parseResources(
  ctx: PodContext,
  container: string | undefined,
  field: string,
  lists: ResourceLists | undefined,
): Resources {
  const parse = (kind: "limits" | "requests") => {
    const out = new Map<string, Quantity>();
    for (const [resource, value] of Object.entries(lists?.[kind] ?? {})) {
      try {
        out.set(resource, parseQuantity(String(value)));
      } catch (e) {
        if (!(e instanceof QuantityError)) throw e;
        throw fail(ctx, {
          container,
          what: `${field}.${kind}.${resource}: ${e.message}`,
          todo: "use a quantity such as 500m, 1.5, 128Mi or 1G",
        });
      }
    }
    return out;
  };
  const limits = parse("limits");
  const requests = parse("requests");
  for (const [resource, q] of limits) if (!requests.has(resource)) requests.set(resource, q);
  return { limits, requests };
}

/**
 * A container's `resources`, parsed (see {@link parseResources}); a limit it does not set is the
 * pod-level one, when `spec.resources` has it, as the kubelet applies it to the container's
 * cgroup and reports it through the downward API (never as the container's request).
 */
export function containerResources(ctx: PodContext, container: V1Container): Resources {
  const own = parseResources(ctx, container.name, "resources", container.resources);
  for (const [resource, q] of podResources(ctx).limits) {
    if (!own.limits.has(resource)) own.limits.set(resource, q);
  }
  return own;
}

/**
 * The pod-level `spec.resources` (Kubernetes' PodLevelResources, beta and on in 1.34), parsed:
 * what the whole pod may use together, applied to its slice.
 */
export function podResources(ctx: PodContext): Resources {
  return parseResources(ctx, undefined, "spec.resources", ctx.spec.resources);
}

/** The directives {@link resourceDirectives} writes: what an in-place resize changes. */
export const RESOURCE_KEYS: ReadonlySet<string> = new Set([
  "CPUQuota",
  "MemoryMax",
  "MemorySwapMax",
  "CPUWeight",
  "MemoryLow",
]);

/**
 * Directives for the cgroup limits, in a container's `[Service]` or the pod's `[Slice]`:
 * `CPUQuota=`, `MemoryMax=` (with
 * `MemorySwapMax=0`: the kubelet's default NoSwap behaviour, so a limit means OOM rather than
 * swapping), `CPUWeight=` (only for an explicit request: a request-less pod keeps systemd's
 * default weight instead of the kubelet's best-effort minimum, since it competes with host
 * services rather than with other pods only) and `MemoryLow=`.
 */
export function resourceDirectives(res: Resources): [string, string][] {
  const out: [string, string][] = [];
  const cpuLimit = res.limits.get("cpu");
  if (cpuLimit) out.push(["CPUQuota", cpuQuotaForLimit(milliValue(cpuLimit))]);
  const memoryLimit = res.limits.get("memory");
  if (memoryLimit) {
    out.push(["MemoryMax", String(integerValue(memoryLimit))]);
    out.push(["MemorySwapMax", "0"]);
  }
  const cpuRequest = res.requests.get("cpu");
  if (cpuRequest) out.push(["CPUWeight", String(cpuWeightForRequest(milliValue(cpuRequest)))]);
  const memoryRequest = res.requests.get("memory");
  if (memoryRequest) out.push(["MemoryLow", String(integerValue(memoryRequest))]);
  return out;
}

/** The unit without its resources: the cgroup directives and their `Resources=` record. */
function withoutResources(unit: UnitFile): string {
  return serializeUnit({
    ...unit,
    sections: unit.sections.map((section) => ({
      ...section,
      lines: section.lines.filter((line) =>
        line.kind !== "directive" ||
        !(section.name === "Service" && RESOURCE_KEYS.has(line.key) ||
          section.name === METADATA_SECTION && line.key === "Resources")
      ),
    })),
  });
}

/**
 * Whether two texts of a container's unit differ in its resources and nothing else (the cgroup
 * directives and the `[X-Kubernetes]` record of them): a change an in-place resize applies to the
 * running unit. The container hash leaves resources out, so any other change shows.
 *
 * @example Usage
 * ```ts
 * resourcesOnlyChange("[Service]\nCPUQuota=50%\n", "[Service]\nCPUQuota=100%\n"); // true
 * ```
 */
export function resourcesOnlyChange(before: string, after: string): boolean {
  if (before === after) return false;
  try {
    return withoutResources(parseUnit(before)) === withoutResources(parseUnit(after));
  } catch {
    return false;
  }
}

/**
 * The unit's cgroup directives as the D-Bus properties `SetUnitProperties` takes (all of type
 * `t`): `CPUQuota=50%` → `CPUQuotaPerSecUSec` 500000, the others in bytes or as the weight.
 *
 * @example Usage
 * ```ts
 * unitResourceProperties("[Service]\nCPUQuota=150%\nMemoryMax=1048576\n");
 * // { CPUQuotaPerSecUSec: 1500000n, MemoryMax: 1048576n }
 * ```
 */
export function unitResourceProperties(text: string): Record<string, bigint> {
  const properties: Record<string, bigint> = {};
  for (const section of parseUnit(text).sections) {
    if (section.name !== "Service") continue;
    for (const line of section.lines) {
      if (line.kind !== "directive" || !RESOURCE_KEYS.has(line.key)) continue;
      if (line.key === "CPUQuota") {
        // cpuQuotaForLimit writes whole percent or tenths of one: 1 % of a CPU is 10 ms/s.
        const [whole, tenth = "0"] = line.value.replace(/%$/, "").split(".");
        properties.CPUQuotaPerSecUSec = BigInt(whole) * 10_000n + BigInt(tenth) * 1_000n;
      } else properties[line.key] = BigInt(line.value);
    }
  }
  return properties;
}
