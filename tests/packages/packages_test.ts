/**
 * PackageManager with real apt, dpkg and systemd: each test boots a test systemd (its overlay
 * keeps the host untouched) and installs real Debian packages from Debian's mirrors, or .deb
 * files the test builds and serves over loopback HTTPS.
 */
import assert from "node:assert/strict";
import type { ImagePullReason } from "../../src/packages/image.ts";
import { PodError } from "../../src/pod_error.ts";
import { DEFAULT_IMAGE_POLICY } from "../../src/packages/policy.ts";
import { packageImageResolver } from "../../src/pods/images.ts";
import { bootTestSystemd, type TestSystemd } from "../harness/systemd.ts";
import { aptRuns, buildDeb, managerIn, serveDebs, sh, sha256File, systemctl } from "./_fixtures.ts";

async function withSystemd(fn: (sd: TestSystemd) => Promise<void>) {
  const sd = await bootTestSystemd();
  try {
    // The host image ships Docker's deny-all policy-rc.d; remove it (in the overlay) so the
    // tests show that systemk's own one keeps daemons from starting.
    await sh(sd, "rm -f /usr/sbin/policy-rc.d");
    await fn(sd);
  } finally {
    await sd.stop();
  }
}

async function rejectsWith(p: Promise<unknown>, reason: ImagePullReason, message: RegExp) {
  await assert.rejects(p, (e: unknown) => {
    assert.ok(e instanceof PodError, String(e));
    assert.equal(e.reason, reason);
    assert.match(e.message, message);
    console.log(`  ${reason}: ${e.message}`);
    return true;
  });
}

/** When `unit` last became active (monotonic µs), 0 if never since boot. */
async function everActive(sd: TestSystemd, unit: string): Promise<number> {
  const out = await sh(sd, `systemctl show -P ActiveEnterTimestampMonotonic ${unit}`);
  return Number(out);
}

function ms(n: number): string {
  return `${(n / 1000).toFixed(2)} s`;
}

Deno.test("uptimed: installed without starting its daemon, its unit masked at runtime, its unit file returned", async () => {
  await withSystemd(async (sd) => {
    const { pm, runs, masked } = managerIn(sd);
    const info = await pm.ensure("uptimed");
    console.log(`  installed uptimed ${info.version} in ${ms(info.durationMs)}`);
    assert.equal(info.installedByUs, true);
    assert.equal(info.name, "uptimed");
    assert.equal(info.version, await sh(sd, "dpkg-query -W -f='${Version}' uptimed"));
    assert.equal(info.unitName, "uptimed.service");
    assert.match(info.unitText!, /^ExecStart=\/usr\/sbin\/uptimed/m);
    assert.equal(info.unitText, await sh(sd, "cat /lib/systemd/system/uptimed.service") + "\n");
    assert.ok(info.stateDirs.includes("/var/spool/uptimed"), info.stateDirs.join());
    assert.deepEqual(masked, [info.maskedUnits]);
    assert.ok(info.maskedUnits.includes("uptimed.service"));

    assert.equal(await systemctl(sd, "is-enabled", "uptimed.service"), "masked-runtime");
    assert.equal(await systemctl(sd, "is-active", "uptimed.service"), "inactive");
    assert.notEqual((await sd.exec(["pgrep", "-x", "uptimed"])).code, 0, "no uptimed process");
    assert.equal(await everActive(sd, "uptimed.service"), 0, "it was never active");
    assert.equal(
      (await sd.exec(["test", "-e", "/usr/sbin/policy-rc.d"])).code,
      1,
      "policy-rc.d removed",
    );
    assert.equal(aptRuns(runs, "install").length, 1);

    const again = await pm.ensure("uptimed");
    console.log(`  uptimed already installed: ensure took ${ms(again.durationMs)}`);
    assert.equal(again.installedByUs, false);
    assert.equal(aptRuns(runs, "install").length, 1, "IfNotPresent: no second install");
    await rejectsWith(pm.ensure("uptimed=0.0.1-1", "Never"), "ErrImageNeverPull", /Never/);
    assert.equal((await pm.ensure("uptimed", "Never")).version, info.version);
  });
});

Deno.test("name=version pin installs exactly that version; an unknown version fails after one update", async () => {
  await withSystemd(async (sd) => {
    const policy = await sh(sd, "LC_ALL=C apt-cache policy uptimed");
    const candidate = /Candidate: (\S+)/.exec(policy)![1];
    const { pm, runs } = managerIn(sd);
    const info = await pm.ensure(`uptimed=${candidate}`);
    console.log(`  installed uptimed=${candidate} in ${ms(info.durationMs)}`);
    assert.equal(info.version, candidate);
    assert.ok(aptRuns(runs, "install")[0].argv.includes(`uptimed=${candidate}`));

    const started = performance.now();
    await rejectsWith(
      pm.ensure("uptimed=9.9.9-9", "Always"),
      "ErrImagePull",
      /E: Version '9\.9\.9-9' for 'uptimed' was not found/,
    );
    console.log(`  unknown version failed after ${ms(performance.now() - started)}`);
    assert.equal(aptRuns(runs, "update").length, 1);
    assert.equal(await sh(sd, "dpkg-query -W -f='${Version}' uptimed"), candidate);
  });
});

Deno.test("a package that does not exist: one apt-get update, a retry, then apt's message", async () => {
  await withSystemd(async (sd) => {
    const { pm, runs } = managerIn(sd);
    const started = performance.now();
    await rejectsWith(
      pm.ensure("systemk-no-such-package"),
      "ErrImagePull",
      /apt-get install systemk-no-such-package failed: E: Unable to locate package systemk-no-such-package/,
    );
    console.log(`  failed after ${ms(performance.now() - started)} (including apt-get update)`);
    assert.equal(aptRuns(runs, "update").length, 1);
    assert.equal(aptRuns(runs, "install").length, 2);
    await rejectsWith(pm.ensure("systemk-no-such-package-2"), "ErrImagePull", /Unable to locate/);
    assert.equal(aptRuns(runs, "update").length, 1, "at most one update per 10 minutes");
    const ok = await pm.ensure("hello");
    console.log(`  and then hello installs fine in ${ms(ok.durationMs)}`);
  });
});

Deno.test("the image resolver reports pulls as the kubelet's events: Pulling, Pulled, Failed, BackOff", async () => {
  await withSystemd(async (sd) => {
    const { pm } = managerIn(sd);
    const recorded: string[] = [];
    const resolver = packageImageResolver(pm, {
      record: (pod, { type, reason, message, container }) =>
        recorded.push(`${pod.metadata?.name}/${container} ${type} ${reason}: ${message}`),
    });
    const pod = { metadata: { name: "p" } };
    const resolve = (image: string) => resolver.resolve(pod, { name: "c", image });
    const rejectsAs = (image: string, reason: string) =>
      assert.rejects(resolve(image), (e) => e instanceof PodError && e.reason === reason);

    await rejectsAs("systemk-no-such-package", "ErrImagePull");
    await rejectsAs("systemk-no-such-package", "ImagePullBackOff");
    assert.equal((await resolve("hello")).name, "hello");
    assert.equal((await resolve("/bin/sh")).name, undefined, "a path is not pulled");
    console.log(recorded.map((r) => `  ${r}`).join("\n"));
    assert.deepEqual(recorded.map((r) => r.replace(/:.*/s, "")), [
      "p/c Normal Pulling",
      "p/c Warning Failed",
      "p/c Normal BackOff", // as the kubelet's image back-off
      "p/c Normal Pulling",
      "p/c Normal Pulled",
    ]);
    assert.match(recorded[1], /Unable to locate package systemk-no-such-package/);
  });
});

Deno.test("https .deb: a wrong digest is refused, the right one installs it without starting it", async () => {
  const dir = await Deno.makeTempDir({ prefix: "systemk-debs-" });
  const server = await serveDebs(dir);
  try {
    const deb = await buildDeb(dir, "systemk-hello", "0.1-1");
    const digest = await sha256File(deb);
    const url = `${server.origin}/systemk-hello_0.1-1_all.deb`;
    await withSystemd(async (sd) => {
      const { pm, runs } = managerIn(sd, { fetch: server.fetch, policy: server.policy });
      await rejectsWith(
        pm.ensure(`${url}#sha256=${"0".repeat(64)}`),
        "ErrImagePull",
        new RegExp(`sha256 digest mismatch: the image asks for 0{64}, got ${digest}`),
      );
      assert.equal(aptRuns(runs, "install").length, 0);
      assert.equal((await sd.exec(["dpkg-query", "-W", "systemk-hello"])).code, 1);

      const info = await pm.ensure(`${url}#sha256=${digest}`);
      console.log(`  downloaded and installed ${url} in ${ms(info.durationMs)}`);
      assert.deepEqual(server.requests, [
        "/systemk-hello_0.1-1_all.deb",
        "/systemk-hello_0.1-1_all.deb",
      ]);
      assert.equal(info.name, "systemk-hello");
      assert.equal(info.version, "0.1-1");
      assert.equal(info.installedByUs, true);
      assert.equal(info.unitName, "systemk-hello.service");
      assert.match(info.unitText!, /^ExecStart=\/usr\/bin\/systemk-hello$/m);
      assert.deepEqual(info.stateDirs, ["/var/lib/systemk-hello"]);
      assert.equal(await systemctl(sd, "is-enabled", "systemk-hello.service"), "masked-runtime");
      assert.equal(await systemctl(sd, "is-active", "systemk-hello.service"), "inactive");
      assert.equal(await sh(sd, "ls -A /var/cache/systemk/debs"), "", "download removed");

      await pm.ensure(url);
      assert.equal(server.requests.length, 2, "installed in that version: not downloaded again");

      await rejectsWith(
        pm.ensure(`${server.origin}/nothing_1.0_all.deb`),
        "ErrImagePull",
        /HTTP 404/,
      );
    });
  } finally {
    await server.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("an https .deb runs its maintainer scripts as root only once the node's policy lets it in", async () => {
  const dir = await Deno.makeTempDir({ prefix: "systemk-debs-" });
  const server = await serveDebs(dir);
  try {
    const deb = await buildDeb(dir, "systemk-rootkit", "1.0-1", {
      postinst: "id -u > /var/lib/systemk-rootkit-ran",
    });
    const url = `${server.origin}/systemk-rootkit_1.0-1_all.deb`;
    const pinned = `${url}#sha256=${await sha256File(deb)}`;
    await withSystemd(async (sd) => {
      const ran = async () => (await sd.exec(["cat", "/var/lib/systemk-rootkit-ran"])).stdout;
      // The node's defaults: no https:// image at all.
      const strict = managerIn(sd, { fetch: server.fetch });
      await rejectsWith(strict.pm.ensure(pinned), "ErrImagePull", /--allowed-image-url-prefixes/);
      // Its server allowed: a digest is still required.
      const allowing = managerIn(sd, {
        fetch: server.fetch,
        policy: { ...server.policy, requireDigest: true },
      });
      await rejectsWith(allowing.pm.ensure(url), "ErrImagePull", /--require-image-digest/);
      assert.deepEqual(server.requests, [], "nothing downloaded");
      assert.deepEqual([...strict.runs, ...allowing.runs], [], "no apt, no dpkg");
      assert.equal(await ran(), "", "no maintainer script ran");
      // Allowed and pinned: what the policy guards, a maintainer script running as root.
      await allowing.pm.ensure(pinned);
      assert.equal(await ran(), "0\n");
    });
  } finally {
    await server.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a pinned older version downgrades a package only with --allow-package-downgrades", async () => {
  await withSystemd(async (sd) => {
    const installed = await sh(sd, "dpkg-query -W -f='${Version}' git-man");
    const versions = (await sh(sd, "apt-cache madison git-man | cut -d'|' -f2")).split("\n");
    let older: string | undefined;
    for (const v of versions.map((v) => v.trim())) {
      if ((await sd.exec(["dpkg", "--compare-versions", v, "lt", installed])).code === 0) older = v;
    }
    if (!older) {
      console.log(`  git-man ${installed}: no older version in the apt sources, nothing to test`);
      return;
    }
    const strict = managerIn(sd);
    await rejectsWith(
      strict.pm.ensure(`git-man=${older}`),
      "ErrImagePull",
      /it would downgrade installed packages, which this node refuses: --allow-package-downgrades/,
    );
    assert.equal(await sh(sd, "dpkg-query -W -f='${Version}' git-man"), installed);
    const allowing = managerIn(sd, { policy: { ...DEFAULT_IMAGE_POLICY, allowDowngrades: true } });
    assert.equal((await allowing.pm.ensure(`git-man=${older}`)).version, older);
    console.log(`  git-man ${installed} → ${older} with the flag`);
  });
});

Deno.test("a package installed before systemk keeps its units and its running daemon", async () => {
  const dir = await Deno.makeTempDir({ prefix: "systemk-debs-" });
  const server = await serveDebs(dir);
  try {
    const deb = await buildDeb(dir, "systemk-admin", "1.0-1");
    await withSystemd(async (sd) => {
      // The administrator installs it by hand, without a policy-rc.d: its daemon starts.
      await Deno.copyFile(deb, `${sd.root}/root/admin.deb`);
      await sh(sd, "DEBIAN_FRONTEND=noninteractive dpkg -i /root/admin.deb");
      assert.equal(await systemctl(sd, "is-active", "systemk-admin.service"), "active");

      const { pm, masked } = managerIn(sd, { fetch: server.fetch, policy: server.policy });
      const info = await pm.ensure(`${server.origin}/systemk-admin_1.0-1_all.deb`);
      assert.equal(info.installedByUs, false);
      assert.deepEqual(info.maskedUnits, []);
      assert.equal(masked.length, 0);
      assert.equal(info.unitName, "systemk-admin.service", "still the template");
      assert.equal(await systemctl(sd, "is-enabled", "systemk-admin.service"), "enabled");
      assert.equal(await systemctl(sd, "is-active", "systemk-admin.service"), "active");
    });
  } finally {
    await server.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a package whose postinst starts its daemon with systemctl (bypassing policy-rc.d) is stopped", async () => {
  const dir = await Deno.makeTempDir({ prefix: "systemk-debs-" });
  const server = await serveDebs(dir);
  try {
    await buildDeb(dir, "systemk-careless", "2.0-1", { start: "systemctl" });
    await withSystemd(async (sd) => {
      const { pm } = managerIn(sd, { fetch: server.fetch, policy: server.policy });
      const info = await pm.ensure(`${server.origin}/systemk-careless_2.0-1_all.deb`);
      assert.equal(info.installedByUs, true);
      assert.notEqual(
        await everActive(sd, "systemk-careless.service"),
        0,
        "its postinst started it",
      );
      assert.equal(await systemctl(sd, "is-active", "systemk-careless.service"), "inactive");
      assert.equal(await systemctl(sd, "is-enabled", "systemk-careless.service"), "masked-runtime");
    });
  } finally {
    await server.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("absolute paths: an executable is accepted, a missing or non-executable file is not", async () => {
  await withSystemd(async (sd) => {
    const { pm, runs } = managerIn(sd);
    const bin = "/usr/local/bin";
    await sh(sd, `printf '#!/bin/sh\\n' > ${bin}/only-inside; chmod 755 ${bin}/only-inside`);
    await sh(sd, `echo data > ${bin}/plain-file; chmod 644 ${bin}/plain-file`);
    const info = await pm.ensure("/usr/local/bin/only-inside");
    assert.equal(info.name, undefined);
    await rejectsWith(
      pm.ensure("/usr/bin/systemk-does-not-exist"),
      "ErrImagePull",
      /does not exist/,
    );
    await rejectsWith(
      pm.ensure("/usr/local/bin/plain-file"),
      "ErrImagePull",
      /not executable \(mode 0644\)/,
    );
    assert.equal(runs.length, 0, "nothing installed, no apt run");
  });
});

Deno.test("two concurrent requests install once; different packages install one at a time", async () => {
  await withSystemd(async (sd) => {
    const { pm, runs } = managerIn(sd);
    const started = performance.now();
    const [a, b, c] = await Promise.all([
      pm.ensure("uptimed"),
      pm.ensure("uptimed"),
      pm.ensure("hello"),
    ]);
    console.log(`  uptimed ×2 + hello concurrently: ${ms(performance.now() - started)}`);
    assert.equal(a, b);
    assert.equal(a.installedByUs, true);
    assert.equal(c.installedByUs, true);
    const installs = aptRuns(runs, "install");
    assert.deepEqual(installs.map((r) => r.argv.at(-1)).sort(), ["hello", "uptimed"]);
    const [first, second] = installs.sort((x, y) => x.start - y.start);
    assert.ok(first.end <= second.start, "apt-get runs did not overlap");
  });
});

Deno.test("a dpkg lock held by another process is waited for", async () => {
  await withSystemd(async (sd) => {
    // apt locks with fcntl(2), so flock(1) would not hold it off; perl's fcntl does.
    const holder = sd.spawn([
      "perl",
      "-e",
      'use Fcntl; open(my $f, ">>", "/var/lib/dpkg/lock-frontend") or die; ' +
      'fcntl($f, F_SETLKW, pack("s s x4 q q l x4", F_WRLCK, SEEK_SET, 0, 0, 0)) or die; ' +
      '$| = 1; print "locked\\n"; sleep 4;',
    ]);
    await holder.stdin.close();
    const reader = holder.stdout.pipeThrough(new TextDecoderStream()).getReader();
    assert.equal((await reader.read()).value, "locked\n");
    let released = false;
    const holderDone = holder.status.then(() => (released = true));

    const { pm: impatient } = managerIn(sd, { lockTimeoutMs: 1_000, lockRetryMs: 200 });
    await rejectsWith(impatient.ensure("hello"), "ErrImagePull", /lock/);
    assert.equal(released, false);

    const { pm } = managerIn(sd);
    const info = await pm.ensure("hello");
    console.log(`  installed hello in ${ms(info.durationMs)}, waiting for the lock holder`);
    assert.equal(released, true, "the install finished only after the lock was released");
    assert.equal(info.installedByUs, true);
    await holderDone;
    await reader.cancel();
    await holder.stderr.cancel();
  });
});
