/**
 * Sidecar and ephemeral containers under the real systemd 252, driven by systemk's runtime over
 * D-Bus: sidecars start in init order, what follows one waits for its startup probe, they
 * restart (crash-loop back-off) without disturbing the others, stop after the app containers in
 * reverse order, and a Job-like pod completes when its app container does; ephemeral containers
 * run once, alone or inside their target (its private /tmp, its user), and one asking for stdin
 * is refused with a reason. What is asserted is what the containers wrote, what systemd reports
 * and the pod status computed from it; times are printed, never asserted.
 *
 * @module
 */
import assert from "node:assert/strict";
import type { V1ContainerStatus, V1Pod, V1PodStatus } from "@kubernetes/client-node";
import { parseManifests } from "../../src/plan/mod.ts";
import { freePorts } from "../harness/cluster.ts";
import { emptyDirPath, type PodSystem, SYSTEM_TEST, unitOf, withPodSystem } from "./_pods.ts";

/** A shell line appending `what` to /shared/order. */
const stamp = (what: string) => `echo '${what}' >> /shared/order`;

/** A container `name` running `script` with the pod's emptyDir at /shared. */
function container(name: string, script: string, extra: Record<string, unknown> = {}) {
  return {
    name,
    image: "/bin/sh",
    command: ["/bin/sh", "-c", script],
    volumeMounts: [{ name: "shared", mountPath: "/shared" }],
    ...extra,
  };
}

/**
 * A long-running container script: its name in /shared/order when it runs; on SIGTERM
 * `<name> stopping` and, `linger` seconds later, `<name> stopped` on its output (the journal:
 * the pod's files are gone once it is deleted).
 */
function service(name: string, linger = 0) {
  return `trap 'echo ${name} stopping; sleep ${linger}; echo ${name} stopped; exit 0' TERM; ` +
    `${stamp(name)}; while true; do sleep 0.1; done`;
}

/** What the units of `containers` wrote to the journal, in time order. */
async function journal(s: PodSystem, p: V1Pod, containers: string[]): Promise<string[]> {
  const units = containers.flatMap((c) => ["-u", unitOf(p, c)]);
  const out = await s.sd.exec(["journalctl", "--no-pager", "-o", "cat", ...units]);
  return out.stdout.split("\n").filter((l) => l !== "");
}

/** A pod of manifest fields with an emptyDir `shared`. */
function pod(name: string, spec: Record<string, unknown>): V1Pod {
  return parseManifests(JSON.stringify({
    kind: "Pod",
    metadata: { name },
    spec: { volumes: [{ name: "shared", emptyDir: {} }], ...spec },
  })).pods[0];
}

const order = async (s: PodSystem, p: V1Pod) =>
  (await Deno.readTextFile(`${emptyDirPath(s, p, "shared")}/order`).catch(() => ""))
    .split("\n").filter((l) => l !== "");

const statusOf = (status: V1PodStatus, name: string): V1ContainerStatus | undefined =>
  [
    ...(status.initContainerStatuses ?? []),
    ...(status.containerStatuses ?? []),
    ...(status.ephemeralContainerStatuses ?? []),
  ].find((c) => c.name === name);

Deno.test({
  name: "sidecars under systemd: init order, startup gate, restarts, stop order, Job completion",
  ...SYSTEM_TEST,
  async fn(t) {
    await withPodSystem(async (s) => {
      const [port, logsPort] = freePorts("127.0.0.1", 2);
      const p = s.run(pod("sidecars", {
        restartPolicy: "Always",
        terminationGracePeriodSeconds: 20,
        initContainers: [
          container("setup", stamp("setup")),
          // Listens only a while after it runs: its startup probe holds `migrate` back.
          container(
            "proxy",
            `${stamp("proxy running")}; sleep 1; ${stamp("proxy listening")}; ` +
              `cd /tmp && python3 -m http.server ${port} --bind 127.0.0.1 >/dev/null 2>&1 & ` +
              "trap 'echo proxy stopping; kill $!; exit 0' TERM; wait",
            {
              restartPolicy: "Always",
              startupProbe: { tcpSocket: { port }, periodSeconds: 1, failureThreshold: 30 },
              readinessProbe: { tcpSocket: { port }, periodSeconds: 1 },
            },
          ),
          container("migrate", stamp("migrate")),
          // Crashes on its first run, before it ever started: restarted, then waited for.
          container(
            "logs",
            "if [ ! -e /shared/crashed ]; then touch /shared/crashed; exit 1; fi; " +
              `cd /tmp && python3 -m http.server ${logsPort} --bind 127.0.0.1 >/dev/null 2>&1 & ` +
              service("logs"),
            {
              restartPolicy: "Always",
              startupProbe: { tcpSocket: { port: logsPort }, periodSeconds: 1 },
            },
          ),
        ],
        containers: [container("app", service("app", 1))],
      }));
      const uid = p.metadata!.uid!;

      await t.step("started in init order, each after the sidecar before it started", async () => {
        const status = await s.statusWhen(
          p,
          (st) =>
            st.phase === "Running" &&
            st.conditions?.find((c) => c.type === "Ready")?.status === "True",
        );
        // The app's line follows its start a moment later.
        const lines = await s.until("the app's line", async () => {
          const lines = await order(s, p);
          return lines.includes("app") ? lines : undefined;
        });
        assert.deepEqual(lines, [
          "setup",
          "proxy running",
          "proxy listening",
          "migrate",
          "logs",
          "app",
        ]);
        const proxy = statusOf(status, "proxy")!;
        assert.deepEqual([proxy.started, proxy.ready, proxy.restartCount], [true, true, 0]);
        assert.ok(proxy.state?.running);
        const logs = statusOf(status, "logs")!;
        assert.deepEqual([logs.started, logs.ready, logs.restartCount], [true, true, 1]);
        assert.equal(logs.lastState?.terminated?.exitCode, 1);
        assert.deepEqual(
          [statusOf(status, "setup")?.ready, statusOf(status, "migrate")?.ready],
          [true, true],
        );
        // systemd's record agrees: the app started after the sidecar's restart.
        const [logsProps, appProps] = await Promise.all([
          s.props(unitOf(p, "logs")),
          s.props(unitOf(p, "app")),
        ]);
        assert.ok(appProps.ExecMainStartTimestamp >= logsProps.ExecMainStartTimestamp);
        assert.equal(await s.systemdRestarts(unitOf(p, "logs")), 0, "systemk restarted it");
      });

      await t.step(
        "a sidecar that dies is restarted; the app container is not touched",
        async () => {
          const app = (await s.props(unitOf(p, "app"))).InvocationID;
          const proxy = (await s.props(unitOf(p, "proxy"))).InvocationID;
          await s.sd.exec(["systemctl", "kill", "--signal=SIGKILL", unitOf(p, "proxy")]);
          const status = await s.statusWhen(p, (st) => {
            const c = statusOf(st, "proxy");
            return c?.restartCount === 1 && c.ready === true;
          });
          assert.notEqual((await s.props(unitOf(p, "proxy"))).InvocationID, proxy);
          assert.equal(statusOf(status, "proxy")?.lastState?.terminated?.exitCode, 137);
          assert.equal((await s.props(unitOf(p, "app"))).InvocationID, app, "app kept running");
          assert.equal((await s.props(unitOf(p, "app"))).ActiveState, "active");
          assert.ok(
            s.events.some((e) => e.reason === "BackOff" && e.container === "proxy"),
            JSON.stringify(s.events.filter((e) => e.pod === "sidecars")),
          );
        },
      );

      await t.step("deleted: app containers stop first, then sidecars in reverse", async () => {
        await s.runtime.terminate(uid);
        const stops = (await journal(s, p, ["app", "logs", "proxy"]))
          .filter((l) => l.includes("stop"));
        // The app takes a second to stop: the sidecars' SIGTERM waits for it, then for each other.
        assert.deepEqual(stops, [
          "app stopping",
          "app stopped",
          "logs stopping",
          "logs stopped",
          "proxy stopping",
        ]);
        assert.deepEqual(
          (await Promise.all(["proxy", "logs", "app"].map((c) => s.props(unitOf(p, c)))))
            .map((u) => u.LoadState),
          ["not-found", "not-found", "not-found"],
        );
      });

      await t.step("a Job's pod completes when its app container does", async () => {
        const job = s.run(pod("job", {
          restartPolicy: "Never",
          initContainers: [container("proxy", service("proxy"), { restartPolicy: "Always" })],
          containers: [container("work", `${stamp("work")}; exit 0`)],
        }));
        const status = await s.statusWhen(job, (st) => st.phase === "Succeeded");
        assert.equal(statusOf(status, "work")?.state?.terminated?.reason, "Completed");
        const proxy = statusOf(status, "proxy")!;
        assert.ok(proxy.state?.terminated, JSON.stringify(proxy));
        assert.equal(proxy.restartCount, 0);
        // A sidecar without a startup probe counts as started once it runs: no order between.
        assert.deepEqual((await order(s, job)).sort(), ["proxy", "work"]);
        assert.deepEqual(await journal(s, job, ["proxy"]), ["proxy stopping", "proxy stopped"]);
        const props = await s.props(unitOf(job, "proxy"));
        assert.notEqual(props.ActiveState, "active", "stopped, not restarted");
        assert.equal(
          new Set(
            s.changes.filter((c) => c.unit === unitOf(job, "proxy")).map((c) =>
              c.props.InvocationID
            ).filter(Boolean),
          ).size,
          1,
          "one run only",
        );
        await s.runtime.terminate(job.metadata!.uid!);
      });
    });
  },
});

Deno.test({
  name: "ephemeral containers under systemd: run once, alone or inside their target",
  ...SYSTEM_TEST,
  async fn(t) {
    await withPodSystem(async (s) => {
      const p = s.run(pod("debugged", {
        containers: [
          container("app", `echo marker > /tmp/marker; ${service("app")}`, {
            securityContext: { runAsUser: 65534 },
          }),
        ],
      }));
      await s.statusWhen(p, (st) => st.phase === "Running" && !!statusOf(st, "app")?.ready);
      const debugged = structuredClone(p);
      debugged.spec!.ephemeralContainers = [
        { name: "dbg", image: "/bin/sh", command: ["/bin/sh", "-c", "echo debug-output; exit 3"] },
        {
          name: "peek",
          image: "/bin/sh",
          targetContainerName: "app",
          // The target's private /tmp and its user, or a distinct failure.
          command: ["/bin/sh", "-c", '[ "$(id -u)" = 65534 ] || exit 7; cat /tmp/marker'],
        },
        { name: "interactive", image: "/bin/sh", command: ["/bin/sh"], stdin: true, tty: true },
      ];
      s.runtime.sync(debugged);

      await t.step("each runs once; its end is its status", async () => {
        const status = await s.statusWhen(
          debugged,
          (st) => ["dbg", "peek"].every((c) => statusOf(st, c)?.state?.terminated),
        );
        assert.equal(statusOf(status, "dbg")?.state?.terminated?.exitCode, 3);
        assert.equal(statusOf(status, "peek")?.state?.terminated?.exitCode, 0);
        assert.deepEqual(status.ephemeralContainerStatuses?.map((c) => c.name), [
          "dbg",
          "interactive",
          "peek",
        ]);
        assert.equal(status.containerStatuses?.length, 1);
        const journal = await s.sd.exec([
          "journalctl",
          "--no-pager",
          "-o",
          "cat",
          "-u",
          unitOf(debugged, "peek"),
          "-u",
          unitOf(debugged, "dbg"),
        ]);
        assert.match(journal.stdout, /^marker$/m, "read the target's private /tmp");
        assert.match(journal.stdout, /^debug-output$/m);
        assert.equal(await s.systemdRestarts(unitOf(debugged, "dbg")), 0);
        const runs = s.changes.filter((c) => c.unit === unitOf(debugged, "dbg"))
          .map((c) => c.props.InvocationID).filter(Boolean);
        assert.equal(new Set(runs).size, 1, "never restarted");
        assert.equal(status.phase, "Running", "the pod goes on");
      });

      await t.step("stdin is refused with a reason, in its status and an event", async () => {
        const status = await s.statusWhen(
          debugged,
          (st) => statusOf(st, "interactive")?.state?.waiting?.reason !== undefined,
        );
        const waiting = statusOf(status, "interactive")!.state!.waiting!;
        assert.equal(waiting.reason, "CreateContainerConfigError");
        assert.match(waiting.message!, /stdin .* no standard input/);
        assert.ok(s.events.some((e) => e.container === "interactive" && e.reason === "Failed"));
        assert.equal((await s.props(unitOf(debugged, "interactive"))).LoadState, "not-found");
      });

      await t.step("removed with the pod", async () => {
        await s.runtime.terminate(p.metadata!.uid!);
        for (const c of ["dbg", "peek", "app"]) {
          assert.equal((await s.props(unitOf(debugged, c))).LoadState, "not-found", c);
        }
      });
    });
  },
});

Deno.test({
  name: "a failing init container after a sidecar: retried with the back-off, sidecar untouched",
  ...SYSTEM_TEST,
  async fn() {
    await withPodSystem(async (s) => {
      const p = s.run(pod("retried", {
        restartPolicy: "Always",
        initContainers: [
          container("proxy", service("proxy"), { restartPolicy: "Always" }),
          // Fails on its first two runs.
          container(
            "migrate",
            `echo x >> /shared/tries; [ "$(wc -l < /shared/tries)" -ge 3 ] && ${stamp("migrate")}`,
          ),
        ],
        containers: [container("app", service("app"))],
      }));
      await s.until(
        "migrate's first failure",
        () => s.events.some((e) => e.pod === "retried" && e.reason === "BackOff") || undefined,
      );
      const proxy = (await s.props(unitOf(p, "proxy"))).InvocationID;
      // A sync while the retry waits (a label changed) must not lose the retry.
      s.runtime.sync({ ...p, metadata: { ...p.metadata, labels: { changed: "yes" } } });
      const status = await s.statusWhen(p, (st) => !!statusOf(st, "app")?.state?.running);
      const lines = await s.until("the app's line", async () => {
        const lines = await order(s, p);
        return lines.includes("app") ? lines : undefined;
      });
      assert.deepEqual(lines, ["proxy", "migrate", "app"]);
      assert.equal(statusOf(status, "migrate")?.restartCount, 2);
      assert.equal((await s.props(unitOf(p, "proxy"))).InvocationID, proxy, "sidecar kept");
      assert.equal(statusOf(status, "proxy")?.restartCount, 0);
      await s.runtime.terminate(p.metadata!.uid!);
    }, { backoffBaseMs: 300 });
  },
});
