/**
 * What each container is to its pod: a regular init container, a sidecar, an app container or
 * an ephemeral one. The planner, the status mapping and the pod runtime all ask this here.
 *
 * @module
 */
import type { V1Container, V1PodSpec } from "@kubernetes/client-node";

/**
 * What a container is to its pod: a regular init container, a sidecar (an init container with
 * `restartPolicy: Always`), an app container, or an ephemeral (debug) container.
 */
export type ContainerKind = "init" | "sidecar" | "app" | "ephemeral";

/**
 * Whether an init container is a sidecar (a "restartable init container": `restartPolicy:
 * Always`).
 *
 * @param container The init container's spec.
 * @return True for `restartPolicy: Always`.
 *
 * @example Usage
 * ```ts
 * import { isSidecar } from "./containers.ts";
 * import assert from "node:assert/strict";
 * assert.equal(isSidecar({ name: "proxy", restartPolicy: "Always" }), true);
 * ```
 */
export function isSidecar(container: V1Container): boolean {
  return container.restartPolicy === "Always";
}

/**
 * Every container of the pod, with its kind: init containers (in order), then app containers,
 * then ephemeral containers (whose spec is a container's, plus `targetContainerName`).
 *
 * @param spec The pod's spec.
 * @return The containers in that order.
 *
 * @example Usage
 * ```ts
 * import { allContainers } from "./containers.ts";
 * import assert from "node:assert/strict";
 * const spec = { initContainers: [{ name: "proxy", restartPolicy: "Always" }],
 *   containers: [{ name: "app" }], ephemeralContainers: [{ name: "dbg" }] };
 * assert.deepEqual(allContainers(spec).map((c) => c.kind), ["sidecar", "app", "ephemeral"]);
 * ```
 */
export function allContainers(spec: V1PodSpec): { container: V1Container; kind: ContainerKind }[] {
  return [
    ...(spec.initContainers ?? []).map((container) => ({
      container,
      kind: isSidecar(container) ? "sidecar" as const : "init" as const,
    })),
    ...spec.containers.map((container) => ({ container, kind: "app" as const })),
    ...(spec.ephemeralContainers ?? []).map((container) => ({
      container: container as V1Container,
      kind: "ephemeral" as const,
    })),
  ];
}
