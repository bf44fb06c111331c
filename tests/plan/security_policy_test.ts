/**
 * The node's security policy in the planner (src/plan/ids.ts, src/plan/security.ts): which
 * users and groups a container may run with, root and privileged containers, capabilities of
 * non-root users, the private /dev, and the pod ids that get userdb records.
 *
 * @module
 */
import assert from "node:assert/strict";
import {
  DEFAULT_SECURITY_POLICY,
  planPod,
  PodError,
  type SecurityPolicy,
} from "../../src/plan/mod.ts";
import { inputFromManifest, NODE, POLICY } from "./_fixtures.ts";

/** A one-container pod: `pod` and `container` are securityContext YAML; `image` a path or package. */
function manifest(pod: string, container = "{}", image = "/bin/sleep"): string {
  return `
kind: Pod
metadata: {name: p, uid: u-1}
spec:
  securityContext: ${pod}
  containers:
    - name: c
      image: ${image}
      command: [/bin/sleep, infinity]
      securityContext: ${container}`;
}

function plan(text: string, policy: SecurityPolicy = POLICY) {
  return planPod({ ...inputFromManifest(text), policy });
}

function refused(text: string, message: RegExp, policy: SecurityPolicy = POLICY): string {
  try {
    plan(text, policy);
  } catch (e) {
    if (!(e instanceof PodError)) throw e;
    assert.equal(e.reason, "CreateContainerConfigError");
    assert.match(e.message, message);
    return e.message;
  }
  assert.fail(`planned, but expected a refusal matching ${message}`);
}

function service(text: string, key: string, policy: SecurityPolicy = POLICY): string[] {
  return plan(text, policy).units[0].text.split("\n").filter((l) => l.startsWith(`${key}=`))
    .map((l) => l.slice(key.length + 1));
}

Deno.test("host groups need the node's permission: disk, root (gid 0), a user's own group is fine", () => {
  refused(manifest("{runAsUser: 5000, supplementalGroups: [6]}"), /--allowed-host-groups=disk/);
  refused(manifest("{runAsUser: 5000, runAsGroup: 0}"), /runAsGroup 0 is the host's group root/);
  refused(manifest("{runAsUser: 5000, fsGroup: 4}"), /fsGroup 4 is the host's group adm/, {
    ...POLICY,
    allowedHostGroups: [],
  });
  // Outside the pod id range, even if no group has it yet: packages create theirs there.
  refused(manifest("{runAsUser: 5000, runAsGroup: 500}"), /500 is outside --pod-id-range/);
  // Allowed by name or number.
  const allowed = { ...POLICY, allowedHostGroups: ["disk", "0"] };
  const groups = "{runAsUser: 5000, runAsGroup: 0, supplementalGroups: [6]}";
  assert.deepEqual(service(manifest(groups), "SupplementaryGroups", allowed), ["6"]);
  // Root's own group, nobody's own group: the user's primary group needs no listing.
  const none = { ...DEFAULT_SECURITY_POLICY, allowedHostGroups: [] };
  assert.deepEqual(service(manifest("{runAsUser: 0, runAsGroup: 0}"), "Group", none), ["0"]);
  assert.deepEqual(service(manifest("{runAsUser: 65534}"), "Group", none), ["65534"]);
});

Deno.test("host accounts need the node's permission; the non-root User= of the pod's packages has it", () => {
  const none = { ...DEFAULT_SECURITY_POLICY, allowedHostUsers: [] };
  // prometheus (uid 998) is a host account: refused for a path image...
  refused(manifest("{runAsUser: 998}"), /runAsUser 998 is the host's account prometheus/, none);
  refused(
    manifest("{windowsOptions: {runAsUserName: prometheus}}"),
    /--allowed-host-users=prometheus/,
    none,
  );
  // ...allowed for the prometheus package, whose unit runs as prometheus anyway.
  const named = manifest("{windowsOptions: {runAsUserName: prometheus}}", "{}", "prometheus");
  assert.deepEqual(service(named, "User", none), ["prometheus"]);
  assert.deepEqual(service(manifest("{}", "{}", "prometheus"), "User", none), ["prometheus"]);
  // Another host account for that package is still refused.
  refused(manifest("{runAsUser: 996}", "{}", "prometheus"), /the host's account uptimed/, none);
  // The seed's prometheus pod: runAsUserName prometheus for every container, helpers included;
  // the pod's prometheus image runs anything as prometheus anyway.
  const seed = `
kind: Pod
metadata: {name: prometheus, uid: u-1}
spec:
  securityContext: {windowsOptions: {runAsUserName: prometheus}}
  initContainers: [{name: curl, image: /usr/bin/curl, command: [curl, --version]}]
  containers:
    - {name: prometheus, image: prometheus}
    - {name: discover, image: /bin/bash, command: [bash, /etc/prometheus/discover.sh]}`;
  assert.deepEqual(
    plan(seed, none).units.map((u) => u.text.match(/^User=(.*)$/m)?.[1]),
    ["prometheus", "prometheus", "prometheus"],
  );
});

Deno.test("root: allowed by default (packaged daemons), refused without root in --allowed-host-users", () => {
  const noRoot = { ...DEFAULT_SECURITY_POLICY, allowedHostUsers: ["nobody"] };
  assert.deepEqual(service(manifest("{}"), "User"), []);
  const message = refused(manifest("{}"), /is root, which pods may run as only/, noRoot);
  assert.match(message, /--allowed-host-users=root/);
  refused(manifest("{runAsUser: 0}"), /runAsUser 0 is root/, noRoot);
  // A package unit without User= runs as root: refused too; tool's User=daemon is fine.
  refused(manifest("{}", "{}", "uptimed"), /no User= in its image's unit/, noRoot);
  assert.deepEqual(service(manifest("{}", "{}", "tool"), "User", noRoot), ["daemon"]);
});

Deno.test("privileged containers: allowed by default, refused with --allow-privileged=false", () => {
  const privileged = manifest("{}", "{privileged: true}");
  assert.ok(!plan(privileged).units[0].text.includes("PrivateDevices="));
  refused(privileged, /--allow-privileged=false/, { ...POLICY, allowPrivileged: false });
});

Deno.test("capabilities.add of a non-root user: bounding set only, never ambient", () => {
  const text = manifest("{runAsUser: 65534}", "{capabilities: {drop: [ALL], add: [SETUID]}}");
  assert.deepEqual(service(text, "CapabilityBoundingSet"), ["CAP_SETUID"]);
  assert.deepEqual(service(text, "AmbientCapabilities"), []);
  // A package's own AmbientCapabilities= stays: the package's choice.
  assert.deepEqual(service(manifest("{}", "{}", "tool"), "AmbientCapabilities"), [
    "CAP_NET_BIND_SERVICE",
  ]);
});

Deno.test("unprivileged containers get a private /dev, root ones too", () => {
  for (const pod of ["{}", "{runAsUser: 5000}"]) {
    assert.deepEqual(service(manifest(pod), "PrivateDevices"), ["yes"], pod);
  }
});

Deno.test("pod ids: any id of the range runs, with records; without userdb support refused", () => {
  const text = manifest("{runAsUser: 70000, fsGroup: 2000000000}", "{runAsGroup: 12345}");
  const p = plan(text);
  assert.deepEqual(p.podIds, { users: [70000], groups: [12345, 70000, 2000000000] });
  assert.deepEqual(service(text, "User"), ["70000"]);
  // A number some host group has is no pod id, even for a user: its record's group would be it.
  const hostGroup = { ...NODE, groupName: (gid: number) => gid === 5000 ? "wheel" : undefined };
  assert.throws(
    () => planPod({ ...inputFromManifest(manifest("{runAsUser: 5000}")), node: hostGroup }),
    /runAsUser 5000 is the id of the host's group wheel, which pods may run as only/,
  );
  // A narrower range makes the rest host ids.
  refused(manifest("{runAsUser: 70000}"), /outside --pod-id-range \(100000-199999\)/, {
    ...POLICY,
    podIDRanges: [{ min: 100000, max: 199999 }],
  });
  const noRecords = { ...inputFromManifest(text), node: { ...NODE, userRecords: false } };
  assert.throws(() => planPod(noRecords), /runAsUser 70000 is not a user on node node-1/);
});
