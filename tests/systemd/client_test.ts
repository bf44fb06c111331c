/**
 * The client against a real systemd 252 booted by the test harness. The test process stays on
 * the host: it talks to the booted system's bus and writes unit files through /proc/<pid>/root.
 */
import assert from "node:assert/strict";
import dbus from "dbus-next";
import { bootTestSystemd, type TestSystemd } from "../harness/systemd.ts";
import { JobTimeoutError, SystemdClient } from "../../src/systemd/client.ts";
import type { UnitProperties } from "../../src/unit/properties.ts";
import { dbusSignals } from "../../src/metrics/mod.ts";
import { unitObjectPath } from "../../src/systemd/_label.ts";

/** A booted system, a client connected to it, and every change the client reported. */
interface Fixture {
  sd: TestSystemd;
  client: SystemdClient;
  changes: { unit: string; props: UnitProperties }[];
  /** Resolves with the first change (already seen or future) of `unit` matching `predicate`. */
  change(unit: string, predicate: (p: UnitProperties) => boolean): Promise<UnitProperties>;
}

const CHANGE_TIMEOUT_MS = 15_000;

async function withClient(fn: (f: Fixture) => Promise<void>): Promise<void> {
  const sd = await bootTestSystemd();
  let client: SystemdClient | undefined;
  try {
    client = await SystemdClient.connect({
      busAddress: sd.busAddress,
      unitDir: `${sd.root}/run/systemd/system`,
      controlDir: `${sd.root}/run/systemd/system.control`,
    });
    const changes: Fixture["changes"] = [];
    const waiters = new Set<() => void>();
    client.onUnitChange((unit, props) => {
      changes.push({ unit, props });
      for (const wake of waiters) wake();
    });
    const change = (unit: string, predicate: (p: UnitProperties) => boolean) =>
      new Promise<UnitProperties>((resolve, reject) => {
        let seen = 0;
        const check = () => {
          for (; seen < changes.length; seen++) {
            const c = changes[seen];
            if (c.unit === unit && predicate(c.props)) {
              cleanup();
              resolve(c.props);
              return;
            }
          }
        };
        const timer = setTimeout(() => {
          cleanup();
          reject(new Error(`no matching change of ${unit}; saw ${JSON.stringify(changes)}`));
        }, CHANGE_TIMEOUT_MS);
        const cleanup = () => {
          clearTimeout(timer);
          waiters.delete(check);
        };
        waiters.add(check);
        check();
      });
    await fn({ sd, client, changes, change });
  } finally {
    await client?.close();
    await sd.stop();
  }
}

function service(execStart: string, extra = ""): string {
  return `[Unit]\nDescription=systemk client test\n\n[Service]\nExecStart=${execStart}\n${extra}`;
}

/** Counts the manager's `Reloading` signals, i.e. daemon-reloads, on a connection of its own. */
async function countReloads(sd: TestSystemd): Promise<{ count(): number; close(): void }> {
  const bus = dbus.sessionBus({ busAddress: sd.busAddress });
  let reloads = 0;
  const call = (destination: string, path: string, iface: string, member: string, body = []) =>
    bus.call(
      new dbus.Message({
        destination,
        path,
        interface: iface,
        member,
        signature: body.length ? "s" : "",
        body,
      }),
    );
  bus.on("message", (msg) => {
    if (msg.member === "Reloading" && msg.body[0] === true) reloads++;
  });
  await call("org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus", "AddMatch", [
    "type='signal',interface='org.freedesktop.systemd1.Manager',member='Reloading'",
  ] as never);
  await call(
    "org.freedesktop.systemd1",
    "/org/freedesktop/systemd1",
    "org.freedesktop.systemd1.Manager",
    "Subscribe",
  );
  return { count: () => reloads, close: () => bus.disconnect() };
}

const UNIT = "systemk.default.web.app.service";

Deno.test("install, start, restart, stop and remove a unit", async () => {
  await withClient(async ({ sd, client }) => {
    const text = service("/bin/sleep infinity");
    await client.installUnit(UNIT, text);
    assert.equal(await Deno.readTextFile(`${sd.root}/run/systemd/system/${UNIT}`), text);
    assert.deepEqual(await client.listUnits(), [{ name: UNIT, text }], "file only, not loaded");

    assert.equal(await client.start(UNIT), "done");
    const started = await client.getProperties(UNIT);
    assert.equal(started.ActiveState, "active");
    assert.equal(started.SubState, "running");
    assert.ok(started.MainPID > 0);
    assert.match(started.InvocationID, /^[0-9a-f]{32}$/);
    assert.equal(typeof started.MemoryCurrent, "number");
    const ps = await sd.exec(["ps", "-o", "args=", "-p", String(started.MainPID)]);
    assert.equal(ps.stdout.trim(), "/bin/sleep infinity");

    assert.equal(await client.restart(UNIT), "done");
    const restarted = await client.getProperties(UNIT);
    assert.equal(restarted.ActiveState, "active");
    assert.notEqual(restarted.MainPID, started.MainPID);
    assert.notEqual(restarted.InvocationID, started.InvocationID);
    assert.deepEqual(await client.listUnits(), [
      { name: UNIT, loadState: "loaded", activeState: "active", subState: "running", text },
    ]);

    assert.equal(await client.stop(UNIT), "done");
    const stopped = await client.getProperties(UNIT);
    assert.equal(stopped.ActiveState, "inactive");
    assert.equal(stopped.MainPID, 0);

    await client.start(UNIT);
    await client.removeUnit(UNIT);
    await assert.rejects(Deno.stat(`${sd.root}/run/systemd/system/${UNIT}`), Deno.errors.NotFound);
    assert.deepEqual(await client.listUnits(), []);
    const gone = await sd.exec(["systemctl", "show", "-P", "LoadState", UNIT]);
    assert.equal(gone.stdout.trim(), "not-found");
  });
});

Deno.test("setUnitProperties changes a running unit's cgroup limits in place", async () => {
  await withClient(async ({ sd, client }) => {
    const show = async (...properties: string[]) =>
      (await sd.exec(["systemctl", "show", ...properties.map((p) => `-p${p}`), UNIT])).stdout
        .trim().split("\n");
    await client.installUnit(UNIT, service("/bin/sleep infinity", "MemoryMax=67108864\n"));
    await client.start(UNIT);
    const before = await client.getProperties(UNIT);
    await client.setUnitProperties(UNIT, {
      CPUQuotaPerSecUSec: 250_000n,
      MemoryMax: 134_217_728n,
      CPUWeight: 42n,
    });
    const after = await client.getProperties(UNIT);
    assert.equal(after.InvocationID, before.InvocationID, "the same run");
    assert.equal(after.MainPID, before.MainPID);
    assert.deepEqual((await show("CPUQuotaPerSecUSec", "MemoryMax", "CPUWeight")).sort(), [
      "CPUQuotaPerSecUSec=250ms",
      "CPUWeight=42",
      "MemoryMax=134217728",
    ]);
    // The cgroup has it (the memory controller is v1 or v2, depending on the host).
    const group = (await show("ControlGroup"))[0].split("=")[1];
    const limit = await sd.exec([
      "sh",
      "-c",
      `cat /sys/fs/cgroup/memory${group}/memory.limit_in_bytes /sys/fs/cgroup${group}/memory.max ` +
      "2>/dev/null",
    ]);
    assert.equal(limit.stdout.trim(), "134217728");
    // systemd's own record of them is gone: the unit file is the only one.
    await assert.rejects(
      Deno.stat(`${sd.root}/run/systemd/system.control/${UNIT}.d`),
      Deno.errors.NotFound,
    );
    await client.removeUnit(UNIT);
  });
});

Deno.test("starting a unit without a file fails with systemd's NoSuchUnit", async () => {
  await withClient(async ({ client }) => {
    await assert.rejects(
      client.start("systemk.default.none.c.service"),
      (e: Error) => e instanceof dbus.DBusError && e.type === "org.freedesktop.systemd1.NoSuchUnit",
    );
    await assert.rejects(client.installUnit("../etc/passwd", ""), /not a systemk unit name/);
  });
});

Deno.test("a failing unit's snapshot: exit code 3", async () => {
  await withClient(async ({ client, change }) => {
    await client.installUnit(UNIT, service("/bin/sh -c 'exit 3'"));
    await client.start(UNIT);
    const failed = await change(UNIT, (p) => p.ActiveState === "failed");
    const expected = {
      ActiveState: "failed",
      SubState: "failed",
      Result: "exit-code",
      ExecMainStatus: 3,
      ExecMainCode: 1,
      MainPID: 0,
    };
    for (const props of [failed, await client.getProperties(UNIT)]) {
      assert.deepEqual(
        Object.fromEntries(Object.keys(expected).map((k) => [k, props[k as keyof UnitProperties]])),
        expected,
      );
      assert.ok(props.ExecMainExitTimestamp >= props.ExecMainStartTimestamp);
      assert.ok(props.ExecMainStartTimestamp > 0);
    }
    // A failed unit stays loaded until its failure is reset.
    assert.equal((await client.listUnits())[0].activeState, "failed");
    await client.resetFailed(UNIT);
    assert.equal((await client.getProperties(UNIT)).ActiveState, "inactive");
  });
});

Deno.test("a unit killed by a signal", async () => {
  await withClient(async ({ sd, client, change }) => {
    await client.installUnit(UNIT, service("/bin/sleep infinity"));
    await client.start(UNIT);
    const killed = await sd.exec(["systemctl", "kill", "--signal=SIGKILL", UNIT]);
    assert.equal(killed.code, 0, killed.stderr);
    const props = await change(UNIT, (p) => p.ActiveState === "failed");
    assert.equal(props.Result, "signal");
    assert.equal(props.ExecMainCode, 2); // CLD_KILLED
    assert.equal(props.ExecMainStatus, 9);
  });
});

Deno.test("change signals report start and a successful exit, after the unit is gone", async () => {
  await withClient(async ({ sd, client, change, changes }) => {
    await client.installUnit(UNIT, service("/bin/sh -c 'read -t 600 x < /run/go; exit 0'"));
    await sd.exec(["mkfifo", "/run/go"]);
    await client.start(UNIT);
    const running = await change(UNIT, (p) => p.ActiveState === "active" && p.MainPID > 0);
    assert.equal(running.SubState, "running");
    assert.equal(running.ExecMainCode, 0);
    assert.equal(running.MemoryCurrent, undefined, "accounting is not in change snapshots");

    await sd.exec(["sh", "-c", "echo go > /run/go"]);
    const exited = await change(UNIT, (p) => p.ActiveState === "inactive");
    // systemd garbage-collects the unit right after a successful exit: what the signals carried
    // is kept, not a blank reloaded unit.
    assert.equal(exited.SubState, "dead");
    assert.equal(exited.Result, "success");
    assert.equal(exited.ExecMainCode, 1);
    assert.equal(exited.ExecMainStatus, 0);
    assert.equal(exited.InvocationID, running.InvocationID);
    assert.ok(exited.ExecMainExitTimestamp > 0);
    assert.ok(exited.InactiveEnterTimestamp >= exited.ActiveEnterTimestamp);
    const loaded = await client.listUnits();
    assert.equal(loaded[0].loadState, undefined, "garbage-collected");
    // Bursts are coalesced: far fewer reports than systemd's signals (≥ 6 for this run).
    console.log(`reports for one start and exit: ${changes.length}`);
  });
});

/** The client's received-signal counts, by `member interface`, from its metric. */
function receivedSignals(): Map<string, number> {
  const counts = new Map<string, number>();
  for (const line of dbusSignals.render()) {
    const m = /^\w+\{interface="([^"]*)",member="([^"]*)"\} (\d+)$/.exec(line);
    if (m) counts.set(`${m[2]} ${m[1]}`, Number(m[3]));
  }
  return counts;
}

Deno.test("the bus delivers only the signals the client uses", async () => {
  await withClient(async ({ client, change }) => {
    const before = receivedSignals();
    await client.installUnit(UNIT, service("/bin/sleep infinity"));
    assert.equal(await client.start(UNIT), "done");
    await change(UNIT, (p) => p.SubState === "running");
    await client.removeUnit(UNIT);
    await change(UNIT, (p) => p.ActiveState === "inactive");
    const received = new Map(
      [...receivedSignals()].map(([k, n]) => [k, n - (before.get(k) ?? 0)]),
    );
    console.log("signals received for one unit's start and stop:", Object.fromEntries(received));
    const unit = "org.freedesktop.systemd1.Unit";
    const service_ = "org.freedesktop.systemd1.Service";
    assert.ok((received.get(`PropertiesChanged ${unit}`) ?? 0) > 0);
    assert.ok((received.get(`PropertiesChanged ${service_}`) ?? 0) > 0);
    assert.ok((received.get("JobRemoved org.freedesktop.systemd1.Manager") ?? 0) >= 2);
    // systemd sends UnitNew, UnitRemoved, JobNew and the mounts' and targets' own interface
    // changes for this too (bench/_dbus.ts counts them); none of them reaches the client.
    const unused = [...received].filter(([k, n]) =>
      n > 0 && ![`PropertiesChanged ${unit}`, `PropertiesChanged ${service_}`].includes(k) &&
      k !== "JobRemoved org.freedesktop.systemd1.Manager"
    );
    assert.deepEqual(unused, []);
  });
});

/** `dbus-monitor` inside the booted system, printing the `GetAll` calls it sees, by line. */
async function monitorGetAll(sd: TestSystemd) {
  // Line-buffered: into a pipe, dbus-monitor's output would wait for a full buffer.
  const child = sd.spawn([
    "stdbuf",
    "-oL",
    "dbus-monitor",
    "--system",
    "type='method_call',member='GetAll'",
  ]);
  const lines: string[] = [];
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  const reading = (async () => {
    for (let r = await reader.read(); !r.done; r = await reader.read()) {
      lines.push(...r.value.split("\n"));
    }
  })().catch(() => {});
  const until = async (what: string, found: () => boolean) => {
    const deadline = Date.now() + CHANGE_TIMEOUT_MS;
    while (!found()) {
      if (Date.now() > deadline) throw new Error(`dbus-monitor never showed ${what}`);
      await new Promise((r) => setTimeout(r, 20));
    }
  };
  const close = async () => {
    // Killing nsenter leaves dbus-monitor (its child) holding the pipe: stop reading instead.
    child.kill();
    await reader.cancel();
    await Promise.all([child.status, reading, child.stderr.cancel()]);
  };
  // It announces itself once it has become a monitor.
  await until("NameAcquired", () => lines.some((l) => l.includes("member=NameAcquired")))
    .catch(async (e) => {
      await close();
      throw e;
    });
  return {
    /** Waits for a GetAll on `path`; returns the GetAll calls before it, by path. */
    async callsBefore(path: string): Promise<string[]> {
      const on = (l: string) => l.includes("member=GetAll") && l.includes(`path=${path};`);
      await until(`a GetAll on ${path}`, () => lines.some(on));
      const before = lines.slice(0, lines.findIndex(on));
      return before.filter((l) => l.includes("member=GetAll"))
        .map((l) => /path=([^;]+);/.exec(l)?.[1] ?? "?");
    },
    close,
  };
}

Deno.test("a unit read before its first signal is followed without reading it again", async () => {
  await withClient(async ({ sd, client, change }) => {
    const monitor = await monitorGetAll(sd);
    try {
      await client.installUnit(UNIT, service("/bin/sleep infinity"));
      const read = await client.getProperties(UNIT); // 2 GetAll: Unit and Service
      assert.equal(read.ActiveState, "inactive");
      await client.start(UNIT);
      const running = await change(UNIT, (p) => p.SubState === "running");
      assert.ok(running.MainPID > 0);
      // The client's calls reach the bus in order: every GetAll it made for the start
      // comes before this one.
      const marker = "systemk.default.marker.c.service";
      await client.getProperties(marker);
      const calls = await monitor.callsBefore(unitObjectPath(marker));
      assert.deepEqual(calls, [unitObjectPath(UNIT), unitObjectPath(UNIT)]);
    } finally {
      await monitor.close();
    }
  });
});

Deno.test("a re-created unit runs its new ExecStart without daemon-reload", async () => {
  await withClient(async ({ sd, client, change }) => {
    const reloads = await countReloads(sd);
    try {
      const out = `${sd.root}/run/out`;
      // Oneshot: the start job finishes only after the command ran.
      const writer = (word: string) =>
        service(`/bin/sh -c 'echo ${word} >> /run/out'`, "Type=oneshot\n");

      // Start, stop, remove (file + reset-failed), then the same name with another ExecStart.
      await client.installUnit(UNIT, service("/bin/sh -c 'echo one >> /run/out; exec sleep 600'"));
      await client.start(UNIT);
      await client.stop(UNIT);
      await client.removeUnit(UNIT);
      await client.installUnit(UNIT, writer("two"));
      assert.equal(await client.start(UNIT), "done");
      assert.equal(await Deno.readTextFile(out), "one\ntwo\n");

      // Changed while not loaded (garbage-collected after its exit): read fresh on start.
      // systemd collects the exited unit asynchronously; under load that takes a moment.
      for (let i = 0; i < 100; i++) {
        const listed = (await client.listUnits()).find((u) => u.name === UNIT);
        if (listed?.loadState === undefined) break;
        await new Promise((r) => setTimeout(r, 50));
      }
      await client.installUnit(UNIT, writer("three"));
      assert.equal(await client.start(UNIT), "done");
      assert.equal(await Deno.readTextFile(out), "one\ntwo\nthree\n");

      // Referenced before its file existed (systemd keeps it as not-found): 252 retries the
      // load because the unit directory changed.
      const other = "systemk.default.web.other.service";
      assert.equal((await client.getProperties(other)).LoadState, "not-found");
      await client.installUnit(other, writer("four"));
      assert.equal(await client.start(other), "done");
      assert.equal(await Deno.readTextFile(out), "one\ntwo\nthree\nfour\n");
      assert.equal(reloads.count(), 0);

      // Still loaded (failed) while its file changes: the one case that needs a reload.
      await client.installUnit(UNIT, service("/bin/false"));
      await client.start(UNIT);
      await change(UNIT, (p) => p.ActiveState === "failed");
      await client.installUnit(UNIT, writer("five"));
      // The Reloading signal reaches the counting connection a moment after Reload returns.
      for (let i = 0; i < 100 && reloads.count() < 1; i++) {
        await new Promise((r) => setTimeout(r, 50));
      }
      assert.equal(reloads.count(), 1);
      await client.resetFailed(UNIT);
      assert.equal(await client.start(UNIT), "done");
      assert.equal(await Deno.readTextFile(out), "one\ntwo\nthree\nfour\nfive\n");
    } finally {
      reloads.close();
    }
  });
});

Deno.test("concurrent installs that need a reload share reloads", async () => {
  await withClient(async ({ sd, client, change }) => {
    const reloads = await countReloads(sd);
    try {
      const names = Array.from({ length: 8 }, (_, i) => `systemk.default.p${i}.c.service`);
      for (const name of names) {
        await client.installUnit(name, service("/bin/false"));
        await client.start(name);
        await change(name, (p) => p.ActiveState === "failed");
      }
      await Promise.all(names.map((name) => client.installUnit(name, service("/bin/true"))));
      console.log(`reloads for ${names.length} concurrent stale installs: ${reloads.count()}`);
      assert.ok(reloads.count() >= 1 && reloads.count() <= 2);
      const text = (await sd.exec(["systemctl", "cat", names[7]])).stdout;
      assert.match(text, /ExecStart=\/bin\/true/);
    } finally {
      reloads.close();
    }
  });
});

Deno.test("after daemon-reexec the client re-subscribes and reports every unit", async () => {
  await withClient(async ({ sd, client, change, changes }) => {
    await client.installUnit(UNIT, service("/bin/sleep infinity"));
    await client.start(UNIT);
    const before = await change(UNIT, (p) => p.ActiveState === "active");
    const seen = changes.length;

    const reexec = await sd.exec(["systemctl", "daemon-reexec"]);
    assert.equal(reexec.code, 0, reexec.stderr);
    // The resync reports the unit again, unchanged.
    const deadline = Date.now() + CHANGE_TIMEOUT_MS;
    while (changes.length === seen && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 20));
    }
    const after = changes.slice(seen).find((c) => c.unit === UNIT);
    assert.ok(after, "reported after the re-execution");
    assert.equal(after.props.InvocationID, before.InvocationID);
    assert.equal(after.props.ActiveState, "active");

    // Signals still flow: a new unit's start and failure arrive.
    const other = "systemk.default.web.other.service";
    await client.installUnit(other, service("/bin/sh -c 'exit 4'"));
    await client.start(other);
    assert.equal((await change(other, (p) => p.ActiveState === "failed")).ExecMainStatus, 4);
    assert.equal(await client.stop(UNIT), "done");
    await change(UNIT, (p) => p.ActiveState === "inactive");
  });
});

Deno.test("after the bus restarts the client reconnects and reports every unit", async () => {
  await withClient(async ({ sd, client, change, changes }) => {
    await client.installUnit(UNIT, service("/bin/sleep infinity"));
    await client.start(UNIT);
    await change(UNIT, (p) => p.ActiveState === "active");
    const seen = changes.length;

    const restart = await sd.exec(["systemctl", "restart", "dbus.service"]);
    assert.equal(restart.code, 0, restart.stderr);
    const deadline = Date.now() + CHANGE_TIMEOUT_MS;
    while (!changes.slice(seen).some((c) => c.unit === UNIT) && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 20));
    }
    assert.ok(changes.slice(seen).some((c) => c.unit === UNIT), "reported after reconnecting");

    const other = "systemk.default.web.other.service";
    await client.installUnit(other, service("/bin/sh -c 'exit 5'"));
    assert.equal(await client.start(other), "done");
    assert.equal((await change(other, (p) => p.ActiveState === "failed")).ExecMainStatus, 5);
  });
});

Deno.test("stop kills a process that ignores SIGTERM after TimeoutStopSec", async () => {
  await withClient(async ({ sd, client, change }) => {
    const stubborn = service(
      `/bin/sh -c 'trap "" TERM; echo ready > /run/ready; while :; do sleep 0.1; done'`,
      "TimeoutStopSec=2\n",
    );
    await client.installUnit(UNIT, stubborn);
    await client.start(UNIT);
    await change(UNIT, (p) => p.ActiveState === "active");
    while (!(await Deno.stat(`${sd.root}/run/ready`).catch(() => null))) {
      await new Promise((r) => setTimeout(r, 10));
    }
    const { MainPID } = await client.getProperties(UNIT);

    // Our own deadline shorter than systemd's: the wait fails, the job goes on.
    await assert.rejects(client.stop(UNIT, { timeoutMs: 300 }), JobTimeoutError);
    assert.equal((await client.getProperties(UNIT)).ActiveState, "deactivating");

    const started = performance.now();
    assert.equal(await client.stop(UNIT, { timeoutMs: 10_000 }), "done");
    console.log(
      `stop of a SIGTERM-ignoring unit took ${(performance.now() - started).toFixed(0)} ms`,
    );
    const props = await change(UNIT, (p) => p.ActiveState === "failed");
    assert.equal(props.Result, "timeout");
    assert.equal(props.ExecMainCode, 2); // CLD_KILLED
    assert.equal(props.ExecMainStatus, 9);
    const alive = await sd.exec(["kill", "-0", String(MainPID)]);
    assert.notEqual(alive.code, 0, "the process is gone");
  });
});

Deno.test("a burst of calls beyond dbus-daemon's 128 pending replies all succeed", async () => {
  await withClient(async ({ client }) => {
    // Without the client's cap, calls past the bus's per-connection limit fail with
    // "The maximum number of pending replies per connection has been reached".
    const names = Array.from({ length: 400 }, (_, i) => `systemk.default.burst-${i}.c.service`);
    const results = await Promise.allSettled(names.map((n) => client.getProperties(n)));
    const failed = results.filter((r) => r.status === "rejected");
    assert.deepEqual(failed, [], `${failed.length} of ${names.length} calls failed`);
  });
});
