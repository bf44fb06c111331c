/**
 * End to end on a node with an address of its own (a veth link, see tests/harness/network.ts):
 * a readiness probe drives the pod's Ready condition and the Service's EndpointSlice, a hung
 * process is killed by its liveness probe and restarted. The test flips the servers' health
 * over HTTP from the host, through the link.
 */
import assert from "node:assert/strict";
import type { CoreV1Event, V1EndpointSlice, V1Pod } from "@kubernetes/client-node";
import { describeNode, type NodeEnv, startNodeEnv, waitFor, waitForPod } from "./_node_env.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };

/**
 * A tiny HTTP server (`python3 -c SERVER PORT`): `/healthz` answers 200 while healthy and 503
 * after `/fail`, until `/ok`; `/hang` blocks the single-threaded server for good, so every
 * later request times out, as with a deadlocked process.
 */
const SERVER = `
import http.server, sys, time
healthy = True
class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        global healthy
        if self.path == "/hang":
            time.sleep(86400)
        healthy = {"/fail": False, "/ok": True}.get(self.path, healthy)
        self.send_response(200 if healthy or self.path != "/healthz" else 503)
        self.end_headers()
    def log_message(self, *args):
        pass
http.server.HTTPServer(("", int(sys.argv[1])), Handler).serve_forever()
`;

/** A container running {@link SERVER} on `port`, with the given probes. */
function server(port: number, probes: Record<string, unknown>) {
  return {
    name: "web",
    image: "/usr/bin/python3",
    command: ["/usr/bin/python3", "-c", SERVER, String(port)],
    ports: [{ name: "http", containerPort: port }],
    ...probes,
  };
}

/** Asks the server of pod IP `ip` to change (`/fail`, `/ok`, `/hang`), from the host. */
async function tell(ip: string, port: number, path: string): Promise<void> {
  const response = await fetch(`http://${ip}:${port}${path}`);
  await response.body?.cancel();
  assert.equal(response.status, 200);
}

/** The type=status of each of the pod's conditions, e.g. `{Ready: "True"}`. */
function conditions(pod: V1Pod): Record<string, string> {
  return Object.fromEntries((pod.status?.conditions ?? []).map((c) => [c.type, c.status]));
}

/** The endpoints of Service `service`'s EndpointSlices, as `address=ready` strings. */
async function endpoints(env: NodeEnv, service: string): Promise<string[]> {
  const slices = await env.getJSON<{ items: V1EndpointSlice[] }>(
    ["endpointslices", "-l", `kubernetes.io/service-name=${service}`],
  );
  return (slices?.items ?? []).flatMap((s) =>
    (s.endpoints ?? []).map((e) => `${e.addresses.join(",")}=${e.conditions?.ready}`)
  );
}

Deno.test("probes end to end on a node with its own address", opts, async (t) => {
  const started = performance.now();
  const env = await startNodeEnv({ network: "veth" });
  console.log(`  environment up in ${(performance.now() - started) | 0} ms (node ${env.nodeIP})`);
  try {
    await t.step("the node's InternalIP is the link's node end", async () => {
      const node = await waitFor("node n1", () => env.getJSON<{ status: unknown }>(["node", "n1"]));
      const addresses = (node.status as { addresses?: { type: string; address: string }[] })
        .addresses ?? [];
      assert.ok(addresses.some((a) => a.type === "InternalIP" && a.address === env.nodeIP));
      // The apiserver advertises the link's host end: the `kubernetes` Service's endpoint.
      const found = await waitFor("the kubernetes Service's endpoint", async () => {
        const list = await endpoints(env, "kubernetes");
        return list.length > 0 ? list : undefined;
      });
      assert.deepEqual(found, [`${env.system.network?.hostAddress}=true`]);
    });

    await t.step(
      "readiness drives the pod's Ready condition and the Service's endpoints",
      async () => {
        const port = 8080;
        await env.apply(
          {
            apiVersion: "apps/v1",
            kind: "Deployment",
            metadata: { name: "web", namespace: "default" },
            spec: {
              replicas: 1,
              selector: { matchLabels: { app: "web" } },
              template: {
                metadata: { labels: { app: "web" } },
                spec: {
                  terminationGracePeriodSeconds: 2,
                  containers: [server(port, {
                    readinessProbe: {
                      httpGet: { path: "/healthz", port: "http" },
                      periodSeconds: 1,
                      failureThreshold: 1,
                    },
                  })],
                },
              },
            },
          },
          {
            apiVersion: "v1",
            kind: "Service",
            metadata: { name: "web", namespace: "default" },
            spec: { selector: { app: "web" }, ports: [{ port: 80, targetPort: "http" }] },
          },
        );
        const [name] = await waitFor("the Deployment's pod", async () => {
          const pods = await env.getJSON<{ items: V1Pod[] }>(["pods", "-l", "app=web"]);
          return pods?.items.length ? pods.items.map((p) => p.metadata!.name!) : undefined;
        });
        const phase = (what: string, ready: "True" | "False") =>
          Promise.all([
            waitForPod(env, name, `${what}: Ready and ContainersReady ${ready}`, (p) => {
              const c = conditions(p);
              return c.Ready === ready && c.ContainersReady === ready;
            }),
            waitFor(
              `${what}: the Service's endpoint ready=${ready === "True"}`,
              async () => {
                const found = await endpoints(env, "web");
                return found.length === 1 && found[0] === `${env.nodeIP}=${ready === "True"}`;
              },
              60_000,
              async () =>
                `endpoints: ${await endpoints(env, "web")}\n${await describeNode(env, name)}`,
            ),
          ]);
        const t0 = performance.now();
        const [pod] = await phase("started", "True");
        assert.equal(pod.status?.podIP, env.nodeIP);
        console.log(`  ready and endpoint ready after ${(performance.now() - t0) | 0} ms`);

        const t1 = performance.now();
        await tell(env.nodeIP, port, "/fail");
        await phase("failing", "False");
        console.log(
          `  not ready, endpoint not ready ${(performance.now() - t1) | 0} ms after /fail`,
        );

        const t2 = performance.now();
        await tell(env.nodeIP, port, "/ok");
        const [again] = await phase("healthy again", "True");
        console.log(`  ready again ${(performance.now() - t2) | 0} ms after /ok`);
        // The probe, not a restart, flipped it.
        assert.equal(again.status?.containerStatuses?.[0]?.restartCount, 0);
        await env.kubectl(["delete", "deployment", "web", "--wait=false"]);
      },
    );

    await t.step(
      "a hung process fails its liveness probe and is killed and restarted",
      async () => {
        const port = 8081;
        await env.apply({
          apiVersion: "v1",
          kind: "Pod",
          metadata: { name: "hung", namespace: "default" },
          spec: {
            nodeName: "n1",
            terminationGracePeriodSeconds: 2,
            containers: [server(port, {
              livenessProbe: {
                httpGet: { path: "/healthz", port: "http" },
                periodSeconds: 1,
                timeoutSeconds: 1,
                failureThreshold: 2,
              },
            })],
          },
        });
        const unit = "systemk.default.hung.web.service";
        // Answering from the host: the run that hangs is past its start (a server slow to start
        // under load could fail its probe before, a restart this test does not count).
        await waitFor(
          "the server answering",
          () => tell(env.nodeIP, port, "/healthz").then(() => true),
        );
        const firstRun = await env.unitProperty(unit, "InvocationID");
        assert.match(firstRun, /^[0-9a-f]{32}$/);
        const before = (await waitForPod(env, "hung", "running", (p) =>
          !!p.status?.containerStatuses?.[0]?.state?.running)).status!.containerStatuses![0]
          .restartCount;
        // The request never gets an answer: the server hangs in it.
        fetch(`http://${env.nodeIP}:${port}/hang`, { signal: AbortSignal.timeout(30_000) })
          .then((r) =>
            r.body?.cancel(), () => {});
        const t0 = performance.now();
        const restarted = await waitForPod(
          env,
          "hung",
          "restarted and running again",
          (p) => {
            const status = p.status?.containerStatuses?.[0];
            return (status?.restartCount ?? 0) > before && !!status?.state?.running;
          },
        );
        console.log(`  killed and running again after ${(performance.now() - t0) | 0} ms`);
        assert.equal(restarted.status?.containerStatuses?.[0]?.restartCount, before + 1);
        assert.ok(restarted.status?.containerStatuses?.[0]?.lastState?.terminated);
        const secondRun = await env.unitProperty(unit, "InvocationID");
        assert.match(secondRun, /^[0-9a-f]{32}$/);
        assert.notEqual(secondRun, firstRun);
        // The new run answers again (once Python listens).
        await waitFor("the new run answering", () =>
          tell(env.nodeIP, port, "/healthz").then(() =>
            true
          ));

        const events = (await env.getJSON<{ items: CoreV1Event[] }>([
          "events",
          "--field-selector",
          "involvedObject.name=hung",
        ]))?.items ?? [];
        const first = (reason: string) => {
          const found = events.filter((e) =>
            e.reason === reason
          );
          assert.ok(
            found.length > 0,
            `a ${reason} event in ${
              events.map((e) => e.reason)
            }`,
          );
          return Math.min(
            ...found.map((e) => new Date(e.firstTimestamp ?? e.eventTime!).getTime()),
          );
        };
        assert.ok(
          events.some((e) =>
            e.reason === "Unhealthy" && /^Liveness probe failed: /.test(e.message ?? "")
          ),
        );
        assert.ok(
          events.some((e) =>
            e.reason === "Killing" &&
            /failed liveness probe, will be restarted/.test(e.message ?? "")
          ),
        );
        assert.ok(first("Unhealthy") <= first("Killing"), "Unhealthy, then Killing");
        await env.kubectl(["delete", "pod", "hung", "--wait=false"]);
      },
    );
  } finally {
    await env.stop();
  }
});
