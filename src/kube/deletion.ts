/**
 * The last step of the pod deletion protocol: once every container of a terminating pod has
 * stopped, the node deletes the API object with grace period 0 and a UID precondition, so a
 * pod re-created under the same name is never deleted by mistake.
 *
 * @module
 */
import { httpStatus, type KubeClients } from "./client.ts";

/** What became of the delete. */
export type DeleteOutcome = "deleted" | "gone" | "replaced";

/**
 * Deletes a pod object immediately, if it is still the incarnation `uid`.
 *
 * @param clients API clients of the node identity.
 * @param pod namespace, name and UID of the incarnation to delete.
 * @return `deleted`; `gone` when it no longer existed (404); `replaced` when a pod of another
 * UID holds the name (409, precondition failed). Both are fine for the caller.
 * @throws other API errors (e.g. 403, network), which the caller should retry.
 * @example Usage
 * ```ts
 * await deletePodObject(clients, { namespace: "default", name: "web", uid });
 * ```
 */
export async function deletePodObject(
  clients: Pick<KubeClients, "core">,
  pod: { namespace: string; name: string; uid: string },
): Promise<DeleteOutcome> {
  try {
    await clients.core.deleteNamespacedPod({
      namespace: pod.namespace,
      name: pod.name,
      gracePeriodSeconds: 0,
      body: { gracePeriodSeconds: 0, preconditions: { uid: pod.uid } },
    });
    return "deleted";
  } catch (err) {
    switch (httpStatus(err)) {
      case 404:
        return "gone";
      case 409:
        return "replaced";
      default:
        throw err;
    }
  }
}
