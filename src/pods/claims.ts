/**
 * The PersistentVolumeClaims of a pod's volumes, the PersistentVolumes bound to them and this
 * node's labels, read with the node's own credentials for the planner (src/plan/claims.ts
 * checks them). The Node authorizer lets a node get a claim once a pod on it references it, and
 * the volume once the claim is bound to it; it lets a node watch neither, so they are read at each
 * sync of the pod until its claims resolve, and from then on the pod keeps what it mounted, as
 * the kubelet's volume manager keeps a mounted volume whatever later happens to the claim (a
 * claim in use is deleted only once no pod uses it, its protection finalizer sees to that).
 *
 * @module
 */
import type { V1PersistentVolume, V1PersistentVolumeClaim, V1Pod } from "@kubernetes/client-node";
import type { KubeClients } from "../kube/client.ts";
import { type ObjectAccess, ObjectForbiddenError } from "../kube/objects.ts";
import { claimedVolume, isClaimProblem } from "../plan/claims.ts";
import { PodError } from "../pod_error.ts";
import type { References } from "./ports.ts";
import { podReferences } from "./references.ts";

/** What the planner needs of a pod's claims. */
export type ClaimObjects = Required<
  Pick<References, "persistentVolumeClaims" | "persistentVolumes" | "nodeLabels">
>;

/** Options of {@link PodClaims}. */
export interface PodClaimsOptions {
  objects: Pick<ObjectAccess, "get">;
  clients: Pick<KubeClients, "core">;
  nodeName: string;
}

/** Reads pods' claims; see the module doc. */
export class PodClaims {
  readonly #o: PodClaimsOptions;
  /** Per pod UID: its claims once they all resolved. */
  readonly #resolved = new Map<string, ClaimObjects>();

  /** @param options where claims, volumes and the Node are read. */
  constructor(options: PodClaimsOptions) {
    this.#o = options;
  }

  /**
   * The claims of `pod`'s volumes, their PersistentVolumes and the node's labels; nothing is
   * read for a pod without claims.
   *
   * @throws {PodError} `FailedMount` when the Node authorizer still refuses a claim or volume.
   */
  async forPod(pod: V1Pod): Promise<Partial<ClaimObjects>> {
    const uid = pod.metadata!.uid!;
    const names = podReferences(pod).persistentVolumeClaims;
    if (names.length === 0) return {};
    const kept = this.#resolved.get(uid);
    if (kept) return kept;
    const namespace = pod.metadata!.namespace!;
    const found: ClaimObjects = {
      persistentVolumeClaims: new Map<string, V1PersistentVolumeClaim>(),
      persistentVolumes: new Map<string, V1PersistentVolume>(),
      nodeLabels: {},
    };
    try {
      const node = await this.#o.clients.core.readNode({ name: this.#o.nodeName });
      found.nodeLabels = node.metadata?.labels ?? {};
      await Promise.all(names.map(async (name) => {
        const claim = await this.#o.objects.get({ kind: "PersistentVolumeClaim", namespace, name });
        if (!claim.found) return;
        found.persistentVolumeClaims.set(name, claim.object);
        const volumeName = claim.object.spec?.volumeName;
        if (!volumeName) return;
        const ref = { kind: "PersistentVolume", namespace: "", name: volumeName } as const;
        const volume = await this.#o.objects.get(ref);
        if (volume.found) found.persistentVolumes.set(volumeName, volume.object);
      }));
    } catch (e) {
      if (!(e instanceof ObjectForbiddenError)) throw e;
      throw new PodError("FailedMount", `${e.message}; retrying`);
    }
    const resolves = (pod.spec?.volumes ?? []).every((volume) =>
      !volume.persistentVolumeClaim || !isClaimProblem(claimedVolume(volume, {
        namespace,
        claims: found.persistentVolumeClaims,
        volumes: found.persistentVolumes,
        node: { name: this.#o.nodeName, labels: found.nodeLabels },
      }))
    );
    if (resolves) this.#resolved.set(uid, found);
    return found;
  }

  /** Forgets a pod (it was removed). */
  release(uid: string): void {
    this.#resolved.delete(uid);
  }
}
