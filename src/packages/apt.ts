/**
 * Makes a container's image available on a Debian or Ubuntu node: installs packages with apt
 * (one dpkg operation at a time, waiting for locks others hold, never starting the package's
 * own daemons), downloads and verifies `https://` .deb files, checks absolute paths, and
 * returns the package's own service unit as the template for the container's unit.
 *
 * All commands go through a {@link CommandRunner} and all files are reached below `root`, so
 * the same code runs against this host or against a test systemd's root (`/proc/<pid>/root`).
 *
 * @module
 */
import { createHash } from "node:crypto";
import type { PackageInfo } from "../plan/types.ts";
import {
  aptErrorSummary,
  classifyAptFailure,
  decideInstall,
  mainService,
  type PackageStatus,
  parseControlFields,
  parsePackageStatus,
  type PullPolicy,
  type ShippedUnit,
  shippedUnits,
  stateDirCandidates,
  STATUS_FORMAT,
} from "./dpkg.ts";
import { type Image, imagePullError, parseImage, withoutEpoch } from "./image.ts";
import { PodError } from "../pod_error.ts";
import { DEFAULT_IMAGE_POLICY, type ImagePolicy, imagePolicyProblem } from "./policy.ts";
import { isDebianLike, type OsRelease, readOsRelease } from "./os.ts";
import { type CommandOutput, runCommand } from "../process/mod.ts";

export type { PullPolicy } from "./dpkg.ts";

/** Outcome of one command. */
export type CommandResult = Pick<CommandOutput, "code" | "stdout" | "stderr">;

/** Runs `argv` to completion with extra environment variables. */
export type CommandRunner = (
  argv: string[],
  opts?: { env?: Record<string, string> },
) => Promise<CommandResult>;

/** What {@link PackageManager.ensure} found or did. */
export interface EnsuredImage extends PackageInfo {
  /** Installed version of the package. */
  version?: string;
  /** The package's own state directories (`/var/lib/<x>`, `/var/log/<x>`, ...). */
  stateDirs: string[];
  /** True when this call installed the package (it was not installed before). */
  installedByUs: boolean;
  /** The package's units that are masked because systemk installed the package. */
  maskedUnits: string[];
  /** Time the whole call took, for the `Pulled` event. */
  durationMs: number;
}

/** Options of {@link PackageManager}. */
export interface PackageManagerOptions {
  /** Masks units at runtime (systemd `MaskUnitFiles` with runtime=true). */
  maskUnits(names: string[]): Promise<void>;
  /**
   * Stops units; called for the units of a package systemk just installed, after masking them,
   * in case a maintainer script started its daemon despite policy-rc.d (a direct
   * `systemctl start`, or an administrator's policy-rc.d allowing starts). Optional.
   */
  stopUnits?(names: string[]): Promise<void>;
  /** Runs apt, dpkg and dpkg-deb; default: on this host ({@link runCommand}). */
  run?: CommandRunner;
  /** Where the node's file system is seen from this process; default `""` (this host). */
  root?: string;
  /** Downloads `https://` .deb images; default: the global `fetch`. */
  fetch?: typeof fetch;
  /** How long to wait for dpkg/apt locks held by others; default 5 min. */
  lockTimeoutMs?: number;
  /** Pause between attempts while a lock is held; default 2 s. */
  lockRetryMs?: number;
  /** Least time between two `apt-get update` runs; default 10 min. */
  updateIntervalMs?: number;
  /** Largest .deb downloaded; default 512 MiB. */
  maxDownloadBytes?: number;
  /** Time limit of one download; default 5 min. */
  downloadTimeoutMs?: number;
  /** Where downloads are kept until installed (on the node); default `/var/cache/systemk/debs`. */
  downloadDir?: string;
  /**
   * Where systemk notes the packages it installed (on the node), so their units are masked
   * again after a reboot cleared the runtime masks; default `/var/lib/systemk/packages`.
   */
  stateDir?: string;
  /** Which images may be installed; default {@link DEFAULT_IMAGE_POLICY}. */
  policy?: ImagePolicy;
}

/** Environment of every apt/dpkg run: no prompts, messages in the C locale (they are parsed). */
const APT_ENV = {
  DEBIAN_FRONTEND: "noninteractive",
  LC_ALL: "C",
  APT_LISTCHANGES_FRONTEND: "none",
  // Ubuntu's needrestart would otherwise restart unrelated services after an install.
  NEEDRESTART_SUSPEND: "1",
};

const POLICY_RC_D = "/usr/sbin/policy-rc.d";
const POLICY_MARKER = "# systemk: deny service starts during a package install";
const POLICY_SCRIPT = `#!/bin/sh\n${POLICY_MARKER}; removed when the install ends.\nexit 101\n`;

/**
 * Resolves images to installed packages. One instance per node: it serializes every dpkg/apt
 * operation and shares concurrent requests for the same image.
 *
 * @example Usage
 * ```ts ignore
 * const packages = new PackageManager({ maskUnits: (names) => systemd.maskRuntime(names) });
 * const info = await packages.ensure("uptimed", "IfNotPresent");
 * console.log(info.unitName, info.installedByUs, info.durationMs);
 * ```
 */
export class PackageManager {
  #opts: Required<Omit<PackageManagerOptions, "maskUnits" | "stopUnits">> & PackageManagerOptions;
  #queue: Promise<unknown> = Promise.resolve();
  #inflight = new Map<string, Promise<EnsuredImage>>();
  #os?: Promise<OsRelease>;
  #lastUpdate?: number;
  #masked = new Set<string>();

  constructor(opts: PackageManagerOptions) {
    this.#opts = {
      run: runCommand,
      root: "",
      fetch: globalThis.fetch,
      lockTimeoutMs: 300_000,
      lockRetryMs: 2_000,
      updateIntervalMs: 600_000,
      maxDownloadBytes: 512 * 1024 * 1024,
      downloadTimeoutMs: 300_000,
      downloadDir: "/var/cache/systemk/debs",
      stateDir: "/var/lib/systemk/packages",
      policy: DEFAULT_IMAGE_POLICY,
      ...opts,
    };
  }

  /**
   * Makes `image` available according to `pullPolicy` and describes it. Concurrent calls with
   * the same image and policy share one result.
   *
   * @throws {PodError} `InvalidImageName` for an image systemk cannot read,
   * `ErrImageNeverPull` when policy `Never` finds it missing, `ErrImagePull` for an image the
   * node's {@link ImagePolicy} refuses (naming the flag) and for everything else that failed
   * (with the useful part of apt's output).
   */
  ensure(image: string, pullPolicy: PullPolicy = "IfNotPresent"): Promise<EnsuredImage> {
    const key = `${pullPolicy} ${image}`;
    const running = this.#inflight.get(key);
    if (running) return running;
    const started = performance.now();
    const result = (async () => {
      const parsed = parseImage(image);
      const refused = imagePolicyProblem(parsed, this.#opts.policy, { text: image });
      if (refused) throw imagePullError("ErrImagePull", refused);
      const info = await this.#resolve(parsed, pullPolicy, image);
      return { ...info, durationMs: performance.now() - started };
    })().finally(() => this.#inflight.delete(key));
    this.#inflight.set(key, result);
    return result;
  }

  async #resolve(
    image: Image,
    policy: PullPolicy,
    text: string,
  ): Promise<Omit<EnsuredImage, "durationMs">> {
    if (image.kind === "path") {
      await this.#checkExecutable(image.path);
      return { stateDirs: [], installedByUs: false, maskedUnits: [] };
    }
    await this.#requireApt();
    const before = image.kind === "apt"
      ? await this.#exclusive(() =>
        this.#installIfNeeded({
          image: text,
          name: image.name,
          policy,
          version: image.version,
          sameVersion: (installed, wanted) => installed === wanted,
          target: image.version ? `${image.name}=${image.version}` : image.name,
          pinned: image.version !== undefined,
        })
      )
      : await this.#installDeb(image, policy, text);
    const after = await this.#status(image.name);
    if (!after.installed) {
      throw imagePullError("ErrImagePull", `"${image.name}" is not installed after apt-get`);
    }
    return await this.#describe(image.name, after.version!, !before.installed);
  }

  /** Runs `fn` after every dpkg/apt operation queued before it. */
  #exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const next = this.#queue.then(fn, fn);
    this.#queue = next.catch(() => {});
    return next;
  }

  async #requireApt(): Promise<void> {
    this.#os ??= readOsRelease(this.#opts.root);
    const os = await this.#os;
    if (!isDebianLike(os)) {
      throw imagePullError(
        "ErrImagePull",
        `package images need apt and dpkg, but this node runs ${os.prettyName} (ID=${os.id}); ` +
          "use the absolute path of an executable as the image",
      );
    }
  }

  async #checkExecutable(path: string): Promise<void> {
    let info: Deno.FileInfo;
    try {
      info = await Deno.stat(this.#opts.root + path);
    } catch (e) {
      if (!(e instanceof Deno.errors.NotFound)) throw e;
      throw imagePullError("ErrImagePull", `"${path}" does not exist on this node`);
    }
    if (!info.isFile) {
      throw imagePullError("ErrImagePull", `"${path}" is not a regular file`);
    }
    const mode = info.mode ?? 0;
    if ((mode & 0o111) === 0) {
      const octal = (mode & 0o7777).toString(8).padStart(4, "0");
      throw imagePullError("ErrImagePull", `"${path}" is not executable (mode ${octal})`);
    }
  }

  async #status(name: string): Promise<PackageStatus> {
    const res = await this.#opts.run(["dpkg-query", "-W", `-f=${STATUS_FORMAT}`, name], {
      env: APT_ENV,
    });
    return res.code === 0 ? parsePackageStatus(res.stdout) : { installed: false };
  }

  /**
   * Whether `request` needs apt to run, given the package's status.
   *
   * @throws {PodError} `ErrImageNeverPull` when policy `Never` finds it missing.
   */
  #needsInstall(request: InstallRequest, status: PackageStatus): boolean {
    const { image, name, policy, version, sameVersion } = request;
    const decision = decideInstall(policy, status, { wantedVersion: version, sameVersion });
    if (decision === "missing") {
      const has = status.installed ? ` (installed: ${name} ${status.version})` : "";
      throw imagePullError(
        "ErrImageNeverPull",
        `image "${image}" is not installed${has} and imagePullPolicy is Never`,
      );
    }
    return decision === "install";
  }

  /**
   * Decides again and installs, inside the queue (an install queued before may have changed
   * the status). Returns the status before.
   */
  async #installIfNeeded(request: InstallRequest): Promise<PackageStatus> {
    const before = await this.#status(request.name);
    if (this.#needsInstall(request, before)) {
      if (request.policy === "Always" && this.#updateDue()) await this.#update();
      await this.#aptInstall(request.target, request.pinned);
    }
    return before;
  }

  async #aptInstall(target: string, pinned: boolean): Promise<void> {
    // Without --allow-downgrades apt refuses to downgrade anything (the pinned package or a
    // dependency); --no-remove: an image never removes installed packages.
    const argv = [
      "apt-get",
      "install",
      "-y",
      "--no-install-recommends",
      "--no-remove",
      ...(pinned && this.#opts.policy.allowDowngrades ? ["--allow-downgrades"] : []),
      "-o",
      "Dpkg::Options::=--force-confdef",
      "-o",
      "Dpkg::Options::=--force-confold",
      target,
    ];
    let res = await this.#withPolicyRcd(() => this.#apt(argv));
    if (
      res.code !== 0 && classifyAptFailure(output(res)) === "unknown-package" && this.#updateDue()
    ) {
      await this.#update();
      res = await this.#withPolicyRcd(() => this.#apt(argv));
    }
    if (res.code !== 0) {
      const failure = classifyAptFailure(output(res));
      const why = failure === "downgrade"
        ? " (it would downgrade installed packages, which this node refuses: " +
          "--allow-package-downgrades)"
        : failure === "removal"
        ? " (it would remove installed packages, which systemk never does)"
        : "";
      throw imagePullError(
        "ErrImagePull",
        `apt-get install ${target} failed${why}: ${aptErrorSummary(output(res))}`,
      );
    }
  }

  #updateDue(): boolean {
    return this.#lastUpdate === undefined ||
      Date.now() - this.#lastUpdate >= this.#opts.updateIntervalMs;
  }

  async #update(): Promise<void> {
    this.#lastUpdate = Date.now();
    const res = await this.#apt(["apt-get", "update"]);
    if (res.code !== 0) {
      throw imagePullError(
        "ErrImagePull",
        `apt-get update failed: ${aptErrorSummary(output(res))}`,
      );
    }
  }

  /**
   * Runs an apt-get command; while another process holds the dpkg or apt locks, apt waits
   * (`DPkg::Lock::Timeout`) and this retries, until the lock timeout has passed in total.
   */
  async #apt(argv: string[]): Promise<CommandResult> {
    const deadline = Date.now() + this.#opts.lockTimeoutMs;
    for (;;) {
      const seconds = Math.max(1, Math.ceil((deadline - Date.now()) / 1000));
      const withLock = [argv[0], "-o", `DPkg::Lock::Timeout=${seconds}`, ...argv.slice(1)];
      const res = await this.#opts.run(withLock, { env: APT_ENV });
      if (res.code === 0 || classifyAptFailure(output(res)) !== "lock") return res;
      if (Date.now() + this.#opts.lockRetryMs > deadline) return res;
      await new Promise((resolve) => setTimeout(resolve, this.#opts.lockRetryMs));
    }
  }

  /**
   * Runs `fn` with a policy-rc.d that denies every service start, so maintainer scripts
   * (invoke-rc.d, deb-systemd-invoke) do not start the package's daemon. An administrator's
   * own policy-rc.d is left in charge and untouched; ours is removed afterwards, and one left
   * behind by a crash is recognized by its marker line and removed the next time.
   */
  async #withPolicyRcd<T>(fn: () => Promise<T>): Promise<T> {
    const path = this.#opts.root + POLICY_RC_D;
    const existing = await Deno.readTextFile(path).catch((e) => {
      if (e instanceof Deno.errors.NotFound) return undefined;
      throw e;
    });
    const ours = existing === undefined || existing.includes(POLICY_MARKER);
    if (existing === undefined) {
      await Deno.writeTextFile(path, POLICY_SCRIPT, { createNew: true, mode: 0o755 });
      await Deno.chmod(path, 0o755);
    }
    try {
      return await fn();
    } finally {
      if (ours) await Deno.remove(path).catch(ignoreNotFound);
    }
  }

  async #installDeb(
    image: Extract<Image, { kind: "deb" }>,
    policy: PullPolicy,
    text: string,
  ): Promise<PackageStatus> {
    const request: InstallRequest = {
      image: text,
      name: image.name,
      policy,
      version: image.version,
      // File names of pool .debs leave the epoch out.
      sameVersion: (installed, wanted) => withoutEpoch(installed) === withoutEpoch(wanted),
      target: "",
      pinned: true,
    };
    const status = await this.#status(image.name);
    if (!this.#needsInstall(request, status)) return status;
    // Downloads run outside the queue, so a slow server does not hold up other installs; each
    // gets its own directory, removed whatever happens.
    const dir = `${this.#opts.downloadDir}/${crypto.randomUUID()}`;
    try {
      const target = await this.#download(image, dir);
      return await this.#exclusive(() => this.#installIfNeeded({ ...request, target }));
    } finally {
      await Deno.remove(this.#opts.root + dir, { recursive: true }).catch(ignoreNotFound);
    }
  }

  /**
   * Downloads a .deb into `dir` (a path on the node), verifies size, digest and package name,
   * and returns the file's path on the node.
   */
  async #download(image: Extract<Image, { kind: "deb" }>, dir: string): Promise<string> {
    const fail = (why: string) =>
      imagePullError("ErrImagePull", `downloading ${image.url} failed: ${why}`);
    const { root, maxDownloadBytes } = this.#opts;
    const path = `${dir}/${decodeURIComponent(new URL(image.url).pathname.split("/").pop()!)}`;
    await Deno.mkdir(root + dir, { recursive: true, mode: 0o755 });

    let res: Response;
    try {
      res = await this.#opts.fetch(image.url, {
        signal: AbortSignal.timeout(this.#opts.downloadTimeoutMs),
      });
    } catch (e) {
      throw fail(e instanceof Error ? e.message : String(e));
    }
    if (!res.ok || !res.body) {
      await res.body?.cancel();
      throw fail(`HTTP ${res.status} ${res.statusText}`.trim());
    }
    if (Number(res.headers.get("content-length") ?? 0) > maxDownloadBytes) {
      await res.body.cancel();
      throw fail(`larger than the limit of ${maxDownloadBytes} bytes`);
    }
    const hash = createHash("sha256");
    const file = await Deno.open(root + path, { createNew: true, write: true, mode: 0o644 });
    const writer = file.writable.getWriter();
    let size = 0;
    try {
      for await (const chunk of res.body) {
        size += chunk.byteLength;
        if (size > maxDownloadBytes) {
          throw fail(`larger than the limit of ${maxDownloadBytes} bytes`);
        }
        hash.update(chunk);
        await writer.write(chunk);
      }
      await writer.close();
    } catch (e) {
      await writer.abort().catch(() => {});
      throw e instanceof PodError ? e : fail(e instanceof Error ? e.message : String(e));
    }
    const digest = hash.digest("hex");
    if (image.sha256 && digest !== image.sha256) {
      throw fail(`sha256 digest mismatch: the image asks for ${image.sha256}, got ${digest}`);
    }
    const fields = await this.#opts.run(["dpkg-deb", "-f", path, "Package", "Version"], {
      env: APT_ENV,
    });
    const name = parseControlFields(fields.stdout).get("Package");
    if (fields.code !== 0 || name === undefined) {
      throw fail(`not a Debian package: ${aptErrorSummary(output(fields))}`);
    }
    if (name !== image.name) {
      throw fail(`the file holds package "${name}", but its file name says "${image.name}"`);
    }
    return path;
  }

  /**
   * The unit named after the package where packages put units, whichever installed it:
   * `nginx.service` comes with `nginx-common`, a dependency of `nginx`.
   */
  async #namedUnitElsewhere(name: string): Promise<ShippedUnit | undefined> {
    for (const dir of PACKAGE_UNIT_DIRS) {
      const path = `${dir}/${name}.service`;
      const info = await Deno.stat(this.#opts.root + path).catch(() => undefined);
      if (info?.isFile) return { name: `${name}.service`, path };
    }
    return undefined;
  }

  /** The package's units, main service unit text and state directories; masks if ours. */
  async #describe(
    name: string,
    version: string,
    installedByUs: boolean,
  ): Promise<Omit<EnsuredImage, "durationMs">> {
    const { root, run, stateDir } = this.#opts;
    const list = await run(["dpkg-query", "-L", name], { env: APT_ENV });
    const units = shippedUnits(list.stdout);
    const main = mainService(name, units, { elsewhere: await this.#namedUnitElsewhere(name) });
    const stateDirs: string[] = [];
    for (const dir of stateDirCandidates(list.stdout)) {
      if ((await Deno.stat(root + dir).catch(() => undefined))?.isDirectory) stateDirs.push(dir);
    }
    const marker = `${root}${stateDir}/${name}`;
    if (installedByUs) {
      await Deno.mkdir(`${root}${stateDir}`, { recursive: true });
      await Deno.writeTextFile(marker, `${version}\n`);
    }
    const ours = installedByUs || await Deno.stat(marker).then(() => true, () => false);
    // A template from a dependency (nginx.service of nginx-common) is masked with the rest.
    const maskedUnits = ours
      ? [...new Set([...units.map((u) => u.name), ...(main ? [main.name] : [])])]
      : [];
    const toMask = maskedUnits.filter((u) => !this.#masked.has(u));
    if (toMask.length > 0) {
      await this.#opts.maskUnits(toMask);
      for (const u of toMask) this.#masked.add(u);
    }
    if (installedByUs && maskedUnits.length > 0) await this.#opts.stopUnits?.(maskedUnits);
    return {
      name,
      version,
      ...(main ? { unitName: main.name, unitText: await Deno.readTextFile(root + main.path) } : {}),
      shippedUnits: units.map((u) => u.name),
      stateDirs,
      installedByUs,
      maskedUnits,
    };
  }
}

/** Where packages install their units (systemd's search path for vendor units). */
const PACKAGE_UNIT_DIRS = ["/lib/systemd/system", "/usr/lib/systemd/system"];

/** One install as the queue runs it. */
interface InstallRequest {
  /** The image as the pod spec gives it, for messages. */
  image: string;
  name: string;
  policy: PullPolicy;
  /** The version the image asks for, if any. */
  version?: string;
  sameVersion(installed: string, wanted: string): boolean;
  /** What `apt-get install` is given: `name`, `name=version` or a .deb path on the node. */
  target: string;
  /** An exact version is asked for: a downgrade, if the policy allows it. */
  pinned: boolean;
}

function ignoreNotFound(e: unknown): void {
  if (!(e instanceof Deno.errors.NotFound)) throw e;
}

function output(res: CommandResult): string {
  return `${res.stdout}\n${res.stderr}`;
}
