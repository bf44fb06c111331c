import assert from "node:assert/strict";
import {
  buildNode,
  kubernetesArch,
  type MachineFacts,
  MEMORY_EVICTION_BYTES,
  nodeConditions,
  type NodeConfig,
  nodeLabelPatch,
  nodeLease,
  nodeStatus,
  nodeStatusPatch,
  statusFingerprint,
  taintMismatch,
} from "./node.ts";
import { microTime } from "./client.ts";

const config: NodeConfig = {
  name: "n1",
  hostname: "host1",
  internalIP: "10.0.0.5",
  externalIP: "203.0.113.5",
  port: 10250,
  maxPods: 110,
  disableTaint: false,
  systemdVersion: "252",
  kubeletVersion: "v1.34.0-systemk.0.1.0",
};

const GiB = 1024 ** 3;
const facts: MachineFacts = {
  arch: "amd64",
  cpus: 4,
  memoryTotalBytes: 8 * GiB,
  memoryAvailableBytes: 6 * GiB,
  fsTotalBytes: 100 * GiB,
  fsAvailableBytes: 50 * GiB,
  fsInodes: 1000,
  fsInodesFree: 500,
  processes: 300,
  processLimit: 32768,
  machineID: "m",
  systemUUID: "s",
  bootID: "b",
  kernelVersion: "6.1.0",
  osImage: "Debian GNU/Linux 12 (bookworm)",
};

const T0 = new Date("2026-01-01T00:00:00Z");
const T1 = new Date("2026-01-01T00:01:00Z");

function condition(conds: { type?: string; status?: string }[], type: string) {
  return conds.find((c) => c.type === type)?.status;
}

Deno.test("kubernetesArch maps Deno names to Kubernetes names", () => {
  assert.equal(kubernetesArch("x86_64"), "amd64");
  assert.equal(kubernetesArch("aarch64"), "arm64");
  assert.equal(kubernetesArch("riscv64"), "riscv64");
});

Deno.test("buildNode: labels (lowercase linux), taint, addresses, capacity, nodeInfo", () => {
  const node = buildNode(config, facts, T0);
  assert.deepEqual(node.metadata?.labels, {
    "kubernetes.io/os": "linux",
    "kubernetes.io/arch": "amd64",
    "kubernetes.io/hostname": "host1",
    "node.kubernetes.io/instance-type": "systemk",
  });
  assert.deepEqual(node.spec?.taints, [{
    key: "virtual-kubelet.io/provider",
    value: "systemk",
    effect: "NoSchedule",
  }]);
  assert.deepEqual(node.status?.addresses, [
    { type: "InternalIP", address: "10.0.0.5" },
    { type: "ExternalIP", address: "203.0.113.5" },
    { type: "Hostname", address: "host1" },
  ]);
  assert.deepEqual(node.status?.capacity, {
    cpu: "4",
    memory: `${8 * 1024 * 1024}Ki`,
    "ephemeral-storage": `${100 * 1024 * 1024}Ki`,
    pods: "110",
  });
  assert.equal(
    node.status?.allocatable?.memory,
    `${(8 * GiB - MEMORY_EVICTION_BYTES) / 1024}Ki`,
  );
  assert.equal(node.status?.allocatable?.["ephemeral-storage"], `${90 * 1024 * 1024}Ki`);
  assert.equal(node.status?.nodeInfo?.containerRuntimeVersion, "systemd://252");
  assert.equal(node.status?.nodeInfo?.kubeletVersion, "v1.34.0-systemk.0.1.0");
  assert.equal(node.status?.nodeInfo?.operatingSystem, "linux");
  assert.equal(node.status?.nodeInfo?.architecture, "amd64");
  assert.equal(node.status?.nodeInfo?.kubeProxyVersion, "");
  assert.equal(node.status?.daemonEndpoints?.kubeletEndpoint?.Port, 10250);
  const conds = node.status?.conditions ?? [];
  assert.deepEqual(conds.map((c) => [c.type, c.status]), [
    ["Ready", "True"],
    ["MemoryPressure", "False"],
    ["DiskPressure", "False"],
    ["PIDPressure", "False"],
    ["NetworkUnavailable", "False"],
  ]);
});

Deno.test("buildNode: --disable-taint registers untainted; one address when both are equal", () => {
  const node = buildNode(
    { ...config, disableTaint: true, externalIP: config.internalIP },
    facts,
    T0,
  );
  assert.equal(node.spec?.taints, undefined);
  assert.deepEqual(node.status?.addresses?.map((a) => a.type), ["InternalIP", "Hostname"]);
});

Deno.test("nodeConditions: pressure thresholds", () => {
  const ready = { ready: true };
  const low = nodeConditions(
    { ...facts, memoryAvailableBytes: MEMORY_EVICTION_BYTES - 1 },
    ready,
    undefined,
    T0,
  );
  assert.equal(condition(low, "MemoryPressure"), "True");
  const disk = nodeConditions({ ...facts, fsAvailableBytes: 9 * GiB }, ready, undefined, T0);
  assert.equal(condition(disk, "DiskPressure"), "True");
  const inodes = nodeConditions({ ...facts, fsInodesFree: 40 }, ready, undefined, T0);
  assert.equal(condition(inodes, "DiskPressure"), "True");
  const pids = nodeConditions({ ...facts, processes: 30000 }, ready, undefined, T0);
  assert.equal(condition(pids, "PIDPressure"), "True");
  const fine = nodeConditions(facts, ready, undefined, T0);
  for (const type of ["MemoryPressure", "DiskPressure", "PIDPressure"]) {
    assert.equal(condition(fine, type), "False", type);
  }
  const notReady = nodeConditions(facts, { ready: false, message: "systemd gone" }, undefined, T0);
  const r = notReady.find((c) => c.type === "Ready");
  assert.equal(r?.status, "False");
  assert.equal(r?.message, "systemd gone");
});

Deno.test("nodeConditions: heartbeat moves, transition time kept until status changes", () => {
  const first = nodeConditions(facts, { ready: true }, undefined, T0);
  const second = nodeConditions(facts, { ready: true }, first, T1);
  for (const c of second) {
    assert.deepEqual(c.lastHeartbeatTime, T1);
    assert.deepEqual(c.lastTransitionTime, T0, c.type);
  }
  const third = nodeConditions(facts, { ready: false }, second, T1);
  assert.deepEqual(third.find((c) => c.type === "Ready")?.lastTransitionTime, T1);
  assert.deepEqual(third.find((c) => c.type === "MemoryPressure")?.lastTransitionTime, T0);
  // Times read back from the API arrive as strings in raw JSON; they are honoured too.
  const fromApi = first.map((c) => ({ ...c, lastTransitionTime: T0.toISOString() as unknown }));
  const fourth = nodeConditions(facts, { ready: true }, fromApi as typeof first, T1);
  assert.deepEqual(fourth[0].lastTransitionTime, T0);
});

Deno.test("statusFingerprint ignores heartbeats but not changes", () => {
  const a = nodeStatus(config, facts, nodeConditions(facts, { ready: true }, undefined, T0));
  const b = nodeStatus(config, facts, nodeConditions(facts, { ready: true }, undefined, T1));
  assert.equal(statusFingerprint(a), statusFingerprint(b));
  const c = nodeStatus(
    { ...config, internalIP: "10.0.0.6" },
    facts,
    nodeConditions(facts, { ready: true }, undefined, T1),
  );
  assert.notEqual(statusFingerprint(a), statusFingerprint(c));
  const d = nodeStatus(config, facts, nodeConditions(facts, { ready: false }, undefined, T1));
  assert.notEqual(statusFingerprint(a), statusFingerprint(d));
});

Deno.test("nodeStatusPatch replaces the address list", () => {
  const status = nodeStatus(config, facts, []);
  const patch = nodeStatusPatch(status);
  const addresses = patch.status.addresses as unknown[];
  assert.deepEqual(addresses[0], { $patch: "replace" });
  assert.deepEqual(addresses.slice(1), status.addresses);
  assert.deepEqual(patch.status.capacity, status.capacity);
});

Deno.test("nodeLabelPatch only touches systemk's labels that differ", () => {
  const existing = {
    metadata: {
      name: "n1",
      labels: {
        "kubernetes.io/os": "Linux", // the original systemk's capital L
        "kubernetes.io/arch": "amd64",
        "kubernetes.io/hostname": "host1",
        "team": "blue",
      },
    },
  };
  assert.deepEqual(nodeLabelPatch(existing, config, "amd64"), {
    metadata: {
      labels: { "kubernetes.io/os": "linux", "node.kubernetes.io/instance-type": "systemk" },
    },
  });
  const inLine = buildNode(config, facts, T0);
  assert.equal(nodeLabelPatch(inLine, config, "amd64"), undefined);
});

Deno.test("taintMismatch reports what NodeRestriction keeps the node from fixing", () => {
  const tainted = buildNode(config, facts, T0);
  const untainted = buildNode({ ...config, disableTaint: true }, facts, T0);
  assert.equal(taintMismatch(tainted, false), undefined);
  assert.equal(taintMismatch(untainted, true), undefined);
  assert.match(taintMismatch(untainted, false) ?? "", /without the taint/);
  assert.match(taintMismatch(tainted, true) ?? "", /--disable-taint/);
});

Deno.test("nodeLease: holder, duration, owner, MicroTime renew time", () => {
  const lease = nodeLease("n1", "uid-1", microTime(T0));
  assert.equal(lease.metadata?.namespace, "kube-node-lease");
  assert.equal(lease.spec?.holderIdentity, "n1");
  assert.equal(lease.spec?.leaseDurationSeconds, 40);
  assert.deepEqual(lease.metadata?.ownerReferences, [
    { apiVersion: "v1", kind: "Node", name: "n1", uid: "uid-1" },
  ]);
  assert.equal(JSON.stringify(lease.spec?.renewTime), '"2026-01-01T00:00:00.000000Z"');
});
