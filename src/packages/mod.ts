/**
 * Container images as host packages: parsing (`image.ts`), OS detection (`os.ts`), installing
 * with apt/dpkg (`apt.ts`), reading dpkg's output (`dpkg.ts`) and kubelet-like pull reporting
 * (`backoff.ts`).
 *
 * @module
 */
export { type Image, imagePullError, type ImagePullReason, parseImage } from "./image.ts";
export { isDebianLike, type OsRelease, readOsRelease } from "./os.ts";
export {
  type CommandResult,
  type CommandRunner,
  type EnsuredImage,
  PackageManager,
  type PackageManagerOptions,
  type PullPolicy,
} from "./apt.ts";
export {
  ImagePullTracker,
  pullBackoffDelay,
  type PullDecision,
  type PullEvent,
  type PullWaitingReason,
} from "./backoff.ts";
