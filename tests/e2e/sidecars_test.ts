/**
 * End to end, the Kubernetes 1.34 workloads of issue #18 on a systemk node, with the real
 * kubectl and control plane: sidecar containers (init containers with `restartPolicy: Always`)
 * started in order and gating what follows through their startup probe, reported as the
 * kubelet reports them, stopped after the app container; a Job whose pod has a sidecar
 * completes; `kubectl debug` adds ephemeral containers (a Debian package as `--image`, alone or
 * `--target`ing a container), reported in `ephemeralContainerStatuses`, read with
 * `kubectl logs -c`, and `-i` is refused with a reason.
 */
import assert from "node:assert/strict";
import type { V1ContainerStatus, V1Job, V1Pod } from "@kubernetes/client-node";
import { freePorts } from "../harness/cluster.ts";
import { approveServingCertificate, kubeletAPIFlags } from "./_kubelet_api.ts";
import { podEvents, startNodeEnv, waitFor, waitForPod } from "./_node_env.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };

/** A container running `script` with `/bin/sh`. */
function sh(name: string, script: string, extra: Record<string, unknown> = {}) {
  return { name, image: "/bin/sh", command: ["/bin/sh", "-c", script], ...extra };
}

/** A long-running script that says `<name> stopping` on SIGTERM and ends after `linger` s. */
const service = (name: string, linger = 0) =>
  `trap 'echo ${name} stopping; sleep ${linger}; echo ${name} stopped; exit 0' TERM; ` +
  `echo ${name} running; while true; do sleep 0.1; done`;

const initStatus = (pod: V1Pod, name: string): V1ContainerStatus | undefined =>
  pod.status?.initContainerStatuses?.find((s) => s.name === name);
const ephemeralStatus = (pod: V1Pod, name: string): V1ContainerStatus | undefined =>
  pod.status?.ephemeralContainerStatuses?.find((s) => s.name === name);
const isReady = (pod: V1Pod) =>
  pod.status?.conditions?.some((c) => c.type === "Ready" && c.status === "True") === true;

Deno.test("sidecar and ephemeral containers end to end with kubectl", opts, async (t) => {
  const started = performance.now();
  // `kubectl logs` reaches systemk's kubelet API, with its serving certificate approved.
  const env = await startNodeEnv({ flags: kubeletAPIFlags(freePorts("127.0.0.1", 1)[0]) });
  console.log(`  environment up in ${(performance.now() - started) | 0} ms`);
  const logs = (pod: string, container: string) =>
    waitFor(`kubectl logs ${pod} -c ${container}`, async () => {
      const out = await env.cluster.kubectl(["logs", pod, "-c", container]);
      // Until the approved certificate is in use, the apiserver cannot verify systemk's.
      return out.code === 0 ? out.stdout : undefined;
    });
  const unit = (pod: string, container: string) => `systemk.default.${pod}.${container}.service`;
  /** What the units wrote to the journal, in time order. */
  const journal = async (pod: string, containers: string[]) => {
    const units = containers.flatMap((c) => ["-u", unit(pod, c)]);
    const out = await env.system.exec(["journalctl", "--no-pager", "-o", "cat", ...units]);
    return out.stdout.split("\n").filter((l) => l !== "");
  };
  try {
    await approveServingCertificate(env.cluster, env.nodeName);
    await t.step("a sidecar starts first; the app waits for its startup probe", async () => {
      const [port] = freePorts("127.0.0.1", 1);
      await env.apply({
        apiVersion: "v1",
        kind: "Pod",
        metadata: { name: "meshed", namespace: "default" },
        spec: {
          nodeName: env.nodeName,
          terminationGracePeriodSeconds: 15,
          initContainers: [
            sh(
              "proxy",
              "sleep 1; echo proxy listening; " +
                `cd /tmp && python3 -m http.server ${port} --bind 127.0.0.1 >/dev/null 2>&1 & ` +
                "trap 'echo proxy stopping; kill $!; exit 0' TERM; wait",
              {
                restartPolicy: "Always",
                startupProbe: { tcpSocket: { port }, periodSeconds: 1, failureThreshold: 30 },
                readinessProbe: { tcpSocket: { port }, periodSeconds: 1 },
              },
            ),
          ],
          // The app fails unless the proxy answers when it starts.
          containers: [
            sh(
              "app",
              `python3 -c 'import socket; socket.create_connection(("127.0.0.1", ${port}))' ` +
                `|| exit 9; ${service("app", 1)}`,
            ),
          ],
        },
      });
      const pod = await waitForPod(env, "meshed", "Ready", isReady);
      const proxy = initStatus(pod, "proxy")!;
      assert.deepEqual(
        [proxy.started, proxy.ready, proxy.restartCount, !!proxy.state?.running],
        [true, true, 0, true],
        JSON.stringify(proxy),
      );
      const app = pod.status!.containerStatuses![0];
      assert.deepEqual([app.restartCount, !!app.state?.running], [0, true], JSON.stringify(app));
      assert.equal(pod.status?.phase, "Running");
      assert.deepEqual(
        pod.status?.conditions?.filter((c) => c.type === "Initialized").map((c) => c.status),
        ["True"],
      );
      assert.equal(await logs("meshed", "proxy"), "proxy listening\n");
    });

    await t.step("deleted: the sidecar is stopped after the app container", async () => {
      await env.kubectl(["delete", "pod", "meshed", "--wait=true", "--timeout=60s"]);
      const stops = (await journal("meshed", ["app", "proxy"])).filter((l) => l.includes("stop"));
      assert.deepEqual(stops, ["app stopping", "app stopped", "proxy stopping"]);
    });

    await t.step("a Job whose pod has a sidecar completes when its container does", async () => {
      await env.apply({
        apiVersion: "batch/v1",
        kind: "Job",
        metadata: { name: "with-sidecar", namespace: "default" },
        spec: {
          backoffLimit: 0,
          template: {
            spec: {
              restartPolicy: "Never",
              initContainers: [sh("logger", service("logger"), { restartPolicy: "Always" })],
              containers: [sh("work", "echo working; sleep 1; echo done")],
            },
          },
        },
      });
      await waitFor("the Job to complete", async () => {
        const job = await env.getJSON<V1Job>(["job", "with-sidecar"]);
        return job?.status?.conditions?.some((c) => c.type === "Complete" && c.status === "True")
          ? job
          : undefined;
      }, 90_000);
      const pods = await env.getJSON<{ items: V1Pod[] }>(["pods", "-l", "job-name=with-sidecar"]);
      const [pod] = pods!.items;
      assert.equal(pod.status?.phase, "Succeeded");
      const logger = initStatus(pod, "logger")!;
      assert.ok(logger.state?.terminated, JSON.stringify(logger));
      assert.equal(logger.restartCount, 0);
      assert.equal(
        await logs(pod.metadata!.name!, "work"),
        "working\ndone\n",
      );
      assert.deepEqual(
        (await logs(pod.metadata!.name!, "logger")).split("\n"),
        ["logger running", "logger stopping", "logger stopped", ""],
      );
    });

    await t.step("kubectl debug: a package as the image, its output in kubectl logs", async () => {
      await env.apply({
        apiVersion: "v1",
        kind: "Pod",
        metadata: { name: "target", namespace: "default" },
        spec: {
          nodeName: env.nodeName,
          terminationGracePeriodSeconds: 2,
          containers: [
            sh("app", `echo marker > /tmp/marker; ${service("app")}`, {
              securityContext: { runAsUser: 65534 },
            }),
          ],
        },
      });
      await waitForPod(env, "target", "Ready", isReady);
      // kubectl refuses an absolute path as --image: a Debian package (installed already).
      const debug = (...args: string[]) =>
        env.kubectl([
          "debug",
          "target",
          "--image=coreutils",
          "--image-pull-policy=IfNotPresent",
          ...args,
        ]);
      await debug("-c", "dbg", "--", "/bin/sh", "-c", "echo hello from $(id -u); exit 4");
      const pod = await waitForPod(
        env,
        "target",
        "with dbg terminated",
        (p) => !!ephemeralStatus(p, "dbg")?.state?.terminated,
      );
      const dbg = ephemeralStatus(pod, "dbg")!;
      assert.equal(dbg.state?.terminated?.exitCode, 4);
      assert.equal(dbg.image, "coreutils");
      assert.equal(dbg.restartCount, 0);
      assert.equal(await logs("target", "dbg"), "hello from 0\n");
      assert.equal(pod.status?.phase, "Running", "the pod goes on");
      assert.ok(isReady(pod));
      assert.equal(pod.status?.containerStatuses?.[0].restartCount, 0, "the app is not touched");
    });

    await t.step("kubectl debug --target: inside the target, as its user", async () => {
      await env.kubectl([
        "debug",
        "target",
        "-c",
        "peek",
        "--target=app",
        "--image=coreutils",
        "--image-pull-policy=IfNotPresent",
        "--",
        "/bin/sh",
        "-c",
        "id -u; cat /tmp/marker",
      ]);
      const pod = await waitForPod(
        env,
        "target",
        "with peek terminated",
        (p) => !!ephemeralStatus(p, "peek")?.state?.terminated,
      );
      assert.equal(ephemeralStatus(pod, "peek")!.state!.terminated!.exitCode, 0);
      // The target's user and its private /tmp.
      assert.equal(await logs("target", "peek"), "65534\nmarker\n");
      assert.deepEqual(pod.status?.ephemeralContainerStatuses?.map((s) => s.name), [
        "dbg",
        "peek",
      ]);
    });

    await t.step("kubectl debug -i: refused with a reason while units have no stdin", async () => {
      const child = new Deno.Command(env.cluster.kubectlPath, {
        args: [
          `--kubeconfig=${env.cluster.adminKubeconfig}`,
          "debug",
          "target",
          "-i",
          "-c",
          "shell",
          "--image=coreutils",
          "--",
          "/bin/sh",
        ],
        stdin: "piped",
        stdout: "null",
        stderr: "piped",
      }).spawn();
      // kubectl waits for the container, printing each waiting message it sees.
      const reader = child.stderr.pipeThrough(new TextDecoderStream()).getReader();
      let said = "";
      try {
        await waitFor("kubectl to print the reason", async () => {
          const { value, done } = await reader.read();
          said += value ?? "";
          return done || /container shell: .*stdin/.test(said) ? true : undefined;
        });
      } finally {
        child.kill("SIGTERM");
        await child.status;
        await reader.cancel().catch(() => {});
      }
      assert.match(said, /no standard input/);
      const pod = (await env.getJSON<V1Pod>(["pod", "target"]))!;
      const waiting = ephemeralStatus(pod, "shell")?.state?.waiting;
      assert.equal(waiting?.reason, "CreateContainerConfigError");
      assert.match(waiting?.message ?? "", /kubectl logs -c shell/);
      const events = await podEvents(env, "target");
      assert.ok(
        events.some((e) => e.reason === "Failed" && /stdin/.test(e.message ?? "")),
        events.map((e) => `${e.reason}: ${e.message}`).join("\n"),
      );
      assert.deepEqual(await env.units().then((u) => u.filter((n) => n.includes(".shell."))), []);
    });

    await t.step("systemk restarted: ended containers stay ended, nothing runs again", async () => {
      const jobPod =
        (await env.getJSON<{ items: V1Pod[] }>(["pods", "-l", "job-name=with-sidecar"]))!
          .items[0].metadata!.name!;
      const runs = async () =>
        await Promise.all(
          [unit(jobPod, "logger"), unit("target", "dbg"), unit("target", "peek")].map((u) =>
            env.unitProperty(u, "InvocationID")
          ),
        );
      const before = await runs();
      await env.stopAgent();
      await env.startAgent();
      // One more debug container, after the restart: once it ran, systemk has followed every
      // pod it adopted (a sidecar wrongly restarted would show CrashLoopBackOff by then).
      await env.kubectl([
        "debug",
        "target",
        "-c",
        "after",
        "--image=coreutils",
        "--image-pull-policy=IfNotPresent",
        "--",
        "/bin/true",
      ]);
      const target = await waitForPod(
        env,
        "target",
        "with after terminated",
        (p) => ephemeralStatus(p, "after")?.state?.terminated?.exitCode === 0,
      );
      assert.ok(isReady(target));
      assert.equal(ephemeralStatus(target, "dbg")?.state?.terminated?.exitCode, 4);
      assert.equal(ephemeralStatus(target, "peek")?.state?.terminated?.exitCode, 0);
      assert.equal(
        ephemeralStatus(target, "shell")?.state?.waiting?.reason,
        "CreateContainerConfigError",
      );
      assert.deepEqual(await runs(), before, "no container ran again");
      const job = (await env.getJSON<V1Pod>(["pod", jobPod]))!;
      assert.equal(job.status?.phase, "Succeeded");
      assert.ok(initStatus(job, "logger")?.state?.terminated, JSON.stringify(job.status));
      const events = await podEvents(env, jobPod);
      assert.deepEqual(events.filter((e) => e.reason === "BackOff"), [], "nothing to restart");
      await env.kubectl(["delete", "pod", "target", "--wait=true", "--timeout=60s"]);
      assert.deepEqual(await env.units().then((u) => u.filter((n) => n.includes(".target."))), []);
    });
  } finally {
    await env.stop();
  }
});
