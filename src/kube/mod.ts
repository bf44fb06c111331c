/**
 * systemk's Kubernetes-facing building blocks, all working with exactly the node identity
 * (`system:node:<name>` in `system:nodes`; Node authorizer + NodeRestriction, no extra RBAC):
 *
 * - `client.ts`: kubeconfig → API clients, API server endpoint for pods' env.
 * - `node.ts` / `machine.ts` / `node_controller.ts`: the Node object (pure), machine facts,
 *   and the controller that registers it, reports status and renews its Lease.
 * - `labels.ts`: `--node-labels` and `--register-with-taints` as the kubelet checks them.
 * - `pods.ts`: the pods bound to this node as upserts/deletes, with relist watchdog.
 * - `status.ts`: the only writer of pod status.
 * - `events.ts`: kubelet-style Events.
 * - `objects.ts`: referenced ConfigMaps/Secrets, read and watched one by one.
 * - `deletion.ts`: the final delete of a pod object (grace 0, UID precondition).
 * - `mirror.ts`: mirror pods of static pods.
 *
 * @module
 */
export * from "./client.ts";
export * from "./node.ts";
export * from "./labels.ts";
export * from "./machine.ts";
export * from "./node_controller.ts";
export * from "./pods.ts";
export * from "./status.ts";
export * from "./events.ts";
export * from "./objects.ts";
export * from "./deletion.ts";
export * from "./mirror.ts";
