/**
 * What every planning step shares: the input, the pod's identity, and the one way of raising
 * a PlanError so that every message names the pod, the container and what to do.
 *
 * @module
 */
import type { V1Pod, V1PodSpec } from "@kubernetes/client-node";
import { PlanError, type PlanInput } from "./types.ts";

/** Default root of systemk's runtime state. */
export const DEFAULT_STATE_DIR = "/run/systemk";

/** Kubernetes reason for configuration the user must fix (the kubelet's term). */
export const CONFIG_ERROR = "CreateContainerConfigError";

/** The input plus the pod's identity, validated once. */
export interface PodContext {
  input: PlanInput;
  pod: V1Pod;
  spec: V1PodSpec;
  namespace: string;
  name: string;
  uid: string;
  /** Root of systemk's runtime state (every pod's directory is below it). */
  stateDir: string;
  /** `<stateDir>/<pod-uid>`. */
  podDir: string;
}

/** `pod <ns>/<name>` (and `, container <c>`) for messages. */
export function where(ctx: PodContext, container?: string): string {
  const pod = `pod ${ctx.namespace}/${ctx.name}`;
  return container === undefined ? pod : `${pod}, container ${container}`;
}

/**
 * A PlanError whose message reads `pod ns/name, container c: <what>; <todo>`.
 *
 * @param what what is wrong, naming the field or object.
 * @param todo what the user should do about it.
 */
export function fail(
  ctx: PodContext,
  container: string | undefined,
  what: string,
  todo: string,
  reason: string = CONFIG_ERROR,
): PlanError {
  return new PlanError(reason, `${where(ctx, container)}: ${what}; ${todo}`, container);
}
