import assert from "node:assert/strict";
import dbus from "dbus-next";
import { bootTestSystemd, type TestSystemd } from "./systemd.ts";

/** Boots a test systemd for `fn` and always stops it. */
async function withSystemd(fn: (sd: TestSystemd) => Promise<void>): Promise<void> {
  const sd = await bootTestSystemd();
  try {
    await fn(sd);
  } finally {
    await sd.stop();
  }
}

Deno.test("boots to running and runs commands inside its namespaces", async () => {
  await withSystemd(async (sd) => {
    const state = await sd.exec(["systemctl", "is-system-running"]);
    assert.match(state.stdout, /^(running|degraded)\n$/);
    const hostname = await sd.exec(["hostname"]);
    assert.equal(hostname.stdout.trim(), sd.name);
    // PID 1 inside is systemd, not the host's init.
    const init = await sd.exec(["cat", "/proc/1/comm"]);
    assert.equal(init.stdout.trim(), "systemd");
    const piped = await sd.exec(["sh", "-c", 'read x; echo "$x $GREETING"'], {
      stdin: "hello\n",
      env: { GREETING: "world" },
    });
    assert.deepEqual(piped, { code: 0, stdout: "hello world\n", stderr: "" });
    // What could reach shared kernel state, devices or the host's ports does not run.
    const masked = ["postgresql.service", "systemd-sysctl.service", "systemd-udevd.service"];
    const active = await sd.exec(["systemctl", "is-active", ...masked, "apt-daily.timer"]);
    assert.deepEqual(active.stdout.trim().split("\n"), [
      "inactive",
      "inactive",
      "inactive",
      "inactive",
    ]);
    const enabled = await sd.exec(["systemctl", "is-enabled", ...masked]);
    assert.deepEqual(enabled.stdout.trim().split("\n"), ["masked", "masked", "masked"]);
    const sysctl = await sd.exec(["sh", "-c", "echo 1 > /proc/sys/net/ipv4/ip_forward"]);
    assert.match(sysctl.stderr, /Read-only file system/);
    const sysfs = await sd.exec(["touch", "/sys/kernel/systemk-test"]);
    assert.match(sysfs.stderr, /Read-only file system/);
    const failing = await sd.exec(["sh", "-c", "echo oops >&2; exit 7"]);
    assert.equal(failing.code, 7);
    assert.equal(failing.stderr, "oops\n");
  });
});

Deno.test("its system bus answers from the host", async () => {
  await withSystemd(async (sd) => {
    const bus = dbus.sessionBus({ busAddress: sd.busAddress });
    try {
      const proxy = await bus.getProxyObject(
        "org.freedesktop.systemd1",
        "/org/freedesktop/systemd1",
      );
      const props = proxy.getInterface("org.freedesktop.DBus.Properties");
      const version = await props.Get("org.freedesktop.systemd1.Manager", "Version");
      assert.match(String(version.value), /^252/);
      const virtualization = await props.Get("org.freedesktop.systemd1.Manager", "Virtualization");
      // systemd knows it runs in a container (of a kind it has no name for).
      assert.equal(virtualization.value, "container-other");
    } finally {
      bus.disconnect();
    }
  });
});

Deno.test("systemd-run --wait runs a transient unit inside", async () => {
  await withSystemd(async (sd) => {
    const ok = await sd.exec([
      "systemd-run",
      "--wait",
      "--pipe",
      "--quiet",
      "sh",
      "-c",
      "echo $((6*7))",
    ]);
    assert.equal(ok.code, 0, ok.stderr);
    assert.equal(ok.stdout, "42\n");
    const failed = await sd.exec(["systemd-run", "--wait", "--quiet", "sh", "-c", "exit 3"]);
    assert.equal(failed.code, 3);
  });
});

Deno.test("spawn keeps a process running inside until it ends", async () => {
  await withSystemd(async (sd) => {
    const child = sd.spawn(["sh", "-c", 'read line; echo "got $line in $(hostname)"']);
    const writer = child.stdin.getWriter();
    await writer.write(new TextEncoder().encode("ping\n"));
    await writer.close();
    const out = await child.output();
    assert.equal(new TextDecoder().decode(out.stdout), `got ping in ${sd.name}\n`);
  });
});

Deno.test("the host's /tmp survives boot and teardown", async () => {
  const marker = await Deno.makeTempDir({ prefix: "systemk-harness-marker-" });
  const oldFile = `${marker}/old`;
  await Deno.writeTextFile(oldFile, "keep me");
  // Aged a month: what systemd-tmpfiles --clean would delete first.
  const monthAgo = new Date(Date.now() - 30 * 24 * 3600 * 1000);
  await Deno.utime(oldFile, monthAgo, monthAgo);
  const before = new Set(await Array.fromAsync(Deno.readDir("/tmp"), (e) => e.name));
  try {
    let tempDir = "";
    await withSystemd(async (sd) => {
      tempDir = sd.tempDir;
      const inside = await sd.exec(["ls", "-A", "/tmp"]);
      assert.doesNotMatch(inside.stdout, /systemk-harness-marker-/, "the system has its own /tmp");
      const clean = await sd.exec(["systemd-tmpfiles", "--clean"]);
      assert.equal(clean.code, 0, clean.stderr);
    });
    assert.equal(await Deno.readTextFile(oldFile), "keep me");
    const after = await Array.fromAsync(Deno.readDir("/tmp"), (e) => e.name);
    const appeared = after.filter((name) => !before.has(name));
    // Other processes share this /tmp; what the booted system would leave is systemd's own.
    assert.deepEqual(appeared.filter((name) => name.startsWith("systemd-")), []);
    assert.equal(after.includes(tempDir.slice("/tmp/".length)), false, "temp dir removed");
  } finally {
    await Deno.remove(marker, { recursive: true });
  }
});

/** Every path below `dir`, with symlink targets, sorted. */
async function listTree(dir: string): Promise<string[]> {
  const paths: string[] = [];
  for await (const entry of Deno.readDir(dir)) {
    const path = `${dir}/${entry.name}`;
    if (entry.isSymlink) paths.push(`${path} -> ${await Deno.readLink(path)}`);
    else if (entry.isDirectory) paths.push(path, ...await listTree(path));
    else paths.push(path);
  }
  return paths.sort();
}

Deno.test("writes to the system's /etc stay out of the host's /etc", async () => {
  const name = `systemk-harness-${crypto.randomUUID()}`;
  // The boot script disables and masks units in the system's /etc/systemd/system.
  const hostUnits = await listTree("/etc/systemd/system");
  await withSystemd(async (sd) => {
    const write = await sd.exec(["sh", "-c", `echo inside > /etc/${name}`]);
    assert.equal(write.code, 0, write.stderr);
    assert.equal((await sd.exec(["cat", `/etc/${name}`])).stdout, "inside\n");
    assert.equal(await Deno.readTextFile(`${sd.root}/etc/${name}`), "inside\n");
    await assert.rejects(Deno.stat(`/etc/${name}`), Deno.errors.NotFound);
  });
  await assert.rejects(Deno.stat(`/etc/${name}`), Deno.errors.NotFound);
  assert.deepEqual(await listTree("/etc/systemd/system"), hostUnits);
});

Deno.test("teardown leaves no process, mount, cgroup or file", async () => {
  const sd = await bootTestSystemd();
  const started = await sd.exec(["systemd-run", "--unit=sleeper", "sleep", "600"]);
  assert.equal(started.code, 0, started.stderr);
  // The host sees the system's cgroups below the test's own one (PID 1 sits in init.scope).
  const init = (await Deno.readTextFile(`/proc/${sd.pid}/cgroup`)).match(/^0::(.*)$/m)![1];
  const systemCgroup = `/sys/fs/cgroup/unified${init.replace(/\/init\.scope$/, "")}`;
  const sleeperPids = await Deno.readTextFile(
    `${systemCgroup}/system.slice/sleeper.service/cgroup.procs`,
  );
  const sleeperPid = Number(sleeperPids.trim());
  assert.ok(sleeperPid > 0);
  const cmdline = await Deno.readTextFile(`/proc/${sleeperPid}/cmdline`);
  assert.deepEqual(cmdline.split("\0"), ["/usr/bin/sleep", "600", ""]);

  await sd.stop();
  await assert.rejects(Deno.stat(`/proc/${sd.pid}`), Deno.errors.NotFound, "PID 1 gone");
  await assert.rejects(Deno.stat(`/proc/${sleeperPid}`), Deno.errors.NotFound, "sleeper gone");
  await assert.rejects(Deno.stat(systemCgroup), Deno.errors.NotFound, "cgroups removed");
  const mountinfo = await Deno.readTextFile("/proc/self/mountinfo");
  assert.equal(mountinfo.includes(sd.tempDir), false, "no mounts");
  await assert.rejects(Deno.stat(sd.tempDir), Deno.errors.NotFound, "temp dir removed");
});

Deno.test("several systems run side by side without seeing each other", async () => {
  const [a, b] = await Promise.all([bootTestSystemd(), bootTestSystemd()]);
  try {
    assert.notEqual(a.pid, b.pid);
    const run = await a.exec(["systemd-run", "--unit=only-in-a", "sleep", "600"]);
    assert.equal(run.code, 0, run.stderr);
    assert.equal((await a.exec(["systemctl", "is-active", "only-in-a"])).stdout, "active\n");
    assert.equal((await b.exec(["systemctl", "is-active", "only-in-a"])).stdout, "inactive\n");
    // Stopping one leaves the other running.
    await a.stop();
    assert.match((await b.exec(["systemctl", "is-system-running"])).stdout, /running|degraded/);
  } finally {
    await Promise.all([a.stop(), b.stop()]);
  }
});

Deno.test("a name and bind paths of the test's choosing", async () => {
  const shared = await Deno.makeTempDir({ prefix: "systemk-harness-bind-" });
  try {
    const sd = await bootTestSystemd({ name: "node-a", binds: [shared] });
    try {
      assert.equal((await sd.exec(["hostname"])).stdout, "node-a\n");
      const write = await sd.exec(["sh", "-c", `echo from-inside > ${shared}/f`]);
      assert.equal(write.code, 0, write.stderr);
      assert.equal(await Deno.readTextFile(`${shared}/f`), "from-inside\n");
    } finally {
      await sd.stop();
    }
  } finally {
    await Deno.remove(shared, { recursive: true });
  }
  await assert.rejects(bootTestSystemd({ binds: ["relative/path"] }), /absolute/);
  await assert.rejects(bootTestSystemd({ binds: ["/nonexistent-systemk"] }), Deno.errors.NotFound);
  await assert.rejects(bootTestSystemd({ name: "Bad Name" }), /invalid system name/);
});
