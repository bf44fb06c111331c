/**
 * Pod admission, as the kubelet's `canAdmitPod`: before a new pod's first step, it must fit
 * beside the pods already admitted on the node, or it is rejected — phase Failed with the
 * reason and message of the kubelet's `rejectPod` ("Pod was rejected: ..."), a Warning Event,
 * and none of its containers ever created. The pods already admitted always win; a rejected pod
 * is never admitted later (its phase is terminal).
 *
 * Host ports, the kubelet's `GeneralPredicates` → the scheduler's `NodePorts` filter: systemk's
 * pods all use the host's network, so every declared `containerPort` of an app or sidecar
 * container is a port of the node (the process binds it; a different `hostPort` maps
 * nothing), and a pod declaring one that an admitted pod declares (same protocol and port, and
 * the same host IP or either one `0.0.0.0`) is rejected with reason `NodePorts`. Pure.
 *
 * @module
 */
import type { V1Container, V1Pod } from "@kubernetes/client-node";
import type { PodFailure } from "../status/mod.ts";
import { podKey } from "./context.ts";

/** A host port a container declares. */
export interface HostPort {
  protocol: string;
  /** `0.0.0.0` when the port names no `hostIP`: every address of the node. */
  hostIP: string;
  port: number;
  container: string;
}

/** The scheduler's `NodePorts` plugin: its name (the rejection's reason) and failure text. */
export const NODE_PORTS = {
  reason: "NodePorts",
  description: "node(s) didn't have free ports for the requested pod ports",
} as const;

const ANY_ADDRESS = "0.0.0.0";

/**
 * The host ports a pod's app and sidecar containers declare (regular init containers run to
 * completion before the others start, as the scheduler leaves them out too).
 *
 * @param pod the pod.
 * @return Its host ports, in spec order.
 *
 * @example Usage
 * ```ts
 * import { hostPorts } from "./admission.ts";
 * import assert from "node:assert/strict";
 * const pod = { spec: { containers: [{ name: "web", ports: [{ containerPort: 8080 }] }] } };
 * assert.deepEqual(hostPorts(pod), [
 *   { protocol: "TCP", hostIP: "0.0.0.0", port: 8080, container: "web" },
 * ]);
 * ```
 */
export function hostPorts(pod: V1Pod): HostPort[] {
  const containers: V1Container[] = [
    ...(pod.spec?.initContainers ?? []).filter((c) => c.restartPolicy === "Always"),
    ...(pod.spec?.containers ?? []),
  ];
  return containers.flatMap((container) =>
    (container.ports ?? []).map((p) => ({
      protocol: p.protocol || "TCP",
      hostIP: p.hostIP || ANY_ADDRESS,
      port: p.containerPort,
      container: container.name,
    })).filter((p) => p.port > 0)
  );
}

/** Two pods declaring one host port. */
export interface PortConflict {
  /** The new pod's port. */
  port: HostPort;
  /** The admitted pod that declares it. */
  holder: V1Pod;
  /** The admitted pod's port. */
  held: HostPort;
}

/**
 * The first host port of `pod` that an admitted pod declares too (the scheduler's
 * `HostPortInfo.CheckConflict`).
 *
 * @param pod the pod to admit.
 * @param admitted the pods already admitted on the node.
 * @return The conflict, or undefined when the pod's ports are free.
 */
export function findPortConflict(
  pod: V1Pod,
  admitted: Iterable<V1Pod>,
): PortConflict | undefined {
  const wanted = hostPorts(pod);
  if (wanted.length === 0) return undefined;
  for (const holder of admitted) {
    for (const held of hostPorts(holder)) {
      const port = wanted.find((p) =>
        p.port === held.port && p.protocol === held.protocol &&
        (p.hostIP === held.hostIP || p.hostIP === ANY_ADDRESS || held.hostIP === ANY_ADDRESS)
      );
      if (port) return { port, holder, held };
    }
  }
  return undefined;
}

/**
 * Whether `pod` may run beside the `admitted` pods: undefined if it may, else the reason and
 * message of the rejection (`NodePorts`, naming the port, the containers and the pod that holds
 * it).
 *
 * @param pod the pod to admit.
 * @param admitted the pods already admitted on the node (not `pod` itself).
 * @return The rejection, or undefined.
 *
 * @example Usage
 * ```ts
 * import { admitHostPorts } from "./admission.ts";
 * import assert from "node:assert/strict";
 * const web = (name: string) => ({
 *   metadata: { namespace: "default", name },
 *   spec: { containers: [{ name: "app", ports: [{ containerPort: 8080 }] }] },
 * });
 * assert.equal(admitHostPorts(web("b"), [web("a")])?.reason, "NodePorts");
 * assert.equal(admitHostPorts(web("b"), []), undefined);
 * ```
 */
export function admitHostPorts(pod: V1Pod, admitted: Iterable<V1Pod>): PodFailure | undefined {
  const conflict = findPortConflict(pod, admitted);
  if (!conflict) return undefined;
  const { port, holder, held } = conflict;
  const address = port.hostIP === ANY_ADDRESS ? "" : ` on ${port.hostIP}`;
  return {
    reason: NODE_PORTS.reason,
    message: `Predicate ${NODE_PORTS.reason} failed: ${NODE_PORTS.description}: ` +
      `${port.protocol} port ${port.port}${address} of container "${port.container}" is ` +
      `used by pod ${podKey(holder)} (container "${held.container}")`,
  };
}

/**
 * The status reason and message of a pod rejected at admission, as the kubelet's `rejectPod`
 * writes them: the reason, and the message after "Pod was rejected: " (the Event carries
 * the bare message).
 *
 * @param rejection the admission handler's reason and message.
 * @return The pod's failure.
 *
 * @example Usage
 * ```ts
 * import { rejectedStatus } from "./admission.ts";
 * import assert from "node:assert/strict";
 * assert.equal(rejectedStatus({ reason: "R", message: "m" }).message, "Pod was rejected: m");
 * ```
 */
export function rejectedStatus(rejection: PodFailure): PodFailure {
  return { reason: rejection.reason, message: `Pod was rejected: ${rejection.message}` };
}
