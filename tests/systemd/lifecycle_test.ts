/**
 * A pod's life under the real systemd 252, driven by systemk's runtime over D-Bus: init
 * containers in order and blocking the app containers when one fails, the three restart
 * policies, stopping with SIGTERM then SIGKILL after the grace period, and a memory-limit kill.
 * Assertions are on what systemd reports (Result, ExecMainCode/Status, NRestarts,
 * InvocationID) and on the pod status computed from it; times are printed, never asserted.
 *
 * @module
 */
import assert from "node:assert/strict";
import type { V1ContainerStatus, V1Pod, V1PodStatus } from "@kubernetes/client-node";
import type { UnitProperties } from "../../src/unit/properties.ts";
import { emptyDirPath, type PodSystem, SYSTEM_TEST, unitOf, withPodSystem } from "./_pods.ts";

/** `ExecMainCode` values. */
const CLD_EXITED = 1;
const CLD_KILLED = 2;

/** A container `name` running `script` with the pod's emptyDir `shared` at /shared. */
function container(name: string, script: string, extra = ""): string {
  return `
    - name: ${name}
      image: /bin/sh
      command: [/bin/sh, -c, ${JSON.stringify(script)}]
      volumeMounts: [{name: shared, mountPath: /shared}]${extra}`;
}

/** A pod manifest with an emptyDir `shared` and the given containers. */
function pod(name: string, spec: string, containers: string[], inits: string[] = []): string {
  return `
kind: Pod
metadata: {name: ${name}}
spec:
  ${spec}
  volumes: [{name: shared, emptyDir: {}}]
  ${inits.length ? `initContainers:${inits.join("")}` : ""}
  containers:${containers.join("")}
`;
}

const lines = async (s: PodSystem, p: V1Pod, file: string) =>
  (await Deno.readTextFile(`${emptyDirPath(s, p, "shared")}/${file}`).catch(() => ""))
    .split("\n").filter((l) => l !== "");

/**
 * How a run ended, as systemd reported it: the first change snapshot of that InvocationID in
 * which the unit is inactive or failed and its main process has exited. (Read from the change
 * signals: a unit that stopped cleanly is unloaded by systemd at once, and the runtime's removal
 * afterwards resets a failed unit, which then reads `inactive`, `Result=success`. At the start
 * systemd announces the new InvocationID while the unit still reads `inactive/dead`, no exit
 * yet: on a busy machine that snapshot is delivered alone, and is not the run's end.)
 */
function endOf(s: PodSystem, unit: string, run: UnitProperties): Promise<UnitProperties> {
  return s.until(
    `the end of ${unit}`,
    () =>
      s.changes.find((c) =>
        c.unit === unit && c.props.InvocationID === run.InvocationID &&
        ["inactive", "failed"].includes(c.props.ActiveState) && c.props.ExecMainCode !== 0
      )?.props,
  );
}

const statusOf = (status: V1PodStatus, name: string): V1ContainerStatus =>
  [...(status.initContainerStatuses ?? []), ...(status.containerStatuses ?? [])]
    .find((c) => c.name === name)!;

const ended = (st: V1PodStatus) => st.phase === "Succeeded" || st.phase === "Failed";

Deno.test({
  name: "pod lifecycle under systemd: init order, restart policies, stop, memory limit",
  ...SYSTEM_TEST,
  async fn(t) {
    await withPodSystem(async (s) => {
      await t.step("init containers run one after the other, then the app", async () => {
        const stamp = (n: string) => `echo "$(date +%s.%N) ${n}" >> /shared/log`;
        const p = s.run(pod(
          "ordered",
          "restartPolicy: Always",
          [container("app", `${stamp("app")}; exec sleep infinity`)],
          ["first", "second", "third"].map((n) => container(n, `sleep 0.05; ${stamp(n)}`)),
        ));
        await s.statusWhen(p, (st) => st.phase === "Running" && !!statusOf(st, "app").ready);
        const log = await s.until("the app's line", async () => {
          const log = await lines(s, p, "log");
          return log.length === 4 ? log : undefined;
        });
        assert.deepEqual(log.map((l) => l.split(" ")[1]), ["first", "second", "third", "app"]);
        const times = log.map((l) => Number(l.split(" ")[0]));
        assert.deepEqual([...times].sort((a, b) => a - b), times, "timestamps ascend");
        // systemd's own record agrees: each starts after the previous one exited.
        const props = await Promise.all(
          ["first", "second", "third", "app"].map((n) => s.props(unitOf(p, n))),
        );
        for (let i = 1; i < props.length; i++) {
          assert.ok(props[i].ExecMainStartTimestamp >= props[i - 1].ExecMainExitTimestamp);
        }
        await s.runtime.terminate(p.metadata!.uid!);
      });

      await t.step("a failing init container under Never: app units never start", async () => {
        const p = s.run(pod(
          "init-fails",
          "restartPolicy: Never",
          [container("app1", "echo app1 >> /shared/ran"), container("app2", "exit 0")],
          [container("ok", "echo ok >> /shared/ran"), container("bad", "exit 3")],
        ));
        const status = await s.statusWhen(p, ended);
        assert.equal(status.phase, "Failed");
        assert.equal(statusOf(status, "bad").state?.terminated?.exitCode, 3);
        assert.equal(statusOf(status, "app1").state?.waiting?.reason, "PodInitializing");
        for (const app of ["app1", "app2"]) {
          assert.equal((await s.props(unitOf(p, app))).InvocationID, "", `${app} never ran`);
        }
        assert.deepEqual(await lines(s, p, "ran"), ["ok"]);
      });

      await t.step(
        "a failing init container under Always: retried, app units never start",
        async () => {
          const p = s.run(pod(
            "init-retries",
            "restartPolicy: Always",
            [container("app", "echo app >> /shared/ran; exec sleep infinity")],
            [container("bad", "echo bad >> /shared/ran; exit 1")],
          ));
          await s.until(
            "the init container's third run",
            async () => (await lines(s, p, "ran")).length >= 3 ? true : undefined,
          );
          assert.deepEqual(await lines(s, p, "ran"), ["bad", "bad", "bad"]);
          assert.equal((await s.props(unitOf(p, "app"))).InvocationID, "");
          assert.ok(
            s.events.some((e) => e.pod === "init-retries" && e.reason === "BackOff"),
            "BackOff event",
          );
          assert.equal(s.statuses.get(p.metadata!.uid!)?.phase, "Pending");
          await s.runtime.terminate(p.metadata!.uid!);
        },
      );

      await t.step("restart policies: Always, OnFailure, Never", async () => {
        const count = (n: string) => `echo run >> /shared/${n}`;
        const always = s.run(pod("always", "restartPolicy: Always", [
          container("loop", `${count("loop")}; exit 0`),
        ]));
        const onFailure = s.run(pod("onfailure", "restartPolicy: OnFailure", [
          container("ok", `${count("ok")}; exit 0`),
          // Fails on its first run only.
          container("flaky", `${count("flaky")}; [ "$(wc -l < /shared/flaky)" -ge 2 ]`),
        ]));
        const neverOk = s.run(pod("never-ok", "restartPolicy: Never", [
          container("job", `${count("job")}; exit 0`),
        ]));
        const neverFail = s.run(pod("never-fail", "restartPolicy: Never", [
          container("job", `${count("job")}; exit 3`),
        ]));
        const started = performance.now();

        const ok = await s.statusWhen(neverOk, ended);
        assert.equal(ok.phase, "Succeeded");
        assert.equal(statusOf(ok, "job").state?.terminated?.reason, "Completed");
        const failed = await s.statusWhen(neverFail, ended);
        assert.equal(failed.phase, "Failed");
        assert.equal(statusOf(failed, "job").state?.terminated?.exitCode, 3);
        assert.equal(statusOf(failed, "job").state?.terminated?.reason, "Error");

        const onFailureDone = await s.statusWhen(onFailure, ended);
        assert.equal(onFailureDone.phase, "Succeeded");
        assert.equal(statusOf(onFailureDone, "flaky").restartCount, 1);
        assert.equal(statusOf(onFailureDone, "ok").restartCount, 0);
        console.log(`  OnFailure pod done after ${(performance.now() - started).toFixed(0)} ms`);

        const looping = await s.statusWhen(always, (st) => statusOf(st, "loop").restartCount! >= 2);
        assert.equal(looping.phase, "Running");
        console.log(`  Always: 2 restarts after ${(performance.now() - started).toFixed(0)} ms`);
        // The agent restarted it, not systemd, and said why.
        assert.equal(await s.systemdRestarts(unitOf(always, "loop")), 0);
        assert.ok(
          s.events.some((e) => e.pod === "always" && e.reason === "BackOff"),
          "BackOff event",
        );
        await s.until(
          "the third run's line",
          async () => (await lines(s, always, "loop")).length >= 3 ? true : undefined,
        );

        const runs = { ok: 1, flaky: 2 };
        for (const [name, n] of Object.entries(runs)) {
          assert.equal((await lines(s, onFailure, name)).length, n, `${name} ran ${n} time(s)`);
        }
        for (const p of [neverOk, neverFail]) {
          assert.equal(await s.systemdRestarts(unitOf(p, "job")), 0);
          assert.deepEqual(await lines(s, p, "job"), ["run"], "ran once");
        }
        await Promise.all(
          [always, onFailure, neverOk, neverFail].map((p) => s.runtime.terminate(p.metadata!.uid!)),
        );
      });

      await t.step(
        "a crash loop: back-off doubling, CrashLoopBackOff, deletion cancels",
        async () => {
          const p = s.run(pod("crashy", "restartPolicy: Always", [
            container("c", "echo run >> /shared/c; exit 1"),
          ]));
          const started = performance.now();
          const looping = await s.statusWhen(
            p,
            (st) =>
              statusOf(st, "c").restartCount! >= 2 &&
              statusOf(st, "c").state?.waiting?.reason === "CrashLoopBackOff",
          );
          console.log(`  2 restarts after ${(performance.now() - started).toFixed(0)} ms`);
          const c = statusOf(looping, "c");
          // Runs: 3 (restartCount 2); the third ended, so the pending delay is base × 4.
          assert.match(
            c.state!.waiting!.message!,
            /^back-off 800ms restarting failed container=c pod=crashy_default\(/,
          );
          assert.equal(c.lastState?.terminated?.exitCode, 1);
          assert.equal(c.lastState?.terminated?.reason, "Error");
          assert.equal(looping.phase, "Running");
          const runs = (await lines(s, p, "c")).length;
          assert.ok(runs === 3 || runs === 4, `${runs} runs`);
          assert.ok(
            s.events.filter((e) => e.pod === "crashy" && e.reason === "BackOff").length >= 3,
          );

          const unit = unitOf(p, "c");
          await s.runtime.terminate(p.metadata!.uid!);
          const startedBefore = s.events.filter((e) =>
            e.pod === "crashy" && e.reason === "Started"
          );
          // Longer than any delay pending at deletion: a restart would have fired by now.
          await new Promise((resolve) => setTimeout(resolve, 2000));
          assert.equal((await s.props(unit)).LoadState, "not-found");
          assert.equal(
            s.events.filter((e) => e.pod === "crashy" && e.reason === "Started").length,
            startedBefore.length,
          );
        },
      );

      await t.step(
        "probes: readiness follows httpGet; a failed liveness probe restarts",
        async () => {
          const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
          const port = (listener.addr as Deno.NetAddr).port;
          listener.close();
          const ready = s.run(pod("ready", "restartPolicy: Always", [
            container(
              "web",
              `echo ok > /shared/healthz; exec /usr/bin/python3 -m http.server ${port} ` +
                `--bind 127.0.0.1 --directory /shared`,
              `
      ports: [{name: http, containerPort: ${port}}]
      readinessProbe: {httpGet: {path: /healthz, port: http}, periodSeconds: 1}`,
            ),
          ]));
          const dying = s.run(pod("dying", "restartPolicy: Always", [
            container(
              "c",
              "exec sleep infinity",
              `
      livenessProbe: {tcpSocket: {port: 1}, periodSeconds: 1, failureThreshold: 2}`,
            ),
          ]));
          const started = performance.now();
          await s.statusWhen(ready, (st) => st.phase === "Running" && !!statusOf(st, "web").ready);
          console.log(`  ready after ${(performance.now() - started).toFixed(0)} ms`);
          const conditions = s.statuses.get(ready.metadata!.uid!)?.conditions ?? [];
          assert.equal(conditions.find((c) => c.type === "Ready")?.status, "True");
          // Not ready once the probe fails: the path is gone.
          await Deno.remove(`${emptyDirPath(s, ready, "shared")}/healthz`);
          await s.statusWhen(ready, (st) => !statusOf(st, "web").ready);
          console.log(`  not ready after ${(performance.now() - started).toFixed(0)} ms`);

          const restarted = await s.statusWhen(dying, (st) => statusOf(st, "c").restartCount! >= 1);
          console.log(`  liveness restart after ${(performance.now() - started).toFixed(0)} ms`);
          assert.ok(statusOf(restarted, "c").lastState?.terminated, "the killed run is lastState");
          const reasons = s.events.filter((e) => e.pod === "dying").map((e) => e.reason);
          assert.ok(reasons.includes("Unhealthy") && reasons.includes("Killing"), reasons.join());
          assert.ok(
            s.events.some((e) =>
              e.pod === "dying" && /Liveness probe failed: dial tcp/.test(e.message)
            ),
          );
          await Promise.all([ready, dying].map((p) => s.runtime.terminate(p.metadata!.uid!)));
        },
      );

      await t.step("stop: SIGTERM, then SIGKILL after terminationGracePeriodSeconds", async () => {
        const p = s.run(pod("stopping", "terminationGracePeriodSeconds: 2", [
          container(
            "polite",
            "trap 'echo term >> /shared/polite; exit 0' TERM; touch /shared/polite-ready; " +
              "while :; do sleep 0.1; done",
          ),
          container(
            "stubborn",
            "trap 'echo term >> /shared/stubborn' TERM; touch /shared/stubborn-ready; " +
              "while :; do sleep 0.1; done",
          ),
        ]));
        const dir = emptyDirPath(s, p, "shared");
        await s.until("both traps set", async () => {
          const ready = await Promise.all(
            ["polite", "stubborn"].map((n) =>
              Deno.stat(`${dir}/${n}-ready`).then(() => true, () => false)
            ),
          );
          return ready.every(Boolean) ? true : undefined;
        });
        const [polite, stubborn] = [unitOf(p, "polite"), unitOf(p, "stubborn")];
        const runs = await Promise.all([polite, stubborn].map((u) => s.props(u)));
        const started = performance.now();
        await s.runtime.terminate(p.metadata!.uid!);
        const took = performance.now() - started;

        const [politeEnd, stubbornEnd] = await Promise.all(
          [polite, stubborn].map((u, i) => endOf(s, u, runs[i])),
        );
        const secs = (end: UnitProperties, run: UnitProperties) =>
          ((end.ExecMainExitTimestamp - run.ExecMainStartTimestamp) / 1e6).toFixed(2);
        console.log(
          `  terminate took ${took.toFixed(0)} ms; polite exited ${
            secs(politeEnd, runs[0])
          } s after start, stubborn ${secs(stubbornEnd, runs[1])} s`,
        );
        // The trap ran and the shell exited 0 on SIGTERM.
        assert.deepEqual(
          [politeEnd.Result, politeEnd.ExecMainCode, politeEnd.ExecMainStatus],
          ["success", CLD_EXITED, 0],
        );
        // SIGTERM arrived (the trap ran) and was survived; systemd's stop timeout then SIGKILLed.
        assert.deepEqual(
          [stubbornEnd.Result, stubbornEnd.ExecMainCode, stubbornEnd.ExecMainStatus],
          ["timeout", CLD_KILLED, 9],
        );
        // A stop timeout is TimeoutStopSec= = the grace period: the kill came ≥ 2 s after the stop.
        assert.ok(stubbornEnd.ExecMainExitTimestamp - politeEnd.ExecMainExitTimestamp >= 1_500_000);
        // Gone: unit files, units and the pod's directory.
        for (const unit of [polite, stubborn]) {
          assert.equal((await s.props(unit)).LoadState, "not-found");
        }
        assert.equal(await Deno.stat(`${s.stateDir}/${p.metadata!.uid}`).catch(() => null), null);
      });

      await t.step("a deletion's shorter grace period SIGKILLs at its own deadline", async () => {
        const p = s.run(pod("hurried", "terminationGracePeriodSeconds: 30", [
          container("stubborn", "trap '' TERM; touch /shared/ready; while :; do sleep 0.1; done"),
        ]));
        const unit = unitOf(p, "stubborn");
        await s.until(
          "trap set",
          () =>
            Deno.stat(`${emptyDirPath(s, p, "shared")}/ready`).then(() => true, () => undefined),
        );
        const run = await s.props(unit);
        const started = performance.now();
        await s.runtime.terminate(p.metadata!.uid!, 1);
        console.log(
          `  terminate with a 1 s grace took ${(performance.now() - started).toFixed(0)} ms`,
        );
        const end = await endOf(s, unit, run);
        // Killed by the runtime's SIGKILL, not by systemd's 30 s stop timeout.
        assert.deepEqual([end.ExecMainCode, end.ExecMainStatus], [CLD_KILLED, 9]);
        assert.notEqual(end.Result, "timeout");
      });

      await t.step(
        "a memory-limit kill: systemd says SIGKILL, the status says OOMKilled",
        async () => {
          const p = s.run(`
kind: Pod
metadata: {name: hog}
spec:
  restartPolicy: Never
  containers:
    - name: hog
      image: /usr/bin/perl
      command: [/usr/bin/perl, -e, '$x = "a" x 400_000_000']
      resources: {limits: {memory: 32Mi}}
`);
          const status = await s.statusWhen(
            p,
            (st) => statusOf(st, "hog").state?.terminated?.reason === "OOMKilled",
          );
          assert.equal(status.phase, "Failed");
          assert.equal(statusOf(status, "hog").state?.terminated?.exitCode, 137);
          // What systemd 252 itself reports on this cgroup v1 memory controller.
          const props = await s.props(unitOf(p, "hog"));
          assert.deepEqual(
            [props.Result, props.ExecMainCode, props.ExecMainStatus],
            ["signal", CLD_KILLED, 9],
          );
        },
      );
    }, { backoffBaseMs: 200, backoffMaxMs: 400 });
  },
});

Deno.test({
  name: "health: a unit whose change signals are lost reads as stale, with systemd's state",
  ...SYSTEM_TEST,
  async fn() {
    let deaf = false;
    await withPodSystem(async (s) => {
      const p = s.run(pod("deaf", "restartPolicy: Never", [container("c", "exec sleep infinity")]));
      const unit = unitOf(p, "c");
      await s.until(
        "the unit active, as heard",
        () =>
          s.changes.some((c) => c.unit === unit && c.props.ActiveState === "active") || undefined,
      );
      assert.deepEqual(await s.runtime.staleUnits(), []);
      deaf = true;
      await s.sd.exec(["systemctl", "kill", "--signal=KILL", unit]);
      const stale = await s.until("the killed unit to read as stale", async () => {
        const found = await s.runtime.staleUnits();
        return found.length ? found : undefined;
      });
      assert.deepEqual(stale, [`${unit} is failed in systemd, active as last heard`]);
    }, {
      // The runtime hears no change after `deaf`, as when systemd's signals stop arriving.
      units: (real) => ({
        ...real,
        onChange: (listener) => real.onChange((unit, props) => deaf || listener(unit, props)),
      }),
    });
  },
});
