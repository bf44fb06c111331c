/**
 * What a pod becomes before anything of it runs: each container's image resolved (package
 * install, path check), the ConfigMaps and Secrets it references fetched, the targets of its
 * ephemeral containers read from systemd, and the plan of its unit and volume files. A pod that
 * cannot be prepared waits with the reason in its status (ErrImagePull,
 * CreateContainerConfigError, ...) and is retried; this is also where a pod is refused before
 * it runs (admission). An ephemeral container that cannot be prepared waits alone: the rest of
 * the pod goes on (the kubelet fails to create that one container).
 *
 * @module
 */
import type { V1Container, V1Pod } from "@kubernetes/client-node";
import {
  DEFAULT_STATE_DIR,
  type NodeFacts,
  type PackageInfo,
  planPod,
  type PodPlan,
  type SecurityPolicy,
  type TargetContainer,
} from "../plan/mod.ts";
import type { ContainerOverride, PodFailure } from "../status/mod.ts";
import { PodError } from "../pod_error.ts";
import { unitName } from "../unit/mod.ts";
import type { ImageResolver, PodEventInfo, References, UnitManager } from "./ports.ts";

/** What preparing a pod needs. */
export interface PrepareContext {
  images: ImageResolver;
  /** Fetches the ConfigMaps and Secrets a pod references. */
  references(pod: V1Pod): Promise<References>;
  node: NodeFacts;
  stateDir?: string;
  allowedHostPaths?: readonly string[];
  /** Who pods may run as; default: the flags' defaults. */
  policy?: SecurityPolicy;
  /** Per container: the waiting reasons shown; set and cleared here. */
  overrides: Map<string, ContainerOverride>;
  /** Records an Event about the pod (or one of its containers). */
  event(event: PodEventInfo): void;
  /** Reads the targets of ephemeral containers. */
  units: Pick<UnitManager, "target">;
  /**
   * Ephemeral containers already created: their unit is written once and never planned again
   * (after a restart of systemk their target may have restarted or gone).
   */
  created: ReadonlySet<string>;
}

/**
 * A prepared pod's plan (`retry`: an ephemeral container is left out for now, to be tried
 * again), or why there is none yet (retried later).
 */
export type Preparation =
  | { plan: PodPlan; retry: boolean }
  | { plan?: undefined; failure?: PodFailure };

/**
 * Resolves images, fetches references and plans the pod.
 *
 * @throws what is not the pod's fault (an API or D-Bus error): the caller's error path.
 */
export async function preparePod(pod: V1Pod, context: PrepareContext): Promise<Preparation> {
  const created = withoutEphemeral(pod, (c) => context.created.has(c));
  const resolved = await resolveImages(created, context);
  if (!resolved) return {};
  const { packages, unresolved } = resolved;
  // Ephemeral containers whose image is not there yet are left out of this plan.
  const planned = withoutEphemeral(created, (c) => unresolved.includes(c));
  try {
    const plan = planPod({
      pod: planned,
      ...(await context.references(pod)),
      node: context.node,
      packages,
      stateDir: context.stateDir ?? DEFAULT_STATE_DIR,
      allowedHostPaths: context.allowedHostPaths,
      policy: context.policy,
      targets: await readTargets(planned, context),
    });
    for (const unit of plan.units) {
      if (unit.kind === "ephemeral") context.overrides.delete(unit.container);
    }
    for (const { container, reason, message } of plan.unplanned) {
      if (context.overrides.get(container)?.waiting?.message !== message) {
        context.event({ type: "Warning", reason: "Failed", message, container });
      }
      context.overrides.set(container, { waiting: { reason, message } });
    }
    return {
      plan,
      retry: unresolved.length > 0 || plan.unplanned.some((u) => u.retry),
    };
  } catch (e) {
    if (!(e instanceof PodError)) throw e;
    // A volume that cannot be mounted is the kubelet's FailedMount event; the rest its Failed.
    const reason = e.reason === "FailedMount" ? e.reason : "Failed";
    context.event({ type: "Warning", reason, message: e.message, container: e.container });
    if (!e.container) return { failure: { reason: e.reason, message: e.message } };
    context.overrides.set(e.container, { waiting: { reason: e.reason, message: e.message } });
    return {};
  }
}

/** `pod` without the ephemeral containers `leftOut` names. */
function withoutEphemeral(pod: V1Pod, leftOut: (container: string) => boolean): V1Pod {
  const ephemeral = pod.spec?.ephemeralContainers;
  if (!ephemeral?.some((c) => leftOut(c.name))) return pod;
  return {
    ...pod,
    spec: { ...pod.spec!, ephemeralContainers: ephemeral.filter((c) => !leftOut(c.name)) },
  };
}

/**
 * The running targets of the pod's ephemeral containers (`targetContainerName`), by ephemeral
 * container name; one whose target does not run is absent.
 */
async function readTargets(
  pod: V1Pod,
  context: PrepareContext,
): Promise<Map<string, TargetContainer>> {
  const targets = new Map<string, TargetContainer>();
  const { namespace = "default", name = "" } = pod.metadata ?? {};
  for (const container of pod.spec?.ephemeralContainers ?? []) {
    const target = container.targetContainerName;
    if (!target || !context.units.target) continue;
    // Reading one container's unit fails that ephemeral container alone (it waits, retried).
    const found = await context.units.target(unitName({ namespace, name }, target))
      .catch(() => undefined);
    if (found) targets.set(container.name, found);
  }
  return targets;
}

/**
 * Resolves every container's image: undefined (with overrides set) if one of an init or app
 * container failed; an ephemeral container's failure only leaves it `unresolved`.
 */
async function resolveImages(
  pod: V1Pod,
  context: PrepareContext,
): Promise<{ packages: Map<string, PackageInfo>; unresolved: string[] } | undefined> {
  const { overrides } = context;
  const ephemeral = (pod.spec?.ephemeralContainers ?? []) as V1Container[];
  const containers = [
    ...(pod.spec?.initContainers ?? []),
    ...(pod.spec?.containers ?? []),
    ...ephemeral,
  ];
  const packages = new Map<string, PackageInfo>();
  const unresolved: string[] = [];
  let failed = false;
  await Promise.all(containers.map(async (c: V1Container) => {
    try {
      packages.set(c.name, await context.images.resolve(pod, c));
      if (overrides.get(c.name)?.waiting?.reason !== "CreateContainerConfigError") {
        overrides.delete(c.name);
      }
    } catch (e) {
      if (!(e instanceof PodError)) throw e;
      if (ephemeral.includes(c)) unresolved.push(c.name);
      else failed = true;
      // The resolver has told the story in events; the status carries the reason.
      overrides.set(c.name, { waiting: { reason: e.reason, message: e.message } });
    }
  }));
  return failed ? undefined : { packages, unresolved };
}
