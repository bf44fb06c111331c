/**
 * What every planning step shares: the input, the pod's identity, and the one way of raising
 * a PodError so that every message names the pod, the container and what to do.
 *
 * @module
 */
import type { V1Pod, V1PodSpec } from "@kubernetes/client-node";
import type { PlanInput } from "./types.ts";
import { PodError } from "../pod_error.ts";

/** Default root of systemk's runtime state. */
export const DEFAULT_STATE_DIR = "/run/systemk";

/**
 * A pod's directory (its volume files, environment files, subPath pins): `<stateDir>/<uid>`,
 * the state directory defaulting to {@link DEFAULT_STATE_DIR}.
 */
export function podDirectory(stateDir: string | undefined, uid: string): string {
  return `${stateDir ?? DEFAULT_STATE_DIR}/${uid}`;
}

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

/** What {@link fail} reports. */
export interface FailOptions {
  /** The container at fault; none for a pod-level field. */
  container?: string;
  /** What is wrong, naming the field or object. */
  what: string;
  /** What the user should do about it. */
  todo: string;
  /** The Kubernetes reason; default {@link CONFIG_ERROR}. */
  reason?: string;
}

/**
 * A PodError whose message reads `pod ns/name, container c: <what>; <todo>`.
 *
 * @example Usage
 * ```ts ignore
 * throw fail(ctx, { container: "web", what: "image is empty", todo: "set spec.containers[].image" });
 * ```
 */
export function fail(ctx: PodContext, options: FailOptions): PodError {
  const { container, what, todo, reason = CONFIG_ERROR } = options;
  return new PodError(reason, `${where(ctx, container)}: ${what}; ${todo}`, { container });
}
