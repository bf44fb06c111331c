import assert from "node:assert/strict";
import {
  aptErrorSummary,
  classifyAptFailure,
  decideInstall,
  mainService,
  type PackageStatus,
  parseControlFields,
  parsePackageStatus,
  type PullPolicy,
  shippedUnits,
  stateDirCandidates,
} from "./dpkg.ts";

Deno.test("parsePackageStatus: installed states carry the version, others do not", () => {
  const cases: [string, ReturnType<typeof parsePackageStatus>][] = [
    ["install ok installed 1:0.4.6-4", { installed: true, version: "1:0.4.6-4" }],
    ["install ok triggers-pending 2.0", { installed: true, version: "2.0" }],
    ["deinstall ok config-files 1.0-1", { installed: false }],
    ["install ok half-configured 1.0-1", { installed: false }],
    ["install ok unpacked 1.0-1", { installed: false }],
    ["unknown ok not-installed ", { installed: false }],
    ["", { installed: false }],
  ];
  for (const [out, want] of cases) assert.deepEqual(parsePackageStatus(out), want, out);
});

Deno.test("shippedUnits finds services and their activators under both unit directories", () => {
  const list = [
    "/.",
    "/lib",
    "/lib/systemd/system",
    "/lib/systemd/system/uptimed.service",
    "/usr/lib/systemd/system/uptimed.service",
    "/usr/lib/systemd/system/foo.socket",
    "/usr/lib/systemd/system/foo@.service",
    "/usr/lib/systemd/system/foo.timer",
    "/usr/lib/systemd/system/foo.path",
    "/usr/lib/systemd/system/foo.target",
    "/usr/lib/systemd/system/uptimed.service.d/override.conf",
    "/etc/systemd/system/local.service",
    "/usr/lib/systemd/user/agent.service",
    "/usr/share/doc/uptimed/example.service",
  ].join("\n");
  assert.deepEqual(shippedUnits(list), [
    { name: "uptimed.service", path: "/lib/systemd/system/uptimed.service" },
    { name: "foo.socket", path: "/usr/lib/systemd/system/foo.socket" },
    { name: "foo@.service", path: "/usr/lib/systemd/system/foo@.service" },
    { name: "foo.timer", path: "/usr/lib/systemd/system/foo.timer" },
    { name: "foo.path", path: "/usr/lib/systemd/system/foo.path" },
  ]);
});

Deno.test("mainService: named like the package, else the only service, else none", () => {
  const u = (name: string) => ({ name, path: `/lib/systemd/system/${name}` });
  assert.equal(
    mainService("uptimed", [u("x.service"), u("uptimed.service")])?.name,
    "uptimed.service",
  );
  assert.equal(
    mainService("openssh-server", [u("ssh.service"), u("ssh.socket")])?.name,
    "ssh.service",
  );
  assert.equal(mainService("a", [u("b@.service"), u("c.service")])?.name, "c.service");
  assert.equal(mainService("a", [u("b.service"), u("c.service")]), undefined);
  assert.equal(mainService("a", [u("a.socket")]), undefined);
  assert.equal(mainService("a", []), undefined);
});

Deno.test("mainService: a unit named like the package from another package comes next", () => {
  const u = (name: string) => ({ name, path: `/lib/systemd/system/${name}` });
  // nginx ships no unit; nginx-common, its dependency, ships nginx.service.
  assert.equal(mainService("nginx", [], { elsewhere: u("nginx.service") })?.name, "nginx.service");
  // Named after the package wins over the only service it ships.
  assert.equal(
    mainService("a", [u("b.service")], { elsewhere: u("a.service") })?.name,
    "a.service",
  );
  assert.equal(
    mainService("a", [u("a.service")], { elsewhere: { name: "a.service", path: "/usr/lib/x" } })
      ?.path,
    "/lib/systemd/system/a.service",
  );
});

Deno.test("stateDirCandidates keeps /var/{lib,log,cache,spool}/<name> only", () => {
  const list = "/var\n/var/lib\n/var/lib/prometheus\n/var/lib/prometheus/data\n/var/log/x\n" +
    "/var/spool/uptimed\n/var/cache/y\n/var/tmp/z\n/usr/lib/q\n";
  assert.deepEqual(stateDirCandidates(list), [
    "/var/lib/prometheus",
    "/var/log/x",
    "/var/spool/uptimed",
    "/var/cache/y",
  ]);
});

Deno.test("classifyAptFailure recognizes lock contention and unknown packages", () => {
  const cases: [string, string][] = [
    [
      "E: Could not get lock /var/lib/dpkg/lock-frontend. It is held by process 42 (apt-get)",
      "lock",
    ],
    [
      "E: Unable to acquire the dpkg frontend lock (/var/lib/dpkg/lock-frontend), is another process using it?",
      "lock",
    ],
    [
      "E: Could not get lock /var/lib/apt/lists/lock. It is held by process 7\nE: Unable to lock directory /var/lib/apt/lists/",
      "lock",
    ],
    ["dpkg: error: dpkg frontend lock was locked by another process with pid 9", "lock"],
    ["E: Unable to locate package nope", "unknown-package"],
    ["E: Version '9.9' for 'uptimed' was not found", "unknown-package"],
    ["E: Package 'foo' has no installation candidate", "unknown-package"],
    ["E: Unmet dependencies. Try 'apt --fix-broken install'", "other"],
    ["", "other"],
  ];
  for (const [out, want] of cases) assert.equal(classifyAptFailure(out), want, out);
});

Deno.test("aptErrorSummary keeps apt's E: lines, else the last line, cut short", () => {
  const out = "Reading package lists...\nBuilding dependency tree...\n" +
    "E: Version '9' for 'a' was not found\nE: Unable to locate package b\n";
  assert.equal(
    aptErrorSummary(out),
    "E: Version '9' for 'a' was not found; E: Unable to locate package b",
  );
  assert.equal(aptErrorSummary("one\ntwo\n\n"), "two");
  assert.equal(aptErrorSummary("E: " + "x".repeat(500), 40).length, 40);
  assert.equal(aptErrorSummary(""), "");
});

Deno.test("parseControlFields reads dpkg-deb -f output", () => {
  const f = parseControlFields("Package: hello-svc\nVersion: 1:0.1-1\n");
  assert.equal(f.get("Package"), "hello-svc");
  assert.equal(f.get("Version"), "1:0.1-1");
});

Deno.test("decideInstall follows imagePullPolicy", () => {
  const eq = (a: string, b: string) => a === b;
  const none = { installed: false };
  const v1 = { installed: true, version: "1.0-1" };
  const cases: [PullPolicy, PackageStatus, string | undefined, string][] = [
    ["IfNotPresent", none, undefined, "install"],
    ["IfNotPresent", v1, undefined, "present"],
    ["IfNotPresent", v1, "1.0-1", "present"],
    ["IfNotPresent", v1, "2.0-1", "install"],
    ["Always", none, undefined, "install"],
    ["Always", v1, undefined, "install"],
    ["Always", v1, "1.0-1", "install"],
    ["Never", none, undefined, "missing"],
    ["Never", v1, undefined, "present"],
    ["Never", v1, "1.0-1", "present"],
    ["Never", v1, "2.0-1", "missing"],
  ];
  for (const [policy, status, wanted, want] of cases) {
    assert.equal(
      decideInstall(policy, status, { wantedVersion: wanted, sameVersion: eq }),
      want,
      `${policy} ${wanted}`,
    );
  }
});
