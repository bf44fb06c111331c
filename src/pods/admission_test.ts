import assert from "node:assert/strict";
import type { V1Container, V1Pod } from "@kubernetes/client-node";
import { admitHostPorts, hostPorts, rejectedStatus } from "./admission.ts";

const pod = (name: string, containers: V1Container[], initContainers?: V1Container[]): V1Pod => ({
  metadata: { namespace: "default", name },
  spec: { containers, initContainers },
});
const web = (name: string, port: number, extra: Record<string, unknown> = {}) =>
  pod(name, [{ name: "app", ports: [{ containerPort: port, ...extra }] }]);

Deno.test("host ports: every declared containerPort, TCP and every address by default", () => {
  const p = pod("p", [
    { name: "a", ports: [{ containerPort: 80 }, { containerPort: 53, protocol: "UDP" }] },
    // The process binds containerPort: a hostPort of another number maps nothing.
    { name: "b", ports: [{ containerPort: 8080, hostPort: 80, hostIP: "127.0.0.1" }] },
  ], [
    { name: "setup", ports: [{ containerPort: 9 }] },
    { name: "proxy", restartPolicy: "Always", ports: [{ containerPort: 15001 }] },
  ]);
  assert.deepEqual(hostPorts(p), [
    // A sidecar listens beside the app containers; a regular init container has ended by then.
    { protocol: "TCP", hostIP: "0.0.0.0", port: 15001, container: "proxy" },
    { protocol: "TCP", hostIP: "0.0.0.0", port: 80, container: "a" },
    { protocol: "UDP", hostIP: "0.0.0.0", port: 53, container: "a" },
    { protocol: "TCP", hostIP: "127.0.0.1", port: 8080, container: "b" },
  ]);
  assert.deepEqual(hostPorts({ spec: { containers: [{ name: "x" }] } }), []);
});

Deno.test("a port an admitted pod declares is refused, naming both pods' containers", () => {
  const rejection = admitHostPorts(web("second", 8080), [web("first", 8080)]);
  assert.deepEqual(rejection, {
    reason: "NodePorts",
    message: "Predicate NodePorts failed: node(s) didn't have free ports for the requested pod " +
      `ports: TCP port 8080 of container "app" is used by pod default/first (container "app")`,
  });
  assert.equal(
    rejectedStatus(rejection!).message,
    `Pod was rejected: ${rejection!.message}`,
  );
});

Deno.test("the scheduler's conflict rules: protocol, port and address", () => {
  const first = [web("first", 8080, { hostIP: "127.0.0.1" })];
  assert.equal(admitHostPorts(web("udp", 8080, { protocol: "UDP" }), first), undefined);
  assert.equal(admitHostPorts(web("other", 8081), first), undefined);
  assert.equal(admitHostPorts(web("elsewhere", 8080, { hostIP: "127.0.0.2" }), first), undefined);
  // Every address overlaps one address, both ways.
  assert.equal(admitHostPorts(web("all", 8080), first)?.reason, "NodePorts");
  assert.equal(
    admitHostPorts(web("one", 8080, { hostIP: "127.0.0.1" }), [web("all", 8080)])?.message
      .includes("TCP port 8080 on 127.0.0.1"),
    true,
  );
  // hostPort defaulted to containerPort (hostNetwork: true) is the same port.
  assert.equal(
    admitHostPorts(web("h", 8080, { hostPort: 8080 }), [web("c", 8080)])?.reason,
    "NodePorts",
  );
  // Pods without ports always fit.
  assert.equal(admitHostPorts(pod("none", [{ name: "x" }]), first), undefined);
});
