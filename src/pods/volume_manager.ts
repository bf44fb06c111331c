/**
 * A pod's volumes made ready before its units are written, as the kubelet's volume manager
 * mounts them before the pod's containers start: hostPath volumes checked against
 * `--allowed-host-paths` and their `type`, volume files (ConfigMaps, Secrets, projected,
 * emptyDir) written, claims' volumes set up (their fsGroup ownership given once).
 *
 * @module
 */
import type { PodPlan } from "../plan/mod.ts";
import type { PodFailure } from "../status/mod.ts";
import { applyVolumes } from "../volumes/apply.ts";
import { ClaimMountError, setUpClaimMounts } from "../volumes/claims.ts";
import { checkHostPaths, type HostPathCheckOptions, HostPathError } from "../volumes/host_paths.ts";

/** Options of {@link mountVolumes}. */
export interface MountVolumesOptions extends HostPathCheckOptions {
  /** Give the claims' volumes the pod's fsGroup (the first time only). */
  ownership: boolean;
  /** Names the pod in messages (`namespace/name`). */
  podKey: string;
}

/**
 * Makes the pod's volumes ready.
 *
 * @return undefined when they are, else the `FailedMount` failure saying what is wrong.
 */
export async function mountVolumes(
  plan: PodPlan,
  options: MountVolumesOptions,
): Promise<PodFailure | undefined> {
  try {
    await checkHostPaths(plan.hostPathChecks, options);
    await applyVolumes(plan.volumes);
    await setUpClaimMounts(plan.claimMounts, { ownership: options.ownership });
    return undefined;
  } catch (e) {
    const message = e instanceof HostPathError || e instanceof ClaimMountError
      ? `${options.podKey}: ${e.message}`
      : `writing volumes of ${options.podKey} failed: ${(e as Error).message}`;
    return { reason: "FailedMount", message };
  }
}
