/**
 * Container and pod-level resources: parsed once (requests defaulting to limits, as the API
 * server does), then mapped to systemd's cgroup settings, the same for a container's unit and
 * for the pod's slice.
 *
 * @module
 */
import type { V1Container } from "@kubernetes/client-node";
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
