/**
 * The node's image policy. Installing an image runs its package's maintainer scripts as root,
 * so which images a pod may have installed is the node administrator's decision, with the
 * kubelet-style flags `--allowed-image-url-prefixes`, `--require-image-digest`,
 * `--allow-package-downgrades` and `--allowed-packages`:
 *
 * - packages from the node's apt sources (`name`, `name=version`) are what the administrator
 *   configured apt with: allowed, unless `allowedPackages` leaves their name out;
 * - `https://` .deb files come from anyone's server: refused unless an allowed URL prefix
 *   covers them (none by default), and then only with a `#sha256=` digest unless the
 *   administrator relaxes that;
 * - a version pin never downgrades an installed package (apt would, with
 *   `--allow-downgrades`), unless allowed (enforced where apt runs, src/packages/apt.ts).
 *
 * @module
 */
import type { Image } from "./image.ts";

/** What images the node installs. */
export interface ImagePolicy {
  /** `https://` URL prefixes .deb images may come from (`--allowed-image-url-prefixes`). */
  allowedURLPrefixes: readonly string[];
  /** `https://` images must carry `#sha256=` (`--require-image-digest`). */
  requireDigest: boolean;
  /** A pinned version may downgrade installed packages (`--allow-package-downgrades`). */
  allowDowngrades: boolean;
  /** The only package names images may install; undefined = any (`--allowed-packages`). */
  allowedPackages?: readonly string[];
}

/** The flags' defaults: apt packages of any name, no `https://` image, no downgrade. */
export const DEFAULT_IMAGE_POLICY: ImagePolicy = {
  allowedURLPrefixes: [],
  requireDigest: true,
  allowDowngrades: false,
};

/**
 * Whether `prefix` covers `url`: same origin, and the path is the prefix's or below it (whole
 * segments, so `https://h/pool` covers `https://h/pool/x.deb` but not `https://h/pool2/x.deb`).
 *
 * @example Usage
 * ```ts
 * import assert from "node:assert/strict";
 * assert.equal(urlCovered("https://h/pool/a_1_all.deb", "https://h/pool/"), true);
 * assert.equal(urlCovered("https://h.evil/pool/a_1_all.deb", "https://h"), false);
 * ```
 */
export function urlCovered(url: string, prefix: string): boolean {
  const u = new URL(url);
  const p = new URL(prefix);
  if (u.origin !== p.origin) return false;
  const base = p.pathname;
  return base.endsWith("/")
    ? u.pathname.startsWith(base)
    : u.pathname === base || u.pathname.startsWith(`${base}/`);
}

/** Options of {@link imagePolicyProblem}. */
export interface ImagePolicyProblemOptions {
  /** The image as the pod's `image` field writes it, for the message. */
  text: string;
}

/**
 * Why `policy` refuses the parsed `image` (written `text` in the pod), naming the flag that
 * would allow it; undefined when it may be installed. Paths install nothing and always pass.
 *
 * @example Usage
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseImage } from "./image.ts";
 * const deb = "https://h/pool/hello_1_all.deb";
 * assert.match(
 *   imagePolicyProblem(parseImage(deb), DEFAULT_IMAGE_POLICY, { text: deb })!,
 *   /--allowed-image-url-prefixes/,
 * );
 * ```
 */
export function imagePolicyProblem(
  image: Image,
  policy: ImagePolicy,
  options: ImagePolicyProblemOptions,
): string | undefined {
  const { text } = options;
  if (image.kind === "path") return undefined;
  const refused = `image "${text}" is refused by node policy`;
  if (image.kind === "deb") {
    if (!policy.allowedURLPrefixes.some((p) => urlCovered(image.url, p))) {
      const allowed = policy.allowedURLPrefixes.length > 0
        ? `only from ${policy.allowedURLPrefixes.join(", ")}`
        : "from no URL";
      return `${refused}: this node installs https:// images ${allowed} ` +
        "(--allowed-image-url-prefixes), as their maintainer scripts run as root; use a " +
        "package of the node's apt sources, or ask the node's administrator";
    }
    if (policy.requireDigest && image.sha256 === undefined) {
      return `${refused}: it has no #sha256=<digest>, which this node requires of https:// ` +
        "images (--require-image-digest); append #sha256= and the file's SHA-256";
    }
  }
  if (policy.allowedPackages && !policy.allowedPackages.includes(image.name)) {
    return `${refused}: package ${image.name} is not among the packages this node installs ` +
      `(--allowed-packages=${policy.allowedPackages.join(",")})`;
  }
  return undefined;
}
