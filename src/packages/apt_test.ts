/**
 * PackageManager against a scripted dpkg/apt (a fake node root in a temp directory). These
 * tests pin the orchestration: pull policies, the queue, sharing of concurrent requests, lock
 * retries, the `apt-get update` retry, policy-rc.d handling and downloads. The same code runs
 * against real apt in tests/packages/.
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { type CommandResult, PackageManager, type PackageManagerOptions } from "./apt.ts";
import type { ImagePullReason } from "./image.ts";
import { PodError } from "../pod_error.ts";
import { DEFAULT_IMAGE_POLICY, type ImagePolicy } from "./policy.ts";

/** A package in the fake archive: file path → content, `null` for a directory. */
interface FakePackage {
  version: string;
  files: Record<string, string | null>;
}

const UPTIMED: FakePackage = {
  version: "1:0.4.6-4",
  files: {
    "/lib/systemd/system/uptimed.service": "[Service]\nExecStart=/usr/sbin/uptimed -f\n",
    "/usr/sbin/uptimed": "#!/bin/sh\n",
    "/var/spool/uptimed": null,
  },
};

class FakeNode {
  calls: string[][] = [];
  installed = new Map<string, string>();
  archive = new Map<string, FakePackage>([["uptimed", UPTIMED]]);
  /** Packages apt only knows after `apt-get update`. */
  afterUpdate = new Map<string, FakePackage>();
  /** How many more apt-get runs fail as if another process held the dpkg lock. */
  lockedRuns = 0;
  /** When set, every install fails with this apt message. */
  failInstall?: string;
  /** policy-rc.d as each install saw it. */
  policyAtInstall: (string | undefined)[] = [];
  active = 0;
  maxActive = 0;

  constructor(readonly root: string) {}

  run = async (argv: string[]): Promise<CommandResult> => {
    this.calls.push(argv);
    const [cmd, ...args] = argv;
    if (cmd === "dpkg-query" && args[0] === "-W") {
      const v = this.installed.get(args[2]);
      return v
        ? ok(`install ok installed ${v}`)
        : fail(1, `dpkg-query: no packages found matching ${args[2]}`);
    }
    if (cmd === "dpkg-query" && args[0] === "-L") {
      const pkg = this.#installedPackage(args[1]);
      return ok(["/.", ...Object.keys(pkg?.files ?? {})].join("\n"));
    }
    if (cmd === "dpkg-deb") {
      return ok(await Deno.readTextFile(this.root + args[1]));
    }
    assert.equal(cmd, "apt-get");
    assert.match(args[1], /^DPkg::Lock::Timeout=\d+$/);
    this.active++;
    this.maxActive = Math.max(this.maxActive, this.active);
    try {
      await new Promise((r) => setTimeout(r, 5));
      if (this.lockedRuns > 0) {
        this.lockedRuns--;
        return fail(
          100,
          "E: Could not get lock /var/lib/dpkg/lock-frontend. It is held by process 7 (apt-get)",
        );
      }
      if (args[2] === "update") {
        for (const [name, pkg] of this.afterUpdate) this.archive.set(name, pkg);
        this.afterUpdate.clear();
        return ok("Reading package lists... Done");
      }
      this.policyAtInstall.push(
        await Deno.readTextFile(`${this.root}/usr/sbin/policy-rc.d`).catch(() => undefined),
      );
      return await this.#install(args.at(-1)!);
    } finally {
      this.active--;
    }
  };

  #installedPackage(name: string): FakePackage | undefined {
    return this.archive.get(name);
  }

  /** Installs a package the way an administrator did before systemk, in `version`. */
  async preinstall(name: string, version: string): Promise<void> {
    await this.#unpack(this.archive.get(name)!);
    this.installed.set(name, version);
  }

  async #unpack(pkg: FakePackage): Promise<void> {
    for (const [path, content] of Object.entries(pkg.files)) {
      await Deno.mkdir(this.root + (content === null ? path : path.replace(/\/[^/]*$/, "")), {
        recursive: true,
      });
      if (content !== null) await Deno.writeTextFile(this.root + path, content);
    }
  }

  async #install(target: string): Promise<CommandResult> {
    if (this.failInstall) return fail(100, this.failInstall);
    let name: string;
    let version: string | undefined;
    if (target.endsWith(".deb")) {
      const control = await Deno.readTextFile(this.root + target);
      name = /Package: (.*)/.exec(control)![1];
      version = /Version: (.*)/.exec(control)![1];
      this.archive.set(name, { version, files: {} });
    } else {
      [name, version] = target.split("=");
    }
    const pkg = this.archive.get(name);
    if (!pkg) return fail(100, `Reading package lists...\nE: Unable to locate package ${name}`);
    if (version && version !== pkg.version) {
      return fail(100, `E: Version '${version}' for '${name}' was not found`);
    }
    await this.#unpack(pkg);
    this.installed.set(name, pkg.version);
    return ok(`Setting up ${name} (${pkg.version}) ...`);
  }

  installs(): string[] {
    return this.calls.filter((c) => c[0] === "apt-get" && c[3] === "install").map((c) => c.at(-1)!);
  }

  updates(): number {
    return this.calls.filter((c) => c[0] === "apt-get" && c[3] === "update").length;
  }
}

function ok(stdout: string): CommandResult {
  return { code: 0, stdout, stderr: "" };
}

function fail(code: number, stderr: string): CommandResult {
  return { code, stdout: "", stderr };
}

async function withNode(
  fn: (node: FakeNode, pm: PackageManager, masked: string[][]) => Promise<void>,
  opts: Partial<PackageManagerOptions> & { osRelease?: string } = {},
) {
  const root = await Deno.makeTempDir({ prefix: "systemk-apt-" });
  try {
    await Deno.mkdir(`${root}/etc`);
    await Deno.mkdir(`${root}/usr/sbin`, { recursive: true });
    await Deno.writeTextFile(`${root}/etc/os-release`, opts.osRelease ?? "ID=debian\n");
    const node = new FakeNode(root);
    const masked: string[][] = [];
    const pm = new PackageManager({
      root,
      run: node.run,
      lockRetryMs: 1,
      maskUnits: (names) => {
        masked.push(names);
        return Promise.resolve();
      },
      ...opts,
    });
    await fn(node, pm, masked);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
}

async function rejectsWith(p: Promise<unknown>, reason: ImagePullReason, message: RegExp) {
  await assert.rejects(p, (e: unknown) => {
    assert.ok(e instanceof PodError, String(e));
    assert.equal(e.reason, reason);
    assert.match(e.message, message);
    return true;
  });
}

Deno.test("IfNotPresent installs a missing package under a deny-all policy-rc.d and masks its units", async () => {
  const stopped: string[][] = [];
  const stopUnits = (names: string[]) => Promise.resolve(void stopped.push(names));
  await withNode(async (node, pm, masked) => {
    const info = await pm.ensure("uptimed");
    assert.equal(info.name, "uptimed");
    assert.equal(info.version, "1:0.4.6-4");
    assert.equal(info.unitName, "uptimed.service");
    assert.equal(info.unitText, UPTIMED.files["/lib/systemd/system/uptimed.service"]);
    assert.deepEqual(info.stateDirs, ["/var/spool/uptimed"]);
    assert.equal(info.installedByUs, true);
    assert.deepEqual(info.maskedUnits, ["uptimed.service"]);
    assert.deepEqual(masked, [["uptimed.service"]]);
    assert.deepEqual(node.installs(), ["uptimed"]);
    const install = node.calls.find((c) => c[3] === "install")!;
    for (const flag of ["-y", "--no-install-recommends", "Dpkg::Options::=--force-confold"]) {
      assert.ok(install.includes(flag), flag);
    }
    assert.match(node.policyAtInstall[0]!, /exit 101/);
    await assert.rejects(Deno.stat(`${node.root}/usr/sbin/policy-rc.d`), Deno.errors.NotFound);
    assert.equal(
      await Deno.readTextFile(`${node.root}/var/lib/systemk/packages/uptimed`),
      "1:0.4.6-4\n",
    );

    assert.deepEqual(stopped, [["uptimed.service"]], "stopped in case a script started it");

    const again = await pm.ensure("uptimed");
    assert.equal(stopped.length, 1, "not stopped when systemk did not just install it");
    assert.equal(again.installedByUs, false);
    assert.deepEqual(again.maskedUnits, ["uptimed.service"], "still ours, still masked");
    assert.deepEqual(masked, [["uptimed.service"]], "masked once per process");
    assert.deepEqual(node.installs(), ["uptimed"]);
  }, { stopUnits });
});

Deno.test("a package installed before systemk keeps its units; one systemk installed is masked again after a restart", async () => {
  await withNode(async (node, pm, masked) => {
    await node.preinstall("uptimed", UPTIMED.version);
    const info = await pm.ensure("uptimed");
    assert.equal(info.installedByUs, false);
    assert.deepEqual(info.maskedUnits, []);
    assert.equal(masked.length, 0);
    assert.deepEqual(node.installs(), []);
    assert.equal(info.unitName, "uptimed.service", "the template is still returned");

    await Deno.mkdir(`${node.root}/var/lib/systemk/packages`, { recursive: true });
    await Deno.writeTextFile(`${node.root}/var/lib/systemk/packages/uptimed`, "x\n");
    const restarted = new PackageManager({
      root: node.root,
      run: node.run,
      maskUnits: (names) => Promise.resolve(void masked.push(names)),
    });
    assert.deepEqual((await restarted.ensure("uptimed")).maskedUnits, ["uptimed.service"]);
    assert.deepEqual(masked, [["uptimed.service"]]);
  });
});

Deno.test("pinned versions: installed only when the installed version differs", async () => {
  await withNode(async (node, pm) => {
    await node.preinstall("uptimed", "1:0.4.5-1");
    const info = await pm.ensure("uptimed=1:0.4.6-4");
    assert.equal(info.version, "1:0.4.6-4");
    assert.equal(info.installedByUs, false, "it was installed before, in another version");
    assert.deepEqual(node.installs(), ["uptimed=1:0.4.6-4"]);
    // apt refuses any downgrade (the pinned package or a dependency) and every removal.
    const install = node.calls.find((c) => c[3] === "install")!;
    assert.ok(!install.includes("--allow-downgrades") && install.includes("--no-remove"));
    await pm.ensure("uptimed=1:0.4.6-4");
    assert.deepEqual(node.installs(), ["uptimed=1:0.4.6-4"]);
  });
  await withNode(async (node, pm) => {
    await pm.ensure("uptimed=1:0.4.6-4");
    assert.ok(node.calls.find((c) => c[3] === "install")!.includes("--allow-downgrades"));
  }, { policy: { ...DEFAULT_IMAGE_POLICY, allowDowngrades: true } });
});

Deno.test("a downgrade or removal apt refuses names the policy in the error", async () => {
  await withNode(async (node, pm) => {
    node.archive.set("old", { version: "1-1", files: {} });
    node.failInstall = "E: Packages were downgraded and -y was used without --allow-downgrades.";
    await rejectsWith(
      pm.ensure("old=1-1"),
      "ErrImagePull",
      /apt-get install old=1-1 failed \(it would downgrade installed packages, which this node refuses: --allow-package-downgrades\): E: Packages were downgraded/,
    );
    node.failInstall = "E: Packages need to be removed but remove is disabled.";
    await rejectsWith(
      pm.ensure("old=1-1"),
      "ErrImagePull",
      /\(it would remove installed packages, which systemk never does\)/,
    );
  });
});

Deno.test("images the policy refuses: no download, no apt run, the flag named", async () => {
  const served: string[] = [];
  const fetch = ((input: string | URL | Request) => {
    served.push(String(input));
    return Promise.resolve(new Response("x"));
  }) as typeof globalThis.fetch;
  const url = "https://debs.example/pool/hello-svc_0.1-1_all.deb";
  await withNode(async (node, pm) => {
    await rejectsWith(pm.ensure(url), "ErrImagePull", /--allowed-image-url-prefixes/);
    await rejectsWith(pm.ensure(`${url}#sha256=${"a".repeat(64)}`), "ErrImagePull", /from no URL/);
    assert.deepEqual([served, node.calls], [[], []]);
  }, { fetch });
  await withNode(async (node, pm) => {
    await rejectsWith(pm.ensure(url), "ErrImagePull", /--require-image-digest/);
    await rejectsWith(pm.ensure("uptimed"), "ErrImagePull", /--allowed-packages=hello-svc/);
    assert.deepEqual([served, node.calls], [[], []]);
  }, {
    fetch,
    policy: {
      ...DEFAULT_IMAGE_POLICY,
      allowedURLPrefixes: ["https://debs.example/pool/"],
      allowedPackages: ["hello-svc"],
    },
  });
});

Deno.test("Always installs (and refreshes the lists, rate-limited) even when present", async () => {
  await withNode(async (node, pm) => {
    await node.preinstall("uptimed", UPTIMED.version);
    await pm.ensure("uptimed", "Always");
    await pm.ensure("uptimed", "Always");
    assert.deepEqual(node.installs(), ["uptimed", "uptimed"]);
    assert.equal(node.updates(), 1);
  });
});

Deno.test("Never: present is fine, missing fails with ErrImageNeverPull and runs no apt", async () => {
  await withNode(async (node, pm) => {
    await rejectsWith(pm.ensure("uptimed", "Never"), "ErrImageNeverPull", /not installed.*Never/);
    await node.preinstall("uptimed", "1:0.4.5-1");
    await rejectsWith(
      pm.ensure("uptimed=1:0.4.6-4", "Never"),
      "ErrImageNeverPull",
      /installed: uptimed 1:0\.4\.5-1/,
    );
    assert.equal((await pm.ensure("uptimed", "Never")).version, "1:0.4.5-1");
    assert.equal(node.calls.filter((c) => c[0] === "apt-get").length, 0);
  });
});

Deno.test("unknown to apt: one apt-get update and a retry, then a clear error; rate-limited", async () => {
  await withNode(async (node, pm) => {
    node.afterUpdate.set("hello", { version: "1.0", files: {} });
    assert.equal((await pm.ensure("hello")).version, "1.0");
    assert.equal(node.updates(), 1);
    assert.deepEqual(node.installs(), ["hello", "hello"]);

    await rejectsWith(
      pm.ensure("no-such-package"),
      "ErrImagePull",
      /apt-get install no-such-package failed: E: Unable to locate package no-such-package$/,
    );
    assert.equal(node.updates(), 1, "the lists were refreshed less than 10 minutes ago");
  });
  await withNode(async (node, pm) => {
    await rejectsWith(pm.ensure("no-such-package"), "ErrImagePull", /Unable to locate/);
    assert.equal(node.updates(), 1);
    assert.deepEqual(node.installs(), ["no-such-package", "no-such-package"]);
  });
});

Deno.test("a held lock is waited for; a lock held past the timeout fails with apt's message", async () => {
  await withNode(async (node, pm) => {
    node.lockedRuns = 3;
    assert.equal((await pm.ensure("uptimed")).installedByUs, true);
    assert.equal(node.calls.filter((c) => c[0] === "apt-get").length, 4);
  });
  await withNode(async (node, pm) => {
    node.lockedRuns = 1_000_000;
    await rejectsWith(pm.ensure("uptimed"), "ErrImagePull", /Could not get lock/);
    await assert.rejects(Deno.stat(`${node.root}/usr/sbin/policy-rc.d`), Deno.errors.NotFound);
  }, { lockTimeoutMs: 50, lockRetryMs: 10 });
});

Deno.test("concurrent requests: the same image is installed once, different ones one at a time", async () => {
  await withNode(async (node, pm) => {
    node.archive.set("bb", { version: "1", files: {} });
    node.archive.set("cc", { version: "2", files: {} });
    const results = await Promise.all([
      pm.ensure("uptimed"),
      pm.ensure("uptimed"),
      pm.ensure("uptimed"),
      pm.ensure("bb"),
      pm.ensure("cc"),
    ]);
    assert.deepEqual(node.installs().sort(), ["bb", "cc", "uptimed"]);
    assert.equal(results[0], results[1]);
    assert.equal(node.maxActive, 1, "never two apt-get runs at once");
  });
});

Deno.test("policy-rc.d: an administrator's stays untouched, a stale one of ours is removed", async () => {
  await withNode(async (node, pm) => {
    const admin = "#!/bin/sh\nexit 0\n";
    await Deno.writeTextFile(`${node.root}/usr/sbin/policy-rc.d`, admin);
    await pm.ensure("uptimed");
    assert.equal(node.policyAtInstall[0], admin);
    assert.equal(await Deno.readTextFile(`${node.root}/usr/sbin/policy-rc.d`), admin);
  });
  await withNode(async (node, pm) => {
    const stale =
      "#!/bin/sh\n# systemk: deny service starts during a package install; x\nexit 101\n";
    await Deno.writeTextFile(`${node.root}/usr/sbin/policy-rc.d`, stale);
    await pm.ensure("uptimed");
    await assert.rejects(Deno.stat(`${node.root}/usr/sbin/policy-rc.d`), Deno.errors.NotFound);
  });
});

Deno.test("non-Debian nodes: absolute paths work, package images fail clearly", async () => {
  await withNode(async (node, pm) => {
    await Deno.writeTextFile(`${node.root}/usr/sbin/tool`, "#!/bin/sh\n", { mode: 0o755 });
    await Deno.chmod(`${node.root}/usr/sbin/tool`, 0o755);
    const info = await pm.ensure("/usr/sbin/tool");
    assert.equal(info.name, undefined);
    assert.equal(info.installedByUs, false);
    await rejectsWith(
      pm.ensure("uptimed"),
      "ErrImagePull",
      /Fedora Linux 40 \(ID=fedora\).*absolute path/,
    );
    assert.equal(node.calls.length, 0);
  }, { osRelease: 'ID=fedora\nPRETTY_NAME="Fedora Linux 40"\n' });
});

Deno.test("absolute paths must exist, be regular files and executable", async () => {
  await withNode(async (node, pm) => {
    await Deno.writeTextFile(`${node.root}/usr/sbin/data`, "x");
    await Deno.chmod(`${node.root}/usr/sbin/data`, 0o644);
    await rejectsWith(
      pm.ensure("/usr/sbin/nope"),
      "ErrImagePull",
      /"\/usr\/sbin\/nope" does not exist/,
    );
    await rejectsWith(pm.ensure("/usr/sbin/data"), "ErrImagePull", /not executable \(mode 0644\)/);
    await rejectsWith(pm.ensure("/usr/sbin"), "ErrImagePull", /not a regular file/);
    await rejectsWith(pm.ensure("nginx:1.25"), "InvalidImageName", /container image/);
  });
});

/** A node that trusts the test's server, digest or not (the policy is tested on its own). */
const TRUSTED: ImagePolicy = {
  ...DEFAULT_IMAGE_POLICY,
  allowedURLPrefixes: ["https://debs.example/pool/"],
  requireDigest: false,
};

Deno.test("https .deb: downloaded, verified, installed; bad digest, name or status fail clearly", async () => {
  const control = "Package: hello-svc\nVersion: 0.1-1\n";
  const body = new TextEncoder().encode(control);
  const digest = createHash("sha256").update(body).digest("hex");
  const served: string[] = [];
  const fakeFetch = (status = 200, content = body) =>
    ((input: string | URL | Request) => {
      served.push(String(input));
      return Promise.resolve(new Response(content, { status }));
    }) as typeof fetch;
  const url = "https://debs.example/pool/hello-svc_0.1-1_all.deb";

  await withNode(async (node, pm) => {
    const info = await pm.ensure(`${url}#sha256=${digest}`);
    assert.equal(info.name, "hello-svc");
    assert.equal(info.version, "0.1-1");
    assert.deepEqual(served, [url], "the digest fragment is not sent");
    const target = node.installs()[0];
    assert.match(target, /^\/var\/cache\/systemk\/debs\/[0-9a-f-]+\/hello-svc_0\.1-1_all\.deb$/);
    assert.deepEqual(
      [...Deno.readDirSync(`${node.root}/var/cache/systemk/debs`)],
      [],
      "cleaned up",
    );
    await pm.ensure(url);
    assert.equal(served.length, 1, "IfNotPresent with that version installed: no download");
    await rejectsWith(
      pm.ensure(url.replace("0.1-1", "0.3-1"), "Never"),
      "ErrImageNeverPull",
      /installed: hello-svc 0\.1-1/,
    );
    assert.equal(served.length, 1, "Never: no download");
    await rejectsWith(
      pm.ensure(`${url.replace("0.1-1", "0.2-1")}#sha256=${"0".repeat(64)}`),
      "ErrImagePull",
      new RegExp(`sha256 digest mismatch: the image asks for 0{64}, got ${digest}`),
    );
    assert.deepEqual(node.installs().length, 1);
    assert.deepEqual([...Deno.readDirSync(`${node.root}/var/cache/systemk/debs`)], []);
  }, { fetch: fakeFetch(), policy: TRUSTED });

  await withNode(async (node, pm) => {
    await rejectsWith(
      pm.ensure(url.replace("hello-svc_", "other_")),
      "ErrImagePull",
      /holds package "hello-svc", but its file name says "other"/,
    );
    assert.deepEqual(node.installs(), []);
  }, { fetch: fakeFetch(), policy: TRUSTED });

  await withNode(async (_node, pm) => {
    await rejectsWith(pm.ensure(url), "ErrImagePull", /failed: HTTP 404/);
  }, { fetch: fakeFetch(404), policy: TRUSTED });

  await withNode(async (_node, pm) => {
    await rejectsWith(pm.ensure(url), "ErrImagePull", /larger than the limit of 10 bytes/);
  }, { fetch: fakeFetch(), maxDownloadBytes: 10, policy: TRUSTED });
});
