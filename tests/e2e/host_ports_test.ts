/**
 * End to end, host ports: every pod uses the node's network, so a pod declaring a port that a
 * running pod declares is refused at admission (Failed, `NodePorts`, naming the port and the
 * other pod) and the running pod goes on untouched; `hostNetwork: true` pods get `hostPort`
 * defaulted by the API, so the scheduler keeps a second one off the node; after a restart of
 * systemk the older of two pods waiting for the same port wins. Real control plane, real
 * systemd, real listeners.
 */
import assert from "node:assert/strict";
import type { CoreV1Event, V1Pod } from "@kubernetes/client-node";
import { freePorts } from "../harness/cluster.ts";
import { podEvents, startNodeEnv, waitFor, waitForPod } from "./_node_env.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };

/** A pod whose container serves HTTP on `port` (all addresses), on node n1 unless scheduled. */
function server(
  name: string,
  port: number,
  extra: { hostNetwork?: boolean; scheduled?: boolean } = {},
) {
  return {
    apiVersion: "v1",
    kind: "Pod",
    metadata: { name, namespace: "default" },
    spec: {
      ...(extra.scheduled ? {} : { nodeName: "n1" }),
      ...(extra.hostNetwork ? { hostNetwork: true } : {}),
      terminationGracePeriodSeconds: 2,
      containers: [{
        name: "web",
        image: "/usr/bin/python3",
        command: ["/usr/bin/python3", "-m", "http.server", String(port), "--bind", "0.0.0.0"],
        ports: [{ name: "http", containerPort: port }],
      }],
    },
  };
}

const unitOf = (name: string) => `systemk.default.${name}.web.service`;
const running = (p: V1Pod) => p.status?.containerStatuses?.[0]?.state?.running !== undefined;
const rejected = (p: V1Pod) => p.status?.phase === "Failed" && p.status.reason === "NodePorts";
const NODE_PORTS = "Pod was rejected: Predicate NodePorts failed: node(s) didn't have free " +
  "ports for the requested pod ports: ";

/** Whether something answers HTTP on 127.0.0.1:`port`. */
async function answers(port: number): Promise<boolean> {
  try {
    const response = await fetch(`http://127.0.0.1:${port}/`);
    await response.body?.cancel();
    return response.ok;
  } catch {
    return false;
  }
}

Deno.test(
  "host ports end to end: conflicts refused at admission, the running pod untouched",
  opts,
  async (t) => {
    const [port, hostNetworkPort, restartPort] = freePorts("127.0.0.1", 3);
    const env = await startNodeEnv();
    try {
      await t.step(
        "a second pod on a running pod's port is rejected; the first goes on",
        async () => {
          await env.apply(server("first", port));
          await waitForPod(env, "first", "running", running);
          await waitFor("first to serve", () => answers(port));
          const invocation = await env.unitProperty(unitOf("first"), "InvocationID");

          await env.apply(server("second", port));
          const second = await waitForPod(env, "second", "rejected", rejected);
          assert.equal(
            second.status!.message,
            `${NODE_PORTS}TCP port ${port} of container "web" is used by pod default/first ` +
              `(container "web")`,
          );
          // Never created: no container statuses (kubectl shows NodePorts), no unit.
          assert.equal(second.status!.containerStatuses, undefined);
          const events = await podEvents(env, "second");
          assert.ok(
            events.some((e: CoreV1Event) =>
              e.type === "Warning" && e.reason === "NodePorts" &&
              e.message?.includes(`port ${port}`)
            ),
            events.map((e) => `${e.reason}: ${e.message}`).join("\n"),
          );
          assert.ok(
            !(await env.units()).includes(unitOf("second")),
            "the rejected pod has no unit",
          );
          const row = await env.kubectl(["get", "pod", "second", "--no-headers"]);
          assert.match(row, /\bNodePorts\b/, row);

          // The running pod is not disturbed: same run, no restart, still serving.
          const first = await waitForPod(env, "first", "running", running);
          assert.equal(first.status!.containerStatuses![0].restartCount, 0);
          assert.equal(await env.unitProperty(unitOf("first"), "InvocationID"), invocation);
          assert.equal(await answers(port), true);

          // Once the first pod is gone, a new pod may have the port (the rejected one stays Failed).
          await env.kubectl(["delete", "pod", "first", "--wait=true"]);
          await env.apply(server("third", port));
          await waitForPod(env, "third", "running", running);
          await waitFor("third to serve", () => answers(port));
          assert.equal((await env.getJSON<V1Pod>(["pod", "second"]))!.status!.reason, "NodePorts");
        },
      );

      await t.step(
        "hostNetwork pods: hostPort defaulted, seen by the scheduler and by systemk",
        async () => {
          // Scheduled: the API defaults hostPort to containerPort; systemk runs it as any pod.
          await env.apply(
            server("hn-one", hostNetworkPort, { hostNetwork: true, scheduled: true }),
          );
          const one = await waitForPod(env, "hn-one", "running", running);
          assert.equal(one.spec!.nodeName, "n1");
          assert.equal(one.spec!.containers[0].ports![0].hostPort, hostNetworkPort);
          await waitFor("hn-one to serve", () => answers(hostNetworkPort));

          // A second one is kept off the node by the scheduler's NodePorts filter.
          await env.apply(
            server("hn-two", hostNetworkPort, { hostNetwork: true, scheduled: true }),
          );
          await waitFor("hn-two to be unschedulable", async () => {
            const events = await podEvents(env, "hn-two");
            return events.some((e) =>
              e.reason === "FailedScheduling" &&
              e.message?.includes("didn't have free ports for the requested pod ports")
            );
          });
          const two = await env.getJSON<V1Pod>(["pod", "hn-two"]);
          assert.equal(two!.status!.phase, "Pending");
          assert.equal(two!.spec!.nodeName, undefined);

          // Bound to the node directly (past the scheduler): systemk refuses it.
          await env.apply(server("hn-three", hostNetworkPort, { hostNetwork: true }));
          const three = await waitForPod(env, "hn-three", "rejected", rejected);
          assert.match(three.status!.message!, /used by pod default\/hn-one/);
          assert.equal(await answers(hostNetworkPort), true);
          await env.kubectl(["delete", "pod", "hn-two", "--wait=false"]);
        },
      );

      await t.step("after a restart of systemk: the older of two waiting pods wins", async () => {
        await env.stopAgent();
        // Created while systemk is down, a second apart (creation times have whole seconds),
        // the older one last in name order: the listing alone would admit the newer one.
        await env.apply(server("zz-older", restartPort));
        const older = await env.getJSON<V1Pod>(["pod", "zz-older"]);
        const created = new Date(older!.metadata!.creationTimestamp!).getTime();
        await waitFor("the next second", () => Promise.resolve(Date.now() >= created + 1500));
        await env.apply(server("aa-newer", restartPort));
        await env.startAgent();
        await waitForPod(env, "zz-older", "running", running);
        const newer = await waitForPod(env, "aa-newer", "rejected", rejected);
        assert.match(newer.status!.message!, /used by pod default\/zz-older/);
        await waitFor("zz-older to serve", () => answers(restartPort));
        // Pods admitted before the restart are adopted, not re-judged: third still runs as it did.
        const third = await waitForPod(env, "third", "running", running);
        assert.equal(third.status!.containerStatuses![0].restartCount, 0);
        const second = await env.getJSON<V1Pod>(["pod", "second"]);
        assert.equal(second!.status!.reason, "NodePorts");
        assert.equal(second!.status!.containerStatuses, undefined, "read back the same");
      });
    } finally {
      await env.stop();
    }
  },
);
