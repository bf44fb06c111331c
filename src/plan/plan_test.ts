import assert from "node:assert/strict";
import fc from "fast-check";
import { planPod, PodError } from "./mod.ts";
import { resourcesOnlyChange, unitResourceProperties } from "./resources.ts";
import { decodeExecCommandLine, parseUnit, readMetadata } from "../unit/mod.ts";
import type { UnitFile } from "../unit/mod.ts";
import { inputFromManifest } from "../../tests/plan/_fixtures.ts";

const DATA = new URL("../../tests/testdata/", import.meta.url);
const manifest = (name: string) => Deno.readTextFileSync(new URL(`${name}.yaml`, DATA));

function values(unit: UnitFile, section: string, key: string): string[] {
  return unit.sections.filter((s) => s.name === section).flatMap((s) =>
    s.lines.flatMap((l) => (l.kind === "directive" && l.key === key ? [l.value] : []))
  );
}

Deno.test("plan: the bash loop script reaches bash as ONE argv word", () => {
  const [unit] = planPod(inputFromManifest(manifest("bash-loop"))).units;
  const [execStart] = values(unit.unit, "Service", "ExecStart");
  assert.deepEqual(decodeExecCommandLine(execStart), [
    "/bin/bash",
    "-c",
    "while true; do echo hi; sleep 1; done",
  ]);
});

Deno.test("plan: unit text parses back to the unit, with its identity in [X-Kubernetes]", () => {
  const plan = planPod(inputFromManifest(manifest("uptimed")));
  assert.deepEqual(plan.units.map((u) => [u.name, u.init]), [
    ["systemk.default.uptimed.prepare.service", true],
    ["systemk.default.uptimed.uptimed.service", false],
  ]);
  for (const u of plan.units) {
    assert.deepEqual(parseUnit(u.text), u.unit);
    const meta = readMetadata(parseUnit(u.text))!;
    assert.equal(meta.podUID, "0b5a3c55-3f5e-4a8e-9a53-6c1a2b3c4d01");
    assert.equal(meta.containerName, u.container);
    assert.equal(meta.init, u.init);
    assert.equal(meta.nodeName, "node-1");
    assert.match(meta.containerHash, /^[0-9a-f]{64}$/);
  }
});

Deno.test("plan: init containers chain in order; sidecars are waited for, never required", () => {
  fc.assert(
    fc.property(
      fc.array(fc.boolean(), { maxLength: 5 }),
      fc.integer({ min: 1, max: 3 }),
      (sidecar, apps) => {
        const container = (n: string, always: boolean) =>
          `{name: ${n}, image: /bin/true, command: [/bin/true]` +
          (always ? ", restartPolicy: Always}" : "}");
        const text = `kind: Pod
metadata: {name: chain, uid: u-1}
spec:
  initContainers: [${sidecar.map((s, i) => container(`i${i}`, s)).join(", ")}]
  containers: [${Array.from({ length: apps }, (_, i) => container(`a${i}`, false)).join(", ")}]`;
        const units = planPod(inputFromManifest(text)).units;
        const inits = sidecar.length;
        assert.equal(units.length, inits + apps);
        units.forEach((u, k) => {
          const before = units.slice(0, u.init ? k : inits);
          const regular = before.filter((b) => b.kind === "init").map((b) => b.name);
          const sidecars = before.filter((b) => b.kind === "sidecar").map((b) => b.name);
          const requires = regular.slice(-1);
          assert.equal(u.kind, u.init ? (sidecar[k] ? "sidecar" : "init") : "app");
          assert.deepEqual(values(u.unit, "Unit", "Requires"), requires, u.name);
          assert.deepEqual(values(u.unit, "Unit", "After"), [...requires, ...sidecars], u.name);
          const oneshot = values(u.unit, "Service", "Type")[0] === "oneshot";
          assert.equal(oneshot, u.kind === "init");
          assert.deepEqual(values(u.unit, "Service", "Restart"), ["no"]);
          assert.equal(readMetadata(u.unit)!.index, u.init ? k : k - inits);
        });
      },
    ),
    { numRuns: 60 },
  );
});

Deno.test("plan: an ephemeral container with a target enters it, with its identity", () => {
  const text = (security: string) =>
    `kind: Pod
metadata: {name: p, uid: u-1}
spec:
  containers: [{name: app, image: /bin/sleep, command: [sleep, infinity]}]
  ephemeralContainers:
    - {name: dbg, image: /bin/sh, command: [sh, -c, "id"], targetContainerName: app, ${security}}`;
  const target = {
    mainPID: 4242,
    user: "996",
    group: "995",
    supplementaryGroups: ["10"],
    umask: 0o027,
    noNewPrivileges: true,
    capabilityBoundingSet: 1n << 10n,
    ambientCapabilities: 0n,
    workingDirectory: "!/srv/app data",
  };
  const plan = (security: string) => {
    const input = inputFromManifest(text(security));
    input.targets = new Map([["dbg", target]]);
    const planned = planPod(input);
    assert.deepEqual(planned.unplanned, []);
    const unit = planned.units.find((u) => u.container === "dbg")!;
    assert.equal(unit.kind, "ephemeral");
    return unit.unit;
  };
  const entered = plan("env: [{name: MODE, value: debug}]");
  const service = (key: string) => values(entered, "Service", key);
  assert.deepEqual(service("User"), ["996"]);
  assert.deepEqual(service("Group"), ["995"]);
  assert.deepEqual(service("SupplementaryGroups"), ["10"]);
  assert.deepEqual(service("NoNewPrivileges"), ["yes"]);
  assert.deepEqual(service("CapabilityBoundingSet"), ["10"]);
  assert.deepEqual(service("UMask"), ["0027"]);
  assert.deepEqual(service("RootDirectory"), ["/proc/4242/root"]);
  assert.deepEqual(service("MountAPIVFS"), ["no"]);
  assert.deepEqual(service("WorkingDirectory"), ["-/srv/app data"]);
  assert.deepEqual(service("EnvironmentFile"), ["/run/systemk/u-1/env/dbg.env"]);
  // The target's namespace is its sandbox: none set up again, nothing mounted, no dependency.
  for (const key of ["ProtectSystem", "PrivateTmp", "TemporaryFileSystem", "BindPaths"]) {
    assert.deepEqual(service(key), [], key);
  }
  assert.deepEqual(values(entered, "Unit", "Requires"), []);
  assert.deepEqual(values(entered, "Unit", "After"), []);
  // Its own securityContext wins over the target's, part by part.
  const own = plan("securityContext: {runAsUser: 0}");
  assert.deepEqual(values(own, "Service", "User"), ["0"]);
  assert.deepEqual(values(own, "Service", "SupplementaryGroups"), []);
  assert.deepEqual(values(own, "Service", "NoNewPrivileges"), ["yes"], "the target's still");
  const privileged = plan("securityContext: {capabilities: {add: [SYS_PTRACE]}}");
  assert.deepEqual(values(privileged, "Service", "User"), ["996"], "the target's still");
  assert.deepEqual(values(privileged, "Service", "NoNewPrivileges"), []);
  assert.deepEqual(values(privileged, "Service", "CapabilityBoundingSet"), []);
});

Deno.test("plan: containerHash detects changes to the spec and to resolved inputs", () => {
  const base = manifest("env");
  const hashes = (text: string) =>
    planPod(inputFromManifest(text)).units.map((u) => readMetadata(u.unit)!.containerHash);
  const [web, sidecar] = hashes(base);
  assert.deepEqual(hashes(base), [web, sidecar], "deterministic");
  // a ConfigMap value the env uses
  assert.notEqual(hashes(base.replace("mode: fast", "mode: slow"))[0], web);
  // the container spec
  assert.notEqual(hashes(base.replace("image: /usr/bin/env", "image: /usr/bin/env2"))[0], web);
  // the other container's hash is untouched by both
  assert.equal(hashes(base.replace("mode: fast", "mode: slow"))[1], sidecar);
  // Secret values are not hashed (the hash sits in a world-readable file), like the kubelet
  // they take effect on the next restart
  assert.equal(hashes(base.replace("czNjcjN0", "b3RoZXI="))[0], web);
});

Deno.test("plan: a resize changes the unit's resources and nothing else", () => {
  const base = manifest("resources");
  const resized = base.replace(
    "limits: { cpu: 500m, memory: 128Mi }",
    "limits: { cpu: 1, memory: 256Mi }",
  )
    .replace("requests: { cpu: 100m, memory: 64M }", "requests: { cpu: 200m, memory: 64M }");
  assert.notEqual(resized, base);
  const [before] = planPod(inputFromManifest(base)).units;
  const [after] = planPod(inputFromManifest(resized)).units;
  assert.equal(readMetadata(after.unit)!.containerHash, readMetadata(before.unit)!.containerHash);
  assert.deepEqual(JSON.parse(readMetadata(after.unit)!.resources!), {
    limits: { cpu: 1, memory: "256Mi" },
    requests: { cpu: "200m", memory: "64M" },
  });
  assert.equal(resourcesOnlyChange(before.text, after.text), true);
  assert.deepEqual(unitResourceProperties(after.text), {
    CPUQuotaPerSecUSec: 1_000_000n,
    MemoryMax: 256n * 2n ** 20n,
    MemorySwapMax: 0n,
    CPUWeight: 8n,
    MemoryLow: 64_000_000n,
  });
  // Any other change is not a resize.
  const other =
    planPod(inputFromManifest(resized.replace("/bin/sleep, infinity]", '/bin/sleep, "1"]')))
      .units[0];
  assert.equal(resourcesOnlyChange(before.text, other.text), false);
  assert.equal(resourcesOnlyChange(before.text, before.text), false);
});

Deno.test("plan: restartPolicy and terminationGracePeriodSeconds", () => {
  const table: [string, string, string][] = [
    // The agent restarts app containers (with the kubelet's back-off), never systemd.
    ["Always", "no", "yes"],
    ["OnFailure", "no", "yes"],
    ["Never", "no", "yes"],
  ];
  for (const [policy, restart, remain] of table) {
    for (const [grace, timeout] of [[undefined, "30"], [0, "2"], [1, "2"], [90, "90"]]) {
      const graceLine = grace === undefined ? "" : `terminationGracePeriodSeconds: ${grace}`;
      const [unit] = planPod(inputFromManifest(`kind: Pod
metadata: {name: p, uid: u-1}
spec:
  restartPolicy: ${policy}
  ${graceLine}
  containers: [{name: c, image: /bin/true, command: [/bin/true]}]`)).units;
      assert.deepEqual(values(unit.unit, "Service", "Restart"), [restart]);
      assert.deepEqual(values(unit.unit, "Service", "RemainAfterExit"), [remain]);
      assert.deepEqual(values(unit.unit, "Service", "RestartSec"), []);
      assert.deepEqual(values(unit.unit, "Service", "TimeoutStopSec"), [timeout]);
      assert.deepEqual(values(unit.unit, "Service", "KillMode"), ["mixed"]);
      assert.deepEqual(values(unit.unit, "Unit", "StartLimitIntervalSec"), ["0"]);
    }
  }
});

Deno.test("plan: stateDir moves every path; other pods' files stay hidden", () => {
  const input = inputFromManifest(manifest("uptimed"));
  input.stateDir = "/var/lib/systemk state";
  const plan = planPod(input);
  assert.equal(plan.podDir, "/var/lib/systemk state/0b5a3c55-3f5e-4a8e-9a53-6c1a2b3c4d01");
  assert.ok(plan.volumes.every((v) => v.path.startsWith(plan.podDir)));
  const app = plan.units[1].unit;
  assert.deepEqual(values(app, "Service", "TemporaryFileSystem"), ['"/var/lib/systemk state"']);
  assert.ok(values(app, "Service", "BindPaths")[0].startsWith('"/var/lib/systemk state/'));
});

Deno.test("plan: volume entries come parents first", () => {
  for (const name of ["volumes-configmap-secret", "volumes-projected-downward", "env"]) {
    const plan = planPod(inputFromManifest(manifest(name)));
    const seen = new Set<string>();
    for (const v of plan.volumes) {
      const parent = v.path.slice(0, v.path.lastIndexOf("/"));
      if (v.path !== plan.podDir) assert.ok(seen.has(parent), `${v.path} before its parent`);
      seen.add(v.path);
    }
  }
});

Deno.test("plan: errors are PodErrors naming pod and container", () => {
  try {
    planPod(inputFromManifest(manifest("error-no-command")));
    assert.fail("expected a PodError");
  } catch (e) {
    assert.ok(e instanceof PodError);
    assert.equal(e.reason, "CreateContainerConfigError");
    assert.equal(e.container, "main");
    assert.match(e.message, /^pod default\/no-command, container main: .*; set command/);
  }
  assert.throws(
    () => planPod(inputFromManifest("kind: Pod\nmetadata: {name: p}\nspec: {containers: []}")),
    /metadata.uid/,
  );
  assert.throws(
    () =>
      planPod(inputFromManifest(`kind: Pod
metadata: {name: p, uid: u}
spec:
  containers:
    - {name: c, image: /bin/true, command: [/bin/true], securityContext: {runAsUser: 5, windowsOptions: {runAsUserName: nobody}}}`)),
    /contradicts/,
  );
});

Deno.test("plan: runAsNonRoot cannot be verified for an unknown package user", () => {
  const input = inputFromManifest(`kind: Pod
metadata: {name: p, uid: u}
spec:
  securityContext: {runAsNonRoot: true}
  containers: [{name: c, image: prefixed}]`);
  input.packages = new Map([["c", {
    name: "prefixed",
    unitText: "[Service]\nUser=ghost\nExecStart=/bin/true\n",
  }]]);
  assert.throws(() => planPod(input), /package's user "ghost" is unknown/);
  input.packages = new Map([["c", {
    name: "prefixed",
    unitText: "[Service]\nUser=prometheus\nExecStart=/bin/true\n",
  }]]);
  assert.deepEqual(values(planPod(input).units[0].unit, "Service", "User"), ["prometheus"]);
});

Deno.test("plan: a package EnvironmentFile= cannot override the pod's env; hash still sees it", () => {
  const text = (mode: string) =>
    `kind: Pod
metadata: {name: p, uid: u-1}
spec:
  containers:
    - {name: c, image: prometheus, env: [{name: ARGS, value: "${mode}"}]}`;
  const plan = planPod(inputFromManifest(text("--a")));
  const unit = plan.units[0].unit;
  // the package's file first, the pod's (later, so winning) second; no Environment= lines
  assert.deepEqual(values(unit, "Service", "EnvironmentFile"), [
    "/etc/default/prometheus",
    "/run/systemk/u-1/env/c.env",
  ]);
  assert.deepEqual(values(unit, "Service", "Environment"), []);
  const file = plan.volumes.find((v) => v.path === "/run/systemk/u-1/env/c.env");
  assert.ok(file?.kind === "file" && file.secret === undefined);
  assert.match(new TextDecoder().decode(file.content), /^ARGS="--a"$/m);
  const hash = (t: string) => readMetadata(planPod(inputFromManifest(t)).units[0].unit)!;
  assert.notEqual(hash(text("--a")).containerHash, hash(text("--b")).containerHash);
});
