/**
 * `systemk plan <pod.yaml|->`: the dry run. Prints exactly the unit files and volume files a
 * Pod manifest becomes on this node, or the error, with a non-zero exit code on error.
 * ConfigMaps, Secrets, PersistentVolumeClaims and PersistentVolumes the pod references may
 * follow as extra YAML documents; a PersistentVolume's nodeAffinity is matched against the labels
 * `kubernetes.io/hostname` (this machine's hostname) and `--node-labels`.
 *
 * @module
 */
import { formatPlan, planPod } from "../plan/mod.ts";
import { parseManifests } from "../plan/manifest.ts";
import { PodError } from "../pod_error.ts";
import { localNodeFacts } from "../node/local.ts";
import { type Config, localNodeOptions, securityPolicy } from "./flags.ts";

/** Runs the plan command; resolves with the exit code. */
export async function planCommand(config: Config, args: string[]): Promise<number> {
  if (args.length !== 1) {
    console.error("usage: systemk plan <pod.yaml|->");
    return 2;
  }
  const text = args[0] === "-"
    ? await new Response(Deno.stdin.readable).text()
    : await Deno.readTextFile(args[0]);
  let manifests;
  try {
    manifests = parseManifests(text);
  } catch (e) {
    console.error(`systemk plan: ${args[0]}: ${(e as Error).message}`);
    return 1;
  }
  if (manifests.pods.length === 0) {
    console.error(`systemk plan: ${args[0]} holds no Pod`);
    return 1;
  }
  const node = localNodeFacts(localNodeOptions(config));
  let failed = 0;
  for (const pod of manifests.pods) {
    pod.metadata ??= {};
    pod.metadata.namespace ??= "default";
    // A dry run has no API server to assign a UID; a fixed one keeps the output reproducible.
    pod.metadata.uid ??= "00000000-0000-0000-0000-000000000000";
    const byName = <T extends { metadata?: { name?: string; namespace?: string } }>(list: T[]) =>
      new Map(
        list.filter((o) => (o.metadata?.namespace ?? "default") === pod.metadata!.namespace)
          .map((o) => [o.metadata!.name!, o]),
      );
    try {
      const plan = planPod({
        pod,
        configMaps: byName(manifests.configMaps),
        secrets: byName(manifests.secrets),
        persistentVolumeClaims: byName(manifests.persistentVolumeClaims ?? []),
        persistentVolumes: new Map(
          (manifests.persistentVolumes ?? []).map((v) => [v.metadata!.name!, v]),
        ),
        nodeLabels: { "kubernetes.io/hostname": node.hostname, ...config.nodeLabels },
        node,
        packages: new Map(),
        stateDir: config.stateDir,
        allowedHostPaths: config.allowedHostPaths,
        policy: securityPolicy(config),
      });
      console.log(formatPlan(plan));
    } catch (e) {
      if (!(e instanceof PodError)) throw e;
      console.error(`systemk plan: ${e.reason}: ${e.message}`);
      failed++;
    }
  }
  return failed ? 1 : 0;
}
