/**
 * What a pod becomes before anything of it runs: each container's image resolved (package
 * install, path check), the ConfigMaps and Secrets it references fetched, and the plan of its
 * unit and volume files. A pod that cannot be prepared waits with the reason in its status
 * (ErrImagePull, CreateContainerConfigError, ...) and is retried; this is also where a pod is
 * refused before it runs (admission).
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
} from "../plan/mod.ts";
import type { ContainerOverride, PodFailure } from "../status/mod.ts";
import { PodError } from "../pod_error.ts";
import type { ImageResolver, References } from "./ports.ts";

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
  event(type: "Warning", reason: string, message: string, container?: string): void;
}

/** A prepared pod's plan, or why there is none yet (retried later). */
export type Preparation = { plan: PodPlan } | { plan?: undefined; failure?: PodFailure };

/**
 * Resolves images, fetches references and plans the pod.
 *
 * @throws what is not the pod's fault (an API or D-Bus error): the caller's error path.
 */
export async function preparePod(pod: V1Pod, context: PrepareContext): Promise<Preparation> {
  const packages = await resolveImages(pod, context);
  if (!packages) return {};
  try {
    return {
      plan: planPod({
        pod,
        ...(await context.references(pod)),
        node: context.node,
        packages,
        stateDir: context.stateDir ?? DEFAULT_STATE_DIR,
        allowedHostPaths: context.allowedHostPaths,
        policy: context.policy,
      }),
    };
  } catch (e) {
    if (!(e instanceof PodError)) throw e;
    context.event("Warning", "Failed", e.message, e.container);
    if (!e.container) return { failure: { reason: e.reason, message: e.message } };
    context.overrides.set(e.container, { waiting: { reason: e.reason, message: e.message } });
    return {};
  }
}

/** Resolves every container's image; undefined (with overrides set) if any failed. */
async function resolveImages(
  pod: V1Pod,
  context: PrepareContext,
): Promise<Map<string, PackageInfo> | undefined> {
  const { overrides } = context;
  const containers = [...(pod.spec?.initContainers ?? []), ...(pod.spec?.containers ?? [])];
  const packages = new Map<string, PackageInfo>();
  let failed = false;
  await Promise.all(containers.map(async (c: V1Container) => {
    try {
      packages.set(c.name, await context.images.resolve(pod, c));
      if (overrides.get(c.name)?.waiting?.reason !== "CreateContainerConfigError") {
        overrides.delete(c.name);
      }
    } catch (e) {
      if (!(e instanceof PodError)) throw e;
      failed = true;
      // The resolver has told the story in events; the status carries the reason.
      overrides.set(c.name, { waiting: { reason: e.reason, message: e.message } });
    }
  }));
  return failed ? undefined : packages;
}
