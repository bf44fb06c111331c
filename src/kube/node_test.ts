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
  nodeTaintUpdate,
  statusFingerprint,
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
  labels: {},
  taints: [],
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
  const node = buildNode(config, { facts, now: T0 });
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
  const node = buildNode({ ...config, disableTaint: true, externalIP: config.internalIP }, {
    facts,
    now: T0,
  });
  assert.equal(node.spec?.taints, undefined);
  assert.deepEqual(node.status?.addresses?.map((a) => a.type), ["InternalIP", "Hostname"]);
});

Deno.test("nodeConditions: pressure thresholds", () => {
  const ready = { ready: true };
  const low = nodeConditions({ ...facts, memoryAvailableBytes: MEMORY_EVICTION_BYTES - 1 }, {
    readiness: ready,
    now: T0,
  });
  assert.equal(condition(low, "MemoryPressure"), "True");
  const disk = nodeConditions({ ...facts, fsAvailableBytes: 9 * GiB }, {
    readiness: ready,
    now: T0,
  });
  assert.equal(condition(disk, "DiskPressure"), "True");
  const inodes = nodeConditions({ ...facts, fsInodesFree: 40 }, { readiness: ready, now: T0 });
  assert.equal(condition(inodes, "DiskPressure"), "True");
  const pids = nodeConditions({ ...facts, processes: 30000 }, { readiness: ready, now: T0 });
  assert.equal(condition(pids, "PIDPressure"), "True");
  const fine = nodeConditions(facts, { readiness: ready, now: T0 });
  for (const type of ["MemoryPressure", "DiskPressure", "PIDPressure"]) {
    assert.equal(condition(fine, type), "False", type);
  }
  const notReady = nodeConditions(facts, {
    readiness: { ready: false, message: "systemd gone" },
    now: T0,
  });
  const r = notReady.find((c) => c.type === "Ready");
  assert.equal(r?.status, "False");
  assert.equal(r?.message, "systemd gone");
});

Deno.test("nodeConditions: heartbeat moves, transition time kept until status changes", () => {
  const first = nodeConditions(facts, { readiness: { ready: true }, now: T0 });
  const second = nodeConditions(facts, { readiness: { ready: true }, previous: first, now: T1 });
  for (const c of second) {
    assert.deepEqual(c.lastHeartbeatTime, T1);
    assert.deepEqual(c.lastTransitionTime, T0, c.type);
  }
  const third = nodeConditions(facts, { readiness: { ready: false }, previous: second, now: T1 });
  assert.deepEqual(third.find((c) => c.type === "Ready")?.lastTransitionTime, T1);
  assert.deepEqual(third.find((c) => c.type === "MemoryPressure")?.lastTransitionTime, T0);
  // Times read back from the API arrive as strings in raw JSON; they are honoured too.
  const fromApi = first.map((c) => ({ ...c, lastTransitionTime: T0.toISOString() as unknown }));
  const fourth = nodeConditions(facts, {
    readiness: { ready: true },
    previous: fromApi as typeof first,
    now: T1,
  });
  assert.deepEqual(fourth[0].lastTransitionTime, T0);
});

Deno.test("statusFingerprint ignores heartbeats but not changes", () => {
  const a = nodeStatus(config, {
    facts,
    conditions: nodeConditions(facts, { readiness: { ready: true }, now: T0 }),
  });
  const b = nodeStatus(config, {
    facts,
    conditions: nodeConditions(facts, { readiness: { ready: true }, now: T1 }),
  });
  assert.equal(statusFingerprint(a), statusFingerprint(b));
  const c = nodeStatus({ ...config, internalIP: "10.0.0.6" }, {
    facts,
    conditions: nodeConditions(facts, { readiness: { ready: true }, now: T1 }),
  });
  assert.notEqual(statusFingerprint(a), statusFingerprint(c));
  const d = nodeStatus(config, {
    facts,
    conditions: nodeConditions(facts, { readiness: { ready: false }, now: T1 }),
  });
  assert.notEqual(statusFingerprint(a), statusFingerprint(d));
});

Deno.test("nodeStatusPatch replaces the address list", () => {
  const status = nodeStatus(config, { facts, conditions: [] });
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
  assert.deepEqual(nodeLabelPatch(existing, config, { arch: "amd64" }), {
    metadata: {
      labels: { "kubernetes.io/os": "linux", "node.kubernetes.io/instance-type": "systemk" },
    },
  });
  const inLine = buildNode(config, { facts, now: T0 });
  assert.equal(nodeLabelPatch(inLine, config, { arch: "amd64" }), undefined);
});

Deno.test("buildNode: --node-labels over systemk's own, --register-with-taints, their record", () => {
  const node = buildNode({
    ...config,
    labels: { tier: "edge", "node.kubernetes.io/instance-type": "big" },
    taints: [{ key: "dedicated", value: "edge", effect: "NoSchedule" }, {
      key: "virtual-kubelet.io/provider",
      value: "other",
      effect: "NoSchedule",
    }],
  }, { facts, now: T0 });
  assert.equal(node.metadata?.labels?.tier, "edge");
  assert.equal(node.metadata?.labels?.["node.kubernetes.io/instance-type"], "big");
  assert.equal(node.metadata?.labels?.["kubernetes.io/os"], "linux");
  assert.deepEqual(node.spec?.taints, [
    { key: "dedicated", value: "edge", effect: "NoSchedule" },
    { key: "virtual-kubelet.io/provider", value: "other", effect: "NoSchedule" },
  ]);
  assert.deepEqual(node.metadata?.annotations, {
    "systemk.io/node-labels": "node.kubernetes.io/instance-type,tier",
    "systemk.io/register-with-taints":
      "dedicated:NoSchedule,virtual-kubelet.io/provider:NoSchedule",
  });
});

Deno.test("nodeLabelPatch: flag labels set, dropped ones removed, others' left alone", () => {
  const before = buildNode({ ...config, labels: { tier: "edge", zone: "a" } }, { facts, now: T0 });
  // An admin's label (team) and a change of the admin to a flag label (tier) meanwhile.
  before.metadata!.labels = { ...before.metadata!.labels, team: "blue", tier: "core" };
  const patch = nodeLabelPatch(before, { ...config, labels: { tier: "edge", rack: "r1" } }, {
    arch: "amd64",
  });
  assert.deepEqual(patch, {
    metadata: {
      labels: { tier: "edge", rack: "r1", zone: null },
      annotations: { "systemk.io/node-labels": "rack,tier" },
    },
  });
  // No flag labels any more: the recorded ones go, and so does the record.
  assert.deepEqual(nodeLabelPatch(before, config, { arch: "amd64" }), {
    metadata: {
      labels: { tier: null, zone: null },
      annotations: { "systemk.io/node-labels": null },
    },
  });
  // A label dropped from the flag that systemk sets anyway gets systemk's value back.
  const overridden = buildNode(
    { ...config, labels: { "node.kubernetes.io/instance-type": "big" } },
    { facts, now: T0 },
  );
  assert.deepEqual(nodeLabelPatch(overridden, config, { arch: "amd64" })?.metadata.labels, {
    "node.kubernetes.io/instance-type": "systemk",
  });
});

Deno.test("nodeTaintUpdate: flag taints in line, recorded ones removed, others kept", () => {
  const dedicated = { key: "dedicated", value: "edge", effect: "NoSchedule" };
  const registered = buildNode({ ...config, taints: [dedicated] }, { facts, now: T0 });
  registered.metadata!.resourceVersion = "42";
  const notReady = { key: "node.kubernetes.io/not-ready", effect: "NoSchedule" };
  registered.spec!.taints!.push(notReady);
  assert.equal(nodeTaintUpdate(registered, { ...config, taints: [dedicated] }), undefined);

  const changed = nodeTaintUpdate(registered, {
    ...config,
    disableTaint: true,
    taints: [{ ...dedicated, value: "core" }, { key: "gpu", effect: "NoExecute" }],
  })!;
  assert.equal(changed.taintsChange, true);
  assert.deepEqual(changed.patch, {
    metadata: {
      resourceVersion: "42",
      annotations: { "systemk.io/register-with-taints": "dedicated:NoSchedule,gpu:NoExecute" },
    },
    spec: {
      taints: [{ ...dedicated, value: "core" }, notReady, { key: "gpu", effect: "NoExecute" }],
    },
  });
  assert.deepEqual(changed.commands, [
    "kubectl taint node n1 dedicated=core:NoSchedule --overwrite",
    "kubectl taint node n1 gpu:NoExecute --overwrite",
    "kubectl taint node n1 virtual-kubelet.io/provider:NoSchedule-",
  ]);

  // Dropped from the flag: removed; an admin's taint of another key stays.
  const admin = { key: "maintenance", effect: "NoSchedule" };
  registered.spec!.taints!.push(admin);
  const dropped = nodeTaintUpdate(registered, config)!;
  assert.deepEqual(dropped.patch.spec.taints, [
    { key: "virtual-kubelet.io/provider", value: "systemk", effect: "NoSchedule" },
    notReady,
    admin,
  ]);
  assert.deepEqual(dropped.commands, ["kubectl taint node n1 dedicated:NoSchedule-"]);

  // The Node already carries the flag's taint (an admin added it): only the record changes.
  const recordOnly = nodeTaintUpdate(registered, { ...config, taints: [dedicated, admin] })!;
  assert.equal(recordOnly.taintsChange, false);
  assert.equal(recordOnly.patch.spec.taints.length, registered.spec!.taints!.length);
});

Deno.test("nodeTaintUpdate: a Node of an earlier systemk has only the provider taint as ours", () => {
  const untainted = buildNode({ ...config, disableTaint: true }, { facts, now: T0 });
  const tainted = buildNode(config, { facts, now: T0 });
  assert.equal(nodeTaintUpdate(tainted, config), undefined);
  assert.equal(nodeTaintUpdate(untainted, { ...config, disableTaint: true }), undefined);
  assert.deepEqual(nodeTaintUpdate(untainted, config)?.commands, [
    "kubectl taint node n1 virtual-kubelet.io/provider=systemk:NoSchedule --overwrite",
  ]);
  assert.deepEqual(nodeTaintUpdate(tainted, { ...config, disableTaint: true })?.commands, [
    "kubectl taint node n1 virtual-kubelet.io/provider:NoSchedule-",
  ]);
  // An unrecorded taint is not systemk's to remove.
  tainted.spec!.taints!.push({ key: "dedicated", effect: "NoSchedule" });
  assert.equal(nodeTaintUpdate(tainted, config), undefined);
});

Deno.test("nodeLease: holder, duration, owner, MicroTime renew time", () => {
  const lease = nodeLease({ name: "n1", uid: "uid-1" }, microTime(T0));
  assert.equal(lease.metadata?.namespace, "kube-node-lease");
  assert.equal(lease.spec?.holderIdentity, "n1");
  assert.equal(lease.spec?.leaseDurationSeconds, 40);
  assert.deepEqual(lease.metadata?.ownerReferences, [
    { apiVersion: "v1", kind: "Node", name: "n1", uid: "uid-1" },
  ]);
  assert.equal(JSON.stringify(lease.spec?.renewTime), '"2026-01-01T00:00:00.000000Z"');
});
