/**
 * Fixtures for the package tests: a PackageManager wired to a booted test systemd, tiny .deb
 * files built with dpkg-deb, and a loopback HTTPS server with a CA of the test's own.
 *
 * @module
 */
import assert from "node:assert/strict";
import {
  type CommandResult,
  PackageManager,
  type PackageManagerOptions,
} from "../../src/packages/apt.ts";
import type { TestSystemd } from "../harness/systemd.ts";
import { DEFAULT_IMAGE_POLICY, type ImagePolicy } from "../../src/packages/policy.ts";

/** One command run by the manager, with when it started and ended (performance.now()). */
export interface RecordedRun {
  argv: string[];
  start: number;
  end: number;
  result: CommandResult;
}

/**
 * A PackageManager running its commands inside `sd` (through nsenter) and reaching its files
 * through `/proc/<pid>/root`; masks with `systemctl mask --runtime` inside. Every command is
 * recorded in `runs`.
 */
export function managerIn(
  sd: TestSystemd,
  opts: Partial<PackageManagerOptions> = {},
): { pm: PackageManager; runs: RecordedRun[]; masked: string[][] } {
  const runs: RecordedRun[] = [];
  const masked: string[][] = [];
  const pm = new PackageManager({
    root: sd.root,
    run: async (argv, o) => {
      const start = performance.now();
      const result = await sd.exec(argv, { env: o?.env });
      runs.push({ argv, start, end: performance.now(), result });
      return result;
    },
    maskUnits: async (names) => {
      masked.push(names);
      const res = await sd.exec(["systemctl", "mask", "--runtime", ...names]);
      assert.equal(res.code, 0, res.stderr);
    },
    stopUnits: async (names) => {
      const res = await sd.exec(["systemctl", "stop", ...names]);
      assert.equal(res.code, 0, res.stderr);
    },
    ...opts,
  });
  return { pm, runs, masked };
}

/** apt-get runs among `runs` doing `verb` (`install`, `update`). */
export function aptRuns(runs: RecordedRun[], verb: string): RecordedRun[] {
  return runs.filter((r) => r.argv[0] === "apt-get" && r.argv.includes(verb));
}

/** Runs a shell command inside `sd`, failing the test when it fails. */
export async function sh(sd: TestSystemd, script: string): Promise<string> {
  const res = await sd.exec(["sh", "-c", script]);
  assert.equal(res.code, 0, `${script}: ${res.stdout}${res.stderr}`);
  return res.stdout.trim();
}

/** Exit status and output of `systemctl <verb> <unit>` inside `sd`. */
export async function systemctl(sd: TestSystemd, verb: string, unit: string): Promise<string> {
  return (await sd.exec(["systemctl", verb, unit])).stdout.trim();
}

/**
 * Builds `<name>_<version>_all.deb` in `dir`: a script `/usr/bin/<name>` that sleeps, a
 * `/lib/systemd/system/<name>.service` running it (or the given `[Service]` lines), and a
 * postinst that enables and starts the service the way debhelper's does (through
 * deb-systemd-invoke, which asks policy-rc.d), or, with `start: "systemctl"`, the way careless
 * packages do (policy-rc.d never asked); with `postinst`, a line of the test's own runs first.
 */
export async function buildDeb(
  dir: string,
  name: string,
  version: string,
  opts: {
    start?: "deb-systemd-invoke" | "systemctl";
    service?: string;
    /** A line the postinst runs first (as root, as every maintainer script). */
    postinst?: string;
  } = {},
): Promise<string> {
  const tree = `${dir}/${name}-${version}`;
  await Deno.mkdir(`${tree}/DEBIAN`, { recursive: true });
  await Deno.mkdir(`${tree}/usr/bin`, { recursive: true });
  await Deno.mkdir(`${tree}/lib/systemd/system`, { recursive: true });
  await Deno.mkdir(`${tree}/var/lib/${name}`, { recursive: true });
  await Deno.writeTextFile(
    `${tree}/DEBIAN/control`,
    `Package: ${name}\nVersion: ${version}\nArchitecture: all\nMaintainer: systemk tests <t@example.org>\n` +
      `Depends: coreutils\nDescription: systemk test service\n`,
  );
  const postinst = `#!/bin/sh
set -e
${opts.postinst ?? ""}
if [ "$1" = configure ]; then
  deb-systemd-helper enable ${name}.service >/dev/null || true
  if [ -d /run/systemd/system ]; then
    systemctl --system daemon-reload >/dev/null || true
    ${
    opts.start === "systemctl" ? "systemctl" : "deb-systemd-invoke"
  } start ${name}.service >/dev/null || true
  fi
fi
`;
  await Deno.writeTextFile(`${tree}/DEBIAN/postinst`, postinst, { mode: 0o755 });
  await Deno.chmod(`${tree}/DEBIAN/postinst`, 0o755);
  await Deno.writeTextFile(`${tree}/usr/bin/${name}`, "#!/bin/sh\nexec sleep infinity\n");
  await Deno.chmod(`${tree}/usr/bin/${name}`, 0o755);
  await Deno.writeTextFile(
    `${tree}/lib/systemd/system/${name}.service`,
    `[Unit]\nDescription=${name}\n\n[Service]\n` +
      (opts.service ?? `ExecStart=/usr/bin/${name}\nStateDirectory=${name}\n`) +
      `\n[Install]\nWantedBy=multi-user.target\n`,
  );
  const deb = `${dir}/${name}_${version}_all.deb`;
  const out = await new Deno.Command("dpkg-deb", {
    args: ["--root-owner-group", "--build", tree, deb],
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
  return deb;
}

/** Hex SHA-256 of a file. */
export async function sha256File(path: string): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", await Deno.readFile(path));
  return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, "0")).join("");
}

/** A loopback HTTPS server for the files of one directory, with a CA trusted by `fetch`. */
export interface DebServer {
  /** `https://127.0.0.1:<port>` */
  origin: string;
  /** A fetch that trusts the server's CA (and nothing else is changed). */
  fetch: typeof fetch;
  /** Paths requested so far. */
  requests: string[];
  /**
   * An image policy trusting this server, digest or not: for tests of what an install does
   * (what the policy refuses is tested with the default one).
   */
  policy: ImagePolicy;
  close(): Promise<void>;
}

/**
 * Serves `dir` over HTTPS on 127.0.0.1 with a certificate from a throw-away CA made with
 * openssl, so the https-only rule of image URLs is tested as it is, with no test-only bypass.
 */
export async function serveDebs(dir: string): Promise<DebServer> {
  const ssl = async (...args: string[]) => {
    const out = await new Deno.Command("openssl", {
      args,
      cwd: dir,
      stdout: "piped",
      stderr: "piped",
    })
      .output();
    assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
  };
  const ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
  await ssl(
    "req",
    "-x509",
    ...ec,
    "-keyout",
    "ca.key",
    "-out",
    "ca.pem",
    "-days",
    "1",
    "-subj",
    "/CN=systemk test CA",
  );
  await ssl("req", ...ec, "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=127.0.0.1");
  await Deno.writeTextFile(
    `${dir}/ext.cnf`,
    "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n",
  );
  await ssl(
    "x509",
    "-req",
    "-in",
    "server.csr",
    "-CA",
    "ca.pem",
    "-CAkey",
    "ca.key",
    "-CAcreateserial",
    "-out",
    "server.pem",
    "-days",
    "1",
    "-extfile",
    "ext.cnf",
  );
  const requests: string[] = [];
  const server = Deno.serve({
    hostname: "127.0.0.1",
    port: 0,
    cert: await Deno.readTextFile(`${dir}/server.pem`),
    key: await Deno.readTextFile(`${dir}/server.key`),
    onListen: () => {},
  }, async (req) => {
    const path = new URL(req.url).pathname;
    requests.push(path);
    const file = await Deno.readFile(`${dir}${path}`).catch(() => undefined);
    return file ? new Response(file) : new Response("not found", { status: 404 });
  });
  const client = Deno.createHttpClient({ caCerts: [await Deno.readTextFile(`${dir}/ca.pem`)] });
  return {
    origin: `https://127.0.0.1:${server.addr.port}`,
    fetch:
      ((input: string | URL | Request, init?: RequestInit) =>
        fetch(input, { ...init, client })) as typeof fetch,
    requests,
    policy: {
      ...DEFAULT_IMAGE_POLICY,
      allowedURLPrefixes: [`https://127.0.0.1:${server.addr.port}/`],
      requireDigest: false,
    },
    close: async () => {
      client.close();
      await server.shutdown();
    },
  };
}
