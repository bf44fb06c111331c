/**
 * The one error type for what a pod's author must fix or wait for, as the kubelet reports it:
 * a Kubernetes reason (`CreateContainerConfigError`, `ErrImagePull`, `InvalidImageName`, ...)
 * for the container's waiting state or the pod's status, a message that says what is wrong
 * and what to do, and the container at fault when there is one. The planner (`src/plan`) and
 * the image resolver (`src/packages`) throw it; the pod worker shows it. A leaf module, so
 * every layer may import it.
 *
 * @module
 */

/** Options of {@link PodError}. */
export interface PodErrorOptions {
  /** The container at fault; none for the pod as a whole (or not yet known). */
  container?: string;
}

/**
 * A problem with a pod that its status and an Event show.
 *
 * @example Usage
 * ```ts
 * import assert from "node:assert/strict";
 * const e = new PodError("ErrImagePull", 'image "nginx": no such package', { container: "web" });
 * assert.deepEqual([e.reason, e.container], ["ErrImagePull", "web"]);
 * ```
 */
export class PodError extends Error {
  /** Kubernetes-style reason for the status and Event, as the kubelet spells it. */
  readonly reason: string;
  readonly container?: string;

  constructor(reason: string, message: string, options: PodErrorOptions = {}) {
    super(message);
    this.name = "PodError";
    this.reason = reason;
    this.container = options.container;
  }
}
