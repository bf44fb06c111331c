/**
 * What a container's `image` means in systemk: a Debian package, a `.deb` URL, or a binary
 * already on disk. Pure parsing and validation; nothing here touches the host.
 *
 * Image forms:
 * - `uptimed`, `uptimed=1:0.4.6-4`: a Debian package from the host's apt sources, optionally
 *   pinned to an exact version.
 * - `https://example.org/pool/coredns_1.11.1_amd64.deb`: a package file to download; the package
 *   name is the text before the first `_` of the file name. Append `#sha256=<64 hex digits>` to
 *   have the download verified (the fragment is never sent to the server).
 * - `/usr/bin/sleep`: an executable already on the host; nothing is installed.
 *
 * @module
 */
import { PodError } from "../pod_error.ts";

/** Kubernetes-style reasons a container waits with when its image cannot be had. */
export type ImagePullReason =
  | "ErrImagePull"
  | "ErrImageNeverPull"
  | "InvalidImageName"
  | "ImagePullBackOff";

/**
 * The {@link PodError} of an image that could not be had: `reason` goes into the container's
 * waiting state.
 */
export function imagePullError(reason: ImagePullReason, message: string): PodError {
  return new PodError(reason, message);
}

/** A parsed `image`. */
export type Image =
  | { kind: "apt"; name: string; version?: string }
  | {
    kind: "deb";
    /** The URL to download, without the digest fragment. */
    url: string;
    /** Package name: the file name up to its first `_`. */
    name: string;
    /** Version from the file name (pool file names usually leave the epoch out). */
    version: string;
    /** Lower-case hex SHA-256 the downloaded file must have, when given. */
    sha256?: string;
  }
  | { kind: "path"; path: string };

const PACKAGE_NAME = /^[a-z0-9][a-z0-9+.-]+$/;
const DIGEST_FRAGMENT = /^sha256=([0-9a-fA-F]{64})$/;
const ARCHITECTURE = /^[a-z0-9-]+$/;

const FORMS = "systemk images are Debian packages (`name` or `name=version`), " +
  "`https://…/<name>_<version>_<arch>.deb[#sha256=<hex>]` URLs, or absolute paths of executables";

/**
 * Whether `name` is a Debian package name apt can be given safely: Debian policy syntax
 * (`[a-z0-9][a-z0-9+.-]+`), and not ending in `-`, which `apt-get install` reads as
 * "remove this package".
 *
 * @example Usage
 * ```ts
 * import assert from "node:assert/strict";
 * assert.equal(isPackageName("libstdc++6"), true);
 * assert.equal(isPackageName("-o=APT::x"), false);
 * ```
 */
export function isPackageName(name: string): boolean {
  return PACKAGE_NAME.test(name) && !name.endsWith("-");
}

/**
 * Whether `version` follows Debian policy: `[epoch:]upstream[-revision]`, epoch digits,
 * upstream starting with a digit, `-` in upstream only when a revision follows, `:` only when
 * an epoch is given.
 *
 * @example Usage
 * ```ts
 * import assert from "node:assert/strict";
 * assert.equal(isPackageVersion("1:0.4.6-4"), true);
 * assert.equal(isPackageVersion("latest"), false);
 * ```
 */
export function isPackageVersion(version: string): boolean {
  const epochMatch = /^(\d+):(.*)$/.exec(version);
  const rest = epochMatch ? epochMatch[2] : version;
  const dash = rest.lastIndexOf("-");
  const upstream = dash < 0 ? rest : rest.slice(0, dash);
  const revision = dash < 0 ? undefined : rest.slice(dash + 1);
  if (revision !== undefined && !/^[A-Za-z0-9+.~]+$/.test(revision)) return false;
  const extra = (revision !== undefined ? "\\-" : "") + (epochMatch ? ":" : "");
  const upstreamChars = new RegExp(`^[0-9][A-Za-z0-9.+~${extra}]*$`);
  return upstreamChars.test(upstream);
}

/** Strips a leading `epoch:` — .deb file names and some tools print versions without it. */
export function withoutEpoch(version: string): string {
  return version.replace(/^\d+:/, "");
}

/**
 * Parses a container's `image` into what systemk has to do with it.
 *
 * @throws {PodError} with reason `InvalidImageName` for anything else, with a message
 * that names the accepted forms (container image references like `nginx:1.25` included).
 * @example Usage
 * ```ts
 * import assert from "node:assert/strict";
 * assert.deepEqual(parseImage("uptimed=1:0.4.6-4"), {
 *   kind: "apt",
 *   name: "uptimed",
 *   version: "1:0.4.6-4",
 * });
 * ```
 */
export function parseImage(image: string): Image {
  const invalid = (why: string) =>
    imagePullError("InvalidImageName", `invalid image "${image}": ${why}; ${FORMS}`);
  if (image === "") throw invalid("it is empty");
  if (image.startsWith("/")) return parsePath(image, invalid);
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(image)) return parseUrl(image, invalid);

  const eq = image.indexOf("=");
  const name = eq < 0 ? image : image.slice(0, eq);
  const version = eq < 0 ? undefined : image.slice(eq + 1);
  if (isPackageName(name) && version === undefined) return { kind: "apt", name };
  if (isPackageName(name) && version !== undefined && isPackageVersion(version)) {
    return { kind: "apt", name, version };
  }
  if (isPackageName(name) && version !== undefined) {
    throw invalid(`"${version}" is not a Debian version (e.g. 1.2.3-1 or 1:0.4.6-4)`);
  }
  if (looksLikeContainerImage(image)) {
    throw invalid(
      "this looks like a container image reference; systemk runs host packages, not containers",
    );
  }
  throw invalid(`"${name}" is not a Debian package name`);
}

/** Container-registry habits: `repo:tag`, `registry/repo`, `repo@sha256:…`, upper case. */
function looksLikeContainerImage(image: string): boolean {
  return /^[A-Za-z0-9]/.test(image) && /[:/@A-Z_]/.test(image);
}

function parsePath(image: string, invalid: (why: string) => PodError): Image {
  // A path ends up in ExecStart and in messages; control characters there only do harm.
  // deno-lint-ignore no-control-regex
  if (/[\x00-\x1f\x7f]/.test(image)) throw invalid("the path contains control characters");
  if (image.split("/").some((part) => part === "..")) {
    throw invalid("the path must not contain `..`");
  }
  if (image.endsWith("/")) throw invalid("the path names a directory, not an executable");
  return { kind: "path", path: image };
}

function parseUrl(image: string, invalid: (why: string) => PodError): Image {
  let url: URL;
  try {
    url = new URL(image);
  } catch {
    throw invalid("it is not a valid URL");
  }
  if (url.protocol !== "https:") throw invalid("only https:// URLs are downloaded");
  // Credentials would end up in pod status and events, which many users can read.
  if (url.username || url.password) throw invalid("the URL must not carry credentials");
  let sha256: string | undefined;
  if (url.hash) {
    const m = DIGEST_FRAGMENT.exec(url.hash.slice(1));
    if (!m) throw invalid("the only URL fragment understood is #sha256=<64 hex digits>");
    sha256 = m[1].toLowerCase();
  }
  url.hash = "";
  let fileName: string;
  try {
    fileName = decodeURIComponent(url.pathname.slice(url.pathname.lastIndexOf("/") + 1));
  } catch {
    throw invalid("the URL's file name is not valid percent-encoding");
  }
  const parts = fileName.endsWith(".deb") ? fileName.slice(0, -4).split("_") : [];
  if (parts.length !== 3) {
    throw invalid("the URL must end in a Debian file name <name>_<version>_<arch>.deb");
  }
  const [name, version, arch] = parts;
  if (!isPackageName(name)) throw invalid(`"${name}" is not a Debian package name`);
  if (!isPackageVersion(version)) throw invalid(`"${version}" is not a Debian version`);
  if (!ARCHITECTURE.test(arch)) throw invalid(`"${arch}" is not a Debian architecture`);
  return { kind: "deb", url: url.href, name, version, ...(sha256 ? { sha256 } : {}) };
}
