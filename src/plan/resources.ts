/**
 * Container resources: parsed once (requests defaulting to limits, as the API server does),
 * then mapped to systemd's cgroup settings.
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

/** A container's limits and requests by resource name (`cpu`, `memory`, ...). */
export interface ContainerResources {
  limits: Map<string, Quantity>;
  requests: Map<string, Quantity>;
}

function parseList(
  ctx: PodContext,
  container: V1Container,
  field: string,
  list: Record<string, string | number> | undefined,
): Map<string, Quantity> {
  const out = new Map<string, Quantity>();
  for (const [resource, value] of Object.entries(list ?? {})) {
    try {
      out.set(resource, parseQuantity(String(value)));
    } catch (e) {
      if (!(e instanceof QuantityError)) throw e;
      throw fail(
        ctx,
        container.name,
        `resources.${field}.${resource}: ${e.message}`,
        "use a quantity such as 500m, 1.5, 128Mi or 1G",
      );
    }
  }
  return out;
}

/**
 * Parses `resources`; a resource with a limit but no request gets the limit as request, as the
 * API server's defaulting does (manifests given to `systemk plan` are not defaulted).
 */
export function containerResources(ctx: PodContext, container: V1Container): ContainerResources {
  const r = container.resources;
  // client-node types quantities as strings, but YAML may give numbers (`cpu: 1`).
  const limits = parseList(ctx, container, "limits", r?.limits as Record<string, string>);
  const requests = parseList(ctx, container, "requests", r?.requests as Record<string, string>);
  for (const [resource, q] of limits) if (!requests.has(resource)) requests.set(resource, q);
  return { limits, requests };
}

/**
 * `[Service]` directives for the cgroup limits: `CPUQuota=`, `MemoryMax=` (with
 * `MemorySwapMax=0`: the kubelet's default NoSwap behaviour, so a limit means OOM rather than
 * swapping), `CPUWeight=` (only for an explicit request: a request-less pod keeps systemd's
 * default weight instead of the kubelet's best-effort minimum, since it competes with host
 * services rather than with other pods only) and `MemoryLow=`.
 */
export function resourceDirectives(res: ContainerResources): [string, string][] {
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
