/**
 * The runtime's image resolver over the package manager: installs through it, and reports the
 * way the kubelet reports image pulls (`Pulling`, `Pulled`, `Failed`, `BackOff` events;
 * `ErrImagePull`, then `ImagePullBackOff` while the retry waits).
 *
 * @module
 */
import type { V1Container, V1Pod } from "@kubernetes/client-node";
import type { PackageInfo } from "../plan/types.ts";
import { ImagePullTracker, type PullEvent } from "../packages/backoff.ts";
import { aptInstallDuration } from "../metrics/mod.ts";
import { imagePullError, parseImage } from "../packages/image.ts";
import { PodError } from "../pod_error.ts";
import type { PackageManager, PullPolicy } from "../packages/apt.ts";
import type { EventSink, ImageResolver } from "./ports.ts";

/** An ImageResolver installing packages with `packages` and reporting to `events`. */
export function packageImageResolver(packages: PackageManager, events: EventSink): ImageResolver {
  const tracker = new ImagePullTracker();
  return {
    async resolve(pod: V1Pod, container: V1Container): Promise<PackageInfo> {
      const image = container.image ?? "";
      const policy = (container.imagePullPolicy ?? "IfNotPresent") as PullPolicy;
      // Binaries on disk are not pulled: no events, as for a kubelet image already present.
      const quiet = isPath(image);
      const report = (event: PullEvent) =>
        events.record(pod, { ...event, container: container.name });
      const decision = tracker.begin(image, Date.now());
      if (decision.action === "wait") {
        report(decision.event);
        throw imagePullError(
          "ImagePullBackOff",
          `Back-off installing "${image}": ${tracker.lastError(image)}`,
        );
      }
      if (!quiet) report(decision.event);
      const t0 = performance.now();
      try {
        const ensured = await packages.ensure(image, policy);
        if (ensured.installedByUs) {
          aptInstallDuration.observe({ result: "success" }, ensured.durationMs / 1000);
        }
        const pulled = tracker.succeeded(image, {
          installed: ensured.installedByUs,
          durationMs: ensured.durationMs,
        });
        if (!quiet) report(pulled);
        return {
          name: ensured.name,
          unitText: ensured.unitText,
          unitName: ensured.unitName,
          shippedUnits: ensured.shippedUnits,
        };
      } catch (e) {
        if (!(e instanceof PodError)) throw e;
        if (!quiet) {
          aptInstallDuration.observe({ result: "failure" }, (performance.now() - t0) / 1000);
        }
        report(tracker.failed(image, { now: Date.now(), message: e.message }));
        throw e;
      }
    },
  };
}

function isPath(image: string): boolean {
  try {
    return parseImage(image).kind === "path";
  } catch {
    return false;
  }
}
