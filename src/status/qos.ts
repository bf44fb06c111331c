/**
 * The pod's QoS class, computed like `ComputePodQOS` in Kubernetes
 * (pkg/apis/core/helper/qos): only `cpu` and `memory` count, zero quantities are ignored,
 * requests and limits are summed over init and app containers, or taken from pod-level
 * `spec.resources` when that sets requests or limits.
 *
 * @module
 */
import type { V1Pod, V1ResourceRequirements } from "@kubernetes/client-node";
import {
  addQuantities,
  compareQuantities,
  parseQuantity,
  type Quantity,
} from "../plan/quantity.ts";

/** `Guaranteed`, `Burstable` or `BestEffort`. */
export type QOSClass = "Guaranteed" | "Burstable" | "BestEffort";

const QOS_RESOURCES = ["cpu", "memory"] as const;

/**
 * Computes the QoS class of a pod from its spec.
 *
 * A container's missing request defaults to its limit, as API-server defaulting does: pods
 * read from manifest files have not been through that defaulting, and must get the same class
 * they would get from the API. Unparsable quantities are ignored (status must always be
 * reportable; the planner rejects such pods with a clear error).
 *
 * @param pod The pod.
 * @return Its QoS class.
 *
 * @example Usage
 * ```ts
 * import { computeQOSClass } from "./qos.ts";
 * import assert from "node:assert/strict";
 * const pod = { spec: { containers: [{ name: "a", resources: { limits: { cpu: "1", memory: "1Gi" } } }] } };
 * assert.equal(computeQOSClass(pod), "Guaranteed");
 * ```
 */
export function computeQOSClass(pod: V1Pod): QOSClass {
  const requests = new Map<string, Quantity>();
  const limits = new Map<string, Quantity>();
  let guaranteed = true;

  const podResources = pod.spec?.resources;
  if (podResources && (podResources.requests || podResources.limits)) {
    const { requests: podRequests, limits: podLimits } = defaulted(podResources);
    accumulate(requests, podRequests);
    accumulate(limits, podLimits);
    if (!QOS_RESOURCES.every((name) => podLimits.has(name))) guaranteed = false;
  } else {
    for (
      const container of [...(pod.spec?.containers ?? []), ...(pod.spec?.initContainers ?? [])]
    ) {
      const { requests: containerRequests, limits: containerLimits } = defaulted(
        container.resources,
      );
      accumulate(requests, containerRequests);
      accumulate(limits, containerLimits);
      if (!QOS_RESOURCES.every((name) => containerLimits.has(name))) guaranteed = false;
    }
  }

  if (requests.size === 0 && limits.size === 0) return "BestEffort";
  if (guaranteed) {
    for (const [name, request] of requests) {
      const limit = limits.get(name);
      if (!limit || compareQuantities(limit, request) !== 0) {
        guaranteed = false;
        break;
      }
    }
  }
  return guaranteed && requests.size === limits.size ? "Guaranteed" : "Burstable";
}

/** Positive cpu/memory quantities of a resource list. */
function positive(list: Record<string, string> | undefined): Map<string, Quantity> {
  const result = new Map<string, Quantity>();
  for (const name of QOS_RESOURCES) {
    const text = list?.[name];
    const quantity = text === undefined ? undefined : quantityOrUndefined(String(text));
    if (quantity && quantity.numerator > 0n) result.set(name, quantity);
  }
  return result;
}

/** Status reporting never fails on a bad spec: an invalid quantity counts as absent. */
function quantityOrUndefined(text: string): Quantity | undefined {
  try {
    return parseQuantity(text);
  } catch {
    return undefined;
  }
}

/** Requests and limits after API-server defaulting (request := limit if unset). */
function defaulted(resources: V1ResourceRequirements | undefined) {
  const requests = positive(resources?.requests);
  const limits = positive(resources?.limits);
  for (const [name, limit] of limits) {
    if (resources?.requests?.[name] === undefined) requests.set(name, limit);
  }
  return { requests, limits };
}

function accumulate(into: Map<string, Quantity>, from: Map<string, Quantity>): void {
  for (const [name, quantity] of from) {
    const sum = into.get(name);
    into.set(name, sum ? addQuantities(sum, quantity) : quantity);
  }
}
