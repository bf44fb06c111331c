/**
 * The pure pod → units planner: `planPod` turns a pod (with its resolved ConfigMaps, Secrets,
 * node facts and package unit files) into the exact unit files and volume files to create,
 * or a `PodError` naming the pod, the container and what to do; `formatPlan` prints a plan.
 *
 * @module
 */
export {
  DEFAULT_GRACE_SECONDS,
  DEFAULT_STATE_DIR,
  MINIMUM_GRACE_SECONDS,
  planPod,
  podDirectory,
} from "./plan.ts";
export { formatPlan } from "./format.ts";
export { allContainers, type ContainerKind, isSidecar } from "./containers.ts";
export { identitySettings, rootSettings, type ServiceSetting } from "./enter.ts";
export { parseManifests } from "./manifest.ts";
export type { Manifests } from "./manifest.ts";
export { podAddresses } from "./downward.ts";
export { type HostPathPolicy, hostPathProblem, serviceAccountTokenKey } from "./volumes.ts";
export { parseQuantity, QuantityError } from "./quantity.ts";
export type { Quantity } from "./quantity.ts";
export * from "./types.ts";
export { PodError } from "../pod_error.ts";
