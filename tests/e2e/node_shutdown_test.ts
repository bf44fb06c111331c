/**
 * End to end, a graceful node shutdown: systemk holds logind's delay lock; `systemctl reboot`
 * in the test systemd makes the real logind send `PrepareForShutdown`; the node goes NotReady
 * ("node is shutting down"), regular pods stop first and the critical pod last, each with its
 * preStop hook before SIGTERM, all ending Failed/`Terminated` with the kubelet's message and a
 * `DisruptionTarget`, a pod arriving meanwhile is rejected (`NodeShutdown`), and systemk lets
 * go of its lock. The test holds a delay lock of its own meanwhile, so it can look at the
 * machine before the reboot goes on (logind waits for every delay lock, at most
 * `InhibitDelayMaxSec`, which systemk raised to --shutdown-grace-period).
 *
 * Then the machine comes back (a fresh test systemd: /run empty, no unit): the pods ended by
 * the shutdown stay Failed and nothing of them starts, the Deployment's replacement runs, and
 * after a power cut (no shutdown at all) a running pod is started again, its lost run counted.
 */
import assert from "node:assert/strict";
import type { CoreV1Event, V1Node, V1Pod, V1PodList } from "@kubernetes/client-node";
import { type NodeEnv, podEvents, startNodeEnv, waitFor, waitForPod } from "./_node_env.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };
const SHUTDOWN_MESSAGE = "Pod was terminated in response to imminent node shutdown.";
const SHARED = "/srv/shutdown";

/** A shell main process that writes to SHARED/order when SIGTERM reaches it. */
function container(name: string) {
  const note = (what: string) => `echo "${name} ${what}" >> ${SHARED}/order`;
  return {
    name: "main",
    image: "/bin/sh",
    command: ["/bin/sh", "-c", `trap '${note("TERM")}; exit 0' TERM; while :; do sleep 0.1; done`],
    volumeMounts: [{ name: "shared", mountPath: SHARED }],
    lifecycle: { preStop: { exec: { command: ["/bin/sh", "-c", note("preStop")] } } },
  };
}

function pod(name: string, namespace: string, spec: Record<string, unknown> = {}) {
  return {
    apiVersion: "v1",
    kind: "Pod",
    metadata: { name, namespace },
    spec: {
      nodeName: "n1",
      terminationGracePeriodSeconds: 10,
      containers: [container(name)],
      volumes: [{ name: "shared", hostPath: { path: SHARED } }],
      ...spec,
    },
  };
}

const DEPLOYMENT = {
  apiVersion: "apps/v1",
  kind: "Deployment",
  metadata: { name: "app", namespace: "default" },
  spec: {
    replicas: 1,
    selector: { matchLabels: { app: "app" } },
    template: {
      metadata: { labels: { app: "app" } },
      spec: {
        terminationGracePeriodSeconds: 2,
        containers: [{ name: "main", image: "/bin/sleep", command: ["/bin/sleep", "infinity"] }],
      },
    },
  },
};

const running = (p: V1Pod) => p.status?.containerStatuses?.[0]?.state?.running !== undefined;
const terminated = (p: V1Pod) => p.status?.phase === "Failed" && p.status.reason === "Terminated";

async function readyCondition(env: NodeEnv) {
  const node = await env.getJSON<V1Node>(["node", "n1"]);
  return node?.status?.conditions?.find((c) => c.type === "Ready");
}

/** Who holds delay locks on shutdown in the test systemd (`systemd-inhibit --list`). */
async function inhibitors(env: NodeEnv): Promise<string[]> {
  const out = await env.system.exec(["systemd-inhibit", "--list", "--no-legend", "--no-pager"]);
  return out.stdout.trim().split("\n").filter(Boolean).map((line) => line.trim().split(/\s+/)[0]);
}

/** The app pods of the Deployment, as the API shows them. */
async function appPods(env: NodeEnv): Promise<V1Pod[]> {
  return (await env.getJSON<V1PodList>(["pods", "-l", "app=app"]))?.items ?? [];
}

Deno.test(
  "graceful node shutdown end to end: PrepareForShutdown, pods Terminated, reboot",
  opts,
  async (t) => {
    const env = await startNodeEnv({
      flags: [
        "--shutdown-grace-period=120s",
        "--shutdown-grace-period-critical-pods=30s",
        `--allowed-host-paths=${SHARED}`,
      ],
    });
    let appBefore = "";
    try {
      await t.step("systemk holds logind's delay lock, logind waits long enough", async () => {
        await waitFor("systemk's lock", async () => (await inhibitors(env)).includes("systemk"));
        const delay = await env.system.exec([
          "busctl",
          "get-property",
          "org.freedesktop.login1",
          "/org/freedesktop/login1",
          "org.freedesktop.login1.Manager",
          "InhibitDelayMaxUSec",
        ]);
        assert.equal(delay.stdout.trim(), "t 120000000", "raised from logind's default 5 s");
        const dropIn = await env.system.exec(["cat", "/etc/systemd/logind.conf.d/99-systemk.conf"]);
        assert.match(dropIn.stdout, /^InhibitDelayMaxSec=120$/m);
      });

      await t.step(
        "a reboot: NotReady, regular pods then the critical one, Terminated",
        async () => {
          assert.equal((await env.system.exec(["mkdir", "-p", SHARED])).code, 0);
          await env.apply(
            pod("web", "default"),
            pod("dns", "kube-system", { priorityClassName: "system-node-critical" }),
            DEPLOYMENT,
          );
          await waitForPod(env, "web", "running", running);
          await waitForPod(env, "dns", "running", running, { namespace: "kube-system" });
          await waitFor("the app pod to run", async () => (await appPods(env)).some(running));
          appBefore = (await appPods(env))[0].metadata!.uid!;

          // The test's own delay lock keeps the machine up while it looks (released below).
          const testLock = env.system.spawn([
            "systemd-inhibit",
            "--what=shutdown",
            "--mode=delay",
            "--who=e2e-test",
            "--why=looking at the node before it reboots",
            "cat",
          ]);
          try {
            await waitFor(
              "the test's lock",
              async () => (await inhibitors(env)).includes("e2e-test"),
            );
            const reboot = await env.system.exec(["systemctl", "reboot"]);
            assert.equal(reboot.code, 0, reboot.stderr);

            const ready = await waitFor("the node to say it shuts down", async () => {
              const c = await readyCondition(env);
              return c?.status === "False" ? c : undefined;
            });
            assert.deepEqual([ready.reason, ready.message], [
              "KubeletNotReady",
              "node is shutting down",
            ]);

            for (const [name, namespace] of [["web", "default"], ["dns", "kube-system"]]) {
              const ended = await waitForPod(env, name, "Terminated", terminated, { namespace });
              assert.equal(ended.status!.message, SHUTDOWN_MESSAGE);
              const disruption = ended.status!.conditions!.find((c) =>
                c.type === "DisruptionTarget"
              );
              assert.deepEqual(
                [disruption?.status, disruption?.reason, disruption?.message],
                ["True", "TerminationByKubelet", SHUTDOWN_MESSAGE],
              );
              assert.ok(ended.status!.containerStatuses![0].state!.terminated, `${name} stopped`);
            }
            await waitFor("the app pod to end", async () => (await appPods(env)).some(terminated));

            // preStop before SIGTERM, and the critical pod only once the regular ones are done.
            const order = (await env.system.exec(["cat", `${SHARED}/order`])).stdout.trim().split(
              "\n",
            );
            assert.deepEqual(order, ["web preStop", "web TERM", "dns preStop", "dns TERM"]);

            // A pod arriving now is rejected.
            await env.apply(pod("late", "default"));
            const late = await waitForPod(
              env,
              "late",
              "rejected",
              (p) => p.status?.phase === "Failed",
            );
            assert.deepEqual([late.status!.reason, late.status!.message], [
              "NodeShutdown",
              "Pod was rejected: Pod was rejected as the node is shutting down.",
            ]);

            const nodeEvents = await env.getJSON<{ items: CoreV1Event[] }>([
              "events",
              "--field-selector",
              "involvedObject.kind=Node,reason=NodeShutdown",
            ]);
            assert.ok(
              nodeEvents!.items.some((e) =>
                e.message === "Shutdown manager detected shutdown event"
              ),
              JSON.stringify(nodeEvents!.items.map((e) => e.message)),
            );
            // Done: systemk let go; only the test's lock holds the reboot back.
            await waitFor("systemk to release its lock", async () => {
              const holders = await inhibitors(env);
              return !holders.includes("systemk") && holders.includes("e2e-test");
            });
            assert.ok(
              (await podEvents(env, "web")).some((e) => e.reason === "Terminated"),
              "an event says why the pod ended",
            );
          } finally {
            await testLock.stdin.close().catch(() => {});
            await testLock.status;
          }
          // The real reboot of the test systemd ends its PID 1 (its own PID namespace only).
          await waitFor("the test systemd to reboot", async () => !(await env.system.alive()));
        },
      );

      await t.step(
        "after the reboot: ended pods stay Failed, the Deployment runs again",
        async () => {
          await env.reboot();
          await waitFor(
            "the node to be Ready",
            async () => (await readyCondition(env))?.status === "True",
          );
          await waitFor("a new app pod to run", async () => {
            const pods = await appPods(env);
            return pods.some((p) => p.metadata!.uid !== appBefore && running(p));
          });
          for (const [name, namespace] of [["web", "default"], ["dns", "kube-system"]]) {
            const ended = await env.getJSON<V1Pod>(["pod", name, "--namespace", namespace]);
            assert.equal(ended!.status!.reason, "Terminated", `${name} still ended`);
            assert.equal(ended!.status!.phase, "Failed");
          }
          const late = await env.getJSON<V1Pod>(["pod", "late"]);
          assert.equal(late!.status!.reason, "NodeShutdown");
          const old = (await appPods(env)).find((p) => p.metadata!.uid === appBefore);
          assert.equal(old?.status?.reason, "Terminated");
          // Nothing of the ended pods runs again: their units are not written back.
          const units = await env.units();
          assert.deepEqual(
            units.filter((u) => /^systemk\.(default\.(web|late)|kube-system\.dns)\./.test(u)),
            [],
            units.join("\n"),
          );
          assert.equal(
            units.filter((u) => u.startsWith("systemk.default.app-")).length,
            1,
            units.join("\n"),
          );
        },
      );

      await t.step(
        "after a power cut: a running pod starts again, its lost run counted",
        async () => {
          await env.apply(
            pod("survivor", "default", { volumes: [{ name: "shared", emptyDir: {} }] }),
          );
          const before = await waitForPod(env, "survivor", "running", running);
          assert.equal(before.status!.containerStatuses![0].restartCount, 0);
          await env.reboot();
          const after = await waitForPod(
            env,
            "survivor",
            "running again",
            (p) => running(p) && p.status!.containerStatuses![0].restartCount === 1,
          );
          const status = after.status!.containerStatuses![0];
          assert.equal(status.lastState?.terminated?.reason, "ContainerStatusUnknown");
          assert.notEqual(status.containerID, before.status!.containerStatuses![0].containerID);
          assert.equal(after.status!.phase, "Running");
        },
      );
    } finally {
      await env.stop();
    }
  },
);
