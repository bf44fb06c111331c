/**
 * End to end, a pod's lifecycle limits and the remaining probe kinds against a real control
 * plane and systemd: `activeDeadlineSeconds` (also across a restart of systemk), a gRPC
 * readiness probe against a real gRPC health server, an HTTPS liveness probe against a server
 * with a self-signed certificate, and a liveness probe's own `terminationGracePeriodSeconds`.
 */
import assert from "node:assert/strict";
import type { CoreV1Event, V1ContainerStateTerminated, V1Pod } from "@kubernetes/client-node";
import { freePorts } from "../harness/cluster.ts";
import { podEvents, startNodeEnv, waitFor, waitForPod } from "./_node_env.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };
const REPO = new URL("../..", import.meta.url).pathname.replace(/\/$/, "");
const DEADLINE_MESSAGE = "Pod was active on the node longer than the specified deadline";

const describeEvents = (seen: CoreV1Event[]) =>
  seen.map((e) => `${e.reason}: ${e.message}`).join("\n");

/** A pod on n1 with one container. */
function pod(name: string, spec: Record<string, unknown>, container: Record<string, unknown>) {
  return {
    apiVersion: "v1",
    kind: "Pod",
    metadata: { name, namespace: "default" },
    spec: { nodeName: "n1", ...spec, containers: [{ name: "app", ...container }] },
  };
}

const unitOf = (name: string) => `systemk.default.${name}.app.service`;
const ready = (p: V1Pod) => p.status?.containerStatuses?.[0]?.ready === true;
const isDeadlineExceeded = (p: V1Pod) =>
  p.status?.phase === "Failed" && p.status.reason === "DeadlineExceeded";

/** An HTTPS server (`python3 -c HTTPS_SERVER PORT`) with a fresh self-signed certificate:
 * `/healthz` answers 200 three times, then 500. */
const HTTPS_SERVER = `
import http.server, ssl, subprocess, sys
subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
  "-subj", "/CN=probe.invalid", "-keyout", "/tmp/key.pem", "-out", "/tmp/cert.pem"],
  check=True, capture_output=True)
answered = 0
class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        global answered
        answered += 1
        self.send_response(200 if answered <= 3 else 500)
        self.end_headers()
    def log_message(self, *args):
        pass
server = http.server.HTTPServer(("0.0.0.0", int(sys.argv[1])), Handler)
context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
context.load_cert_chain("/tmp/cert.pem", "/tmp/key.pem")
server.socket = context.wrap_socket(server.socket, server_side=True)
print("serving HTTPS", flush=True)
server.serve_forever()
`;

Deno.test(
  "pod lifecycle end to end: deadlines, gRPC and HTTPS probes, probe grace",
  opts,
  async (t) => {
    const started = performance.now();
    // The gRPC step runs the checkout's health server in a pod: the checkout is mounted into it
    // (it is hidden when it lies under /tmp, which every container gets a private copy of).
    const env = await startNodeEnv({ flags: [`--allowed-host-paths=${REPO}`] });
    console.log(`  environment up in ${(performance.now() - started) | 0} ms`);
    try {
      await t.step(
        "activeDeadlineSeconds: the pod ends Failed/DeadlineExceeded, its unit stopped",
        async () => {
          await env.apply(pod("deadline", {
            activeDeadlineSeconds: 5,
            terminationGracePeriodSeconds: 2,
          }, { image: "/bin/sleep", command: ["/bin/sleep", "infinity"] }));
          await waitForPod(env, "deadline", "Running", (p) => p.status?.phase === "Running");
          const ended = await waitForPod(
            env,
            "deadline",
            "Failed: DeadlineExceeded",
            isDeadlineExceeded,
          );
          const startTime = new Date(ended.status!.startTime!).getTime();
          console.log(`  Failed ${((Date.now() - startTime) / 1000).toFixed(1)} s after startTime`);
          assert.equal(ended.status?.message, DEADLINE_MESSAGE);
          const terminated = ended.status?.containerStatuses?.[0]?.state?.terminated;
          assert.ok(terminated, JSON.stringify(ended.status?.containerStatuses));
          assert.notEqual(await env.unitProperty(unitOf("deadline"), "ActiveState"), "active");
          const seen = await podEvents(env, "deadline");
          const deadline = seen.filter((e) => e.reason === "DeadlineExceeded");
          assert.equal(deadline.length, 1, describeEvents(seen));
          assert.equal(deadline[0].type, "Normal");
          assert.equal(deadline[0].message, DEADLINE_MESSAGE);
        },
      );

      await t.step(
        "a deadline passing while systemk is down ends the pod once it is back",
        async () => {
          await env.apply(pod("deadline-restart", {
            activeDeadlineSeconds: 8,
            terminationGracePeriodSeconds: 2,
          }, { image: "/bin/sleep", command: ["/bin/sleep", "infinity"] }));
          const running = await waitForPod(
            env,
            "deadline-restart",
            "Running",
            (p) => p.status?.phase === "Running",
          );
          await env.stopAgent();
          const deadline = new Date(running.status!.startTime!).getTime() + 8000;
          // A wait for the clock itself: the deadline must pass while no systemk runs.
          await waitFor("the deadline to pass", () => Date.now() > deadline + 1000, 30_000);
          assert.equal(
            await env.unitProperty(unitOf("deadline-restart"), "ActiveState"),
            "active",
            "nothing stopped it while systemk was down",
          );
          await env.startAgent();
          const back = performance.now();
          const ended = await waitForPod(
            env,
            "deadline-restart",
            "Failed: DeadlineExceeded",
            isDeadlineExceeded,
          );
          console.log(`  ended ${(performance.now() - back) | 0} ms after systemk came back`);
          assert.equal(ended.status?.message, DEADLINE_MESSAGE);
          await waitFor(
            "its unit stopped",
            async () =>
              await env.unitProperty(unitOf("deadline-restart"), "ActiveState") !== "active",
          );
          // The pod that ended before the restart stays ended, its unit stopped, with one event.
          const first = await env.getJSON<V1Pod>(["pod", "deadline"]);
          assert.ok(first && isDeadlineExceeded(first));
          assert.notEqual(await env.unitProperty(unitOf("deadline"), "ActiveState"), "active");
          const seen = await podEvents(env, "deadline");
          assert.equal(seen.filter((e) => e.reason === "DeadlineExceeded").length, 1);
          await env.kubectl(["delete", "pod", "deadline", "deadline-restart", "--wait=false"]);
        },
      );

      await t.step("a gRPC readiness probe follows the health service's status", async () => {
        const [port] = freePorts("127.0.0.1", 1);
        const checkout = { name: "checkout", hostPath: { path: REPO, type: "Directory" } };
        await env.apply(pod("grpc", { terminationGracePeriodSeconds: 2, volumes: [checkout] }, {
          image: "/usr/local/bin/deno",
          workingDir: REPO,
          volumeMounts: [{ name: "checkout", mountPath: REPO, readOnly: true }],
          // The container's own Deno cache: its home is hidden and the file system read-only.
          env: [{ name: "DENO_DIR", value: "/tmp/deno" }],
          command: [
            "/usr/local/bin/deno",
            "run",
            "--cached-only",
            "--allow-net",
            "--allow-env",
            "--allow-read",
            // protobufjs' file checks (through node:fs) need it under Deno.
            "--allow-sys",
            `${REPO}/tests/harness/grpc_health.ts`,
            String(port),
          ],
          readinessProbe: { grpc: { port }, periodSeconds: 1, failureThreshold: 1 },
        }));
        const t0 = performance.now();
        await waitForPod(env, "grpc", "ready (SERVING)", ready, { timeoutMs: 90_000 });
        console.log(`  ready after ${(performance.now() - t0) | 0} ms`);
        await env.system.exec(["systemctl", "kill", "--signal=SIGUSR1", unitOf("grpc")]);
        const t1 = performance.now();
        const notReady = await waitForPod(env, "grpc", "not ready (NOT_SERVING)", (p) => !ready(p));
        console.log(`  not ready ${(performance.now() - t1) | 0} ms after NOT_SERVING`);
        assert.equal(notReady.status?.containerStatuses?.[0]?.state?.running !== undefined, true);
        const seen = await podEvents(env, "grpc");
        assert.ok(
          seen.some((e) =>
            e.reason === "Unhealthy" &&
            e.message === 'Readiness probe failed: service unhealthy (responded with "NOT_SERVING")'
          ),
          describeEvents(seen),
        );
        await env.system.exec(["systemctl", "kill", "--signal=SIGUSR2", unitOf("grpc")]);
        await waitForPod(env, "grpc", "ready again (SERVING)", ready);
        await env.kubectl(["delete", "pod", "grpc", "--wait=false"]);
      });

      await t.step(
        "an HTTPS liveness probe (self-signed certificate) restarts the server",
        async () => {
          const [port] = freePorts("127.0.0.1", 1);
          await env.apply(pod("https", { terminationGracePeriodSeconds: 2 }, {
            image: "/usr/bin/python3",
            command: ["/usr/bin/python3", "-c", HTTPS_SERVER, String(port)],
            livenessProbe: {
              httpGet: { scheme: "HTTPS", port, path: "/healthz" },
              // openssl and Python start within this on a busy machine.
              initialDelaySeconds: 3,
              periodSeconds: 1,
              failureThreshold: 2,
            },
          }));
          const t0 = performance.now();
          const restarted = await waitForPod(
            env,
            "https",
            "restarted by its liveness probe",
            (p) => {
              const status = p.status?.containerStatuses?.[0];
              return (status?.restartCount ?? 0) >= 1;
            },
            { timeoutMs: 90_000 },
          );
          console.log(`  restarted after ${(performance.now() - t0) | 0} ms`);
          assert.ok(restarted.status?.containerStatuses?.[0]?.lastState?.terminated);
          const seen = await podEvents(env, "https");
          const unhealthy = seen.filter((e) => e.reason === "Unhealthy");
          // The server answered over TLS (a status code came back): 200s first, then 500s.
          assert.ok(unhealthy.length > 0, describeEvents(seen));
          assert.ok(
            unhealthy.every((e) =>
              e.message === "Liveness probe failed: HTTP probe failed with statuscode: 500"
            ),
            describeEvents(seen),
          );
          assert.ok(
            seen.some((e) =>
              e.reason === "Killing" && /failed liveness probe/.test(e.message ?? "")
            ),
            describeEvents(seen),
          );
          await env.kubectl(["delete", "pod", "https", "--wait=false"]);
        },
      );

      await t.step(
        "a liveness probe's terminationGracePeriodSeconds overrides the pod's",
        async () => {
          const [closed] = freePorts("127.0.0.1", 1);
          await env.apply(pod("grace", {
            restartPolicy: "Never",
            terminationGracePeriodSeconds: 30,
          }, {
            image: "/bin/sh",
            // SIGTERM is ignored (and stays ignored across exec): only SIGKILL ends it.
            command: ["/bin/sh", "-c", "trap '' TERM; exec sleep infinity"],
            livenessProbe: {
              tcpSocket: { port: closed },
              initialDelaySeconds: 1,
              periodSeconds: 1,
              failureThreshold: 1,
              terminationGracePeriodSeconds: 2,
            },
          }));
          const failed = await waitForPod(
            env,
            "grace",
            "killed after its liveness probe failed",
            (p) => p.status?.phase === "Failed",
          );
          const terminated = failed.status?.containerStatuses?.[0]?.state
            ?.terminated as V1ContainerStateTerminated;
          assert.equal(terminated?.exitCode, 137, JSON.stringify(terminated));
          assert.equal(terminated?.signal, 9);
          const seen = await podEvents(env, "grace");
          const killing = seen.find((e) => e.reason === "Killing");
          assert.ok(killing, describeEvents(seen));
          const killedAt = new Date(killing.firstTimestamp ?? killing.eventTime!).getTime();
          const finishedAt = new Date(terminated.finishedAt!).getTime();
          const seconds = (finishedAt - killedAt) / 1000;
          console.log(
            `  SIGKILLed ${seconds} s after the Killing event (probe grace 2 s, pod 30 s)`,
          );
          // Whole-second timestamps; the pod's own grace would have allowed 30 s.
          assert.ok(seconds < 15, `killed after ${seconds} s`);
          await env.kubectl(["delete", "pod", "grace", "--wait=false"]);
        },
      );
    } finally {
      await env.stop();
    }
  },
);
