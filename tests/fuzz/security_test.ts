/**
 * Security properties of the planner that need no running system, over generated security
 * contexts and modes: `runAsNonRoot` never yields root (numeric, by name, or through a package's
 * `User=`), `allowPrivilegeEscalation: false` always yields `NoNewPrivileges=yes`, Secret files
 * are never readable by others, the hostPath policy, and the numeric ids systemd would misread.
 *
 * @module
 */
import assert from "node:assert/strict";
import fc from "fast-check";
import type { V1Pod, V1PodSecurityContext, V1SecurityContext } from "@kubernetes/client-node";
import { hostPathProblem, type PlanInput, planPod, PodError } from "../../src/plan/mod.ts";
import { parseUnit, type UnitFile } from "../../src/unit/mod.ts";
import { FUZZ_POLICY, fuzzNode, STATE_DIR } from "./_pods.ts";

const SEED = Number(Deno.env.get("FUZZ_SEED") ?? Math.floor(Math.random() * 2 ** 31));
const RUNS = Number(Deno.env.get("FUZZ_RUNS") ?? 1000);

const USERS = [
  { name: "root", uid: 0, gid: 0 },
  { name: "alice", uid: 1000, gid: 1000 },
  { name: "toor", uid: 0, gid: 0 }, // a second name for uid 0, as some systems have
  { name: "%n x", uid: 1002, gid: 1002 },
];
const node = fuzzNode(USERS);

function input(pod: V1Pod, packageUnit?: string): PlanInput {
  return {
    pod,
    configMaps: new Map(),
    secrets: new Map([["s", { metadata: { name: "s" }, data: { k: btoa("secret") } }]]),
    node,
    packages: packageUnit === undefined
      ? new Map()
      : new Map([["c", { name: "pkg", unitText: packageUnit, unitName: "pkg.service" }]]),
    stateDir: STATE_DIR,
    policy: FUZZ_POLICY,
  };
}

function service(unit: UnitFile, key: string): string[] {
  return unit.sections.filter((s) => s.name === "Service").flatMap((s) =>
    s.lines.flatMap((l) => (l.kind === "directive" && l.key === key ? [l.value] : []))
  );
}

function pod(
  podContext: V1PodSecurityContext | undefined,
  container: V1SecurityContext | undefined,
  extra: Partial<V1Pod["spec"]> = {},
): V1Pod {
  return {
    metadata: { name: "p", namespace: "default", uid: "u-1" },
    spec: {
      securityContext: podContext,
      containers: [{
        name: "c",
        image: "pkg",
        command: ["/bin/true"],
        securityContext: container,
      }],
      ...extra,
    },
  };
}

const context = fc.record({
  runAsUser: fc.constantFrom(0, 1000, 1002),
  runAsNonRoot: fc.boolean(),
  windowsOptions: fc.record({ runAsUserName: fc.constantFrom("root", "toor", "alice", "%n x") }),
  allowPrivilegeEscalation: fc.boolean(),
  privileged: fc.boolean(),
}, { requiredKeys: [] });

const packageUnit = fc.option(
  fc.constantFrom("root", "0", "toor", "alice", "1000", "nobody-here").map((user) =>
    `[Service]\nUser=${user}\nExecStart=/usr/bin/pkg\n`
  ),
  { nil: undefined },
);

/** The uid systemd runs a `User=` value as (none = root). */
function uidOf(user: string | undefined): number | undefined {
  if (user === undefined) return 0;
  if (/^\d+$/.test(user)) return Number(user);
  return node.lookupUser(user)?.uid;
}

Deno.test("security: runAsNonRoot never runs as root (uid, user name, package User=)", () => {
  let refused = 0;
  fc.assert(
    fc.property(
      fc.option(context, { nil: undefined }),
      fc.option(context, { nil: undefined }),
      packageUnit,
      (podContext, containerContext, unit) => {
        let plan;
        try {
          plan = planPod(input(pod(podContext, containerContext), unit));
        } catch (e) {
          if (!(e instanceof PodError)) throw e;
          refused++;
          return;
        }
        const nonRoot = containerContext?.runAsNonRoot ?? podContext?.runAsNonRoot;
        const users = service(parseUnit(plan.units[0].text), "User");
        const uid = uidOf(users.at(-1));
        if (nonRoot) assert.ok(uid !== undefined && uid !== 0, `runs as ${users.at(-1)}`);
      },
    ),
    { seed: SEED, numRuns: RUNS },
  );
  console.log(`  ${refused} of ${RUNS} refused`);
});

Deno.test("security: allowPrivilegeEscalation: false yields NoNewPrivileges=yes", () => {
  fc.assert(
    fc.property(fc.option(context, { nil: undefined }), context, packageUnit, (p, c, unit) => {
      let plan;
      try {
        plan = planPod(input(pod(p, c), unit));
      } catch (e) {
        if (!(e instanceof PodError)) throw e;
        return;
      }
      const noNewPrivileges = service(parseUnit(plan.units[0].text), "NoNewPrivileges");
      if (c.allowPrivilegeEscalation === false && !c.privileged) {
        assert.deepEqual(noNewPrivileges, ["yes"]);
      }
    }),
    { seed: SEED, numRuns: RUNS },
  );
});

Deno.test("security: Secret files are never readable by others, whatever the modes", () => {
  const mode = fc.option(fc.integer({ min: 0, max: 0o777 }), { nil: undefined });
  fc.assert(
    fc.property(mode, mode, mode, (defaultMode, itemMode, projectedMode) => {
      const plan = planPod(input(pod(undefined, undefined, {
        volumes: [
          { name: "a", secret: { secretName: "s", defaultMode } },
          {
            name: "b",
            secret: { secretName: "s", items: [{ key: "k", path: "x", mode: itemMode }] },
          },
          {
            name: "c",
            projected: { defaultMode: projectedMode, sources: [{ secret: { name: "s" } }] },
          },
        ],
      })));
      // The volumes' files (the container's environment file is beside them, root's own).
      const files = plan.volumes.filter((v) => v.kind === "file" && v.path.includes("/volumes/"));
      assert.equal(files.length, 3);
      for (const f of files) {
        assert.equal(f.mode & 0o007, 0, `${f.path} mode ${f.mode.toString(8)}`);
        assert.ok(f.kind === "file" && f.secret);
      }
      // Their directories keep others out too.
      for (const d of plan.volumes.filter((v) => v.kind === "dir")) {
        assert.equal(d.mode & 0o007, 0, `${d.path} mode ${d.mode.toString(8)}`);
      }
    }),
    { seed: SEED, numRuns: RUNS },
  );
});

Deno.test("security: hostPath policy (allow-list by whole segments, state directory never)", () => {
  const allowed = ["/srv", "/var/log/", "/dev/fuse"];
  const table: [string, string[], string | undefined][] = [
    ["/srv", allowed, undefined],
    ["/srv/data/x", allowed, undefined],
    ["/srv//data/./x/", allowed, undefined],
    ["/var/log", allowed, undefined],
    ["/dev/fuse", allowed, undefined],
    ["/srvx", allowed, "is not allowed on this node"],
    ["/etc", allowed, "is not allowed on this node"],
    [
      "/",
      allowed,
      `overlaps systemk's state directory ${STATE_DIR}, which holds every pod's Secrets`,
    ],
    ["/srv/../etc", allowed, "contains '..' or NUL"],
    ["/srv/a\0", allowed, "contains '..' or NUL"],
    ["srv", allowed, "is not absolute"],
    ["", allowed, "is not absolute"],
    ["/etc", [], "is not allowed on this node"],
    ["/etc", ["etc"], "is not allowed on this node"],
    ["/etc", ["/"], undefined],
    [
      "/run",
      ["/"],
      `overlaps systemk's state directory ${STATE_DIR}, which holds every pod's Secrets`,
    ],
    [
      STATE_DIR,
      ["/"],
      `overlaps systemk's state directory ${STATE_DIR}, which holds every pod's Secrets`,
    ],
    [
      `${STATE_DIR}/u-2/volumes`,
      ["/"],
      `overlaps systemk's state directory ${STATE_DIR}, which holds every pod's Secrets`,
    ],
    [`${STATE_DIR}-other`, ["/"], undefined],
  ];
  for (const [path, allow, problem] of table) {
    assert.equal(
      hostPathProblem(path, { allowedHostPaths: allow, stateDir: STATE_DIR }),
      problem,
      `${path} with ${allow}`,
    );
  }
});

Deno.test("security: hostPath volumes are refused unless allowed, with the flag to allow them", () => {
  const hostPod = pod(undefined, undefined, {
    volumes: [{ name: "etc", hostPath: { path: "/etc" } }],
  });
  assert.throws(
    () => planPod(input(hostPod)),
    (e) =>
      e instanceof PodError && e.reason === "CreateContainerConfigError" &&
      e.message.includes('hostPath.path "/etc" is not allowed on this node') &&
      e.message.includes("--allowed-host-paths=/etc"),
  );
  const allowed = planPod({ ...input(hostPod), allowedHostPaths: ["/etc"] });
  assert.equal(allowed.volumes.some((v) => v.path.startsWith("/etc")), false, "never written");
});

Deno.test("security: ids systemd would misread and bad grace periods are refused, naming the field", () => {
  const refused = (p: V1Pod, field: RegExp) =>
    assert.throws(() => planPod(input(p)), (e) => e instanceof PodError && field.test(e.message));
  for (const id of [-1, 1.5, 65535, 2 ** 31, Number.NaN]) {
    refused(pod(undefined, { runAsUser: id }), /securityContext\.runAsUser .* is not a valid/);
    refused(pod({ runAsGroup: id }, undefined), /securityContext\.runAsGroup .* is not a valid/);
    refused(pod({ fsGroup: id }, undefined), /fsGroup .* is not a valid/);
    refused(pod({ supplementalGroups: [id] }, undefined), /supplementalGroups .* is not a valid/);
  }
  for (const grace of [-1, 0.5, Number.NaN]) {
    refused(
      pod(undefined, undefined, { terminationGracePeriodSeconds: grace }),
      /terminationGracePeriodSeconds .* is not a whole number/,
    );
  }
  // In range but unknown to the node: systemd would fail the unit with 217/USER.
  refused(pod(undefined, { runAsUser: 2 ** 31 - 1 }), /runAsUser 2147483647 is not a user on node/);
  const ok = planPod(input(pod(undefined, { runAsUser: 1000 })));
  assert.deepEqual(service(ok.units[0].unit, "User"), ["1000"]);
});

Deno.test("security: groups the node does not know are refused, naming the field", () => {
  const refused = (p: V1Pod, field: RegExp) =>
    assert.throws(() => planPod(input(p)), (e) => e instanceof PodError && field.test(e.message));
  refused(pod(undefined, { runAsGroup: 4242 }), /securityContext\.runAsGroup 4242 is not a group/);
  refused(pod({ supplementalGroups: [1000, 4243] }, undefined), /supplementalGroups 4243 is not/);
  refused(pod({ fsGroup: 4244 }, undefined), /fsGroup 4244 is not a group on node/);
  const known = planPod(input(pod({ fsGroup: 1002 }, { runAsUser: 1000, runAsGroup: 1000 })));
  assert.deepEqual(service(known.units[0].unit, "Group"), ["1000"]);
  assert.deepEqual(service(known.units[0].unit, "SupplementaryGroups"), ["1002"]);
});

Deno.test("security: a user name systemd would read differently is written as its uid", () => {
  const plan = planPod(input(pod(undefined, { windowsOptions: { runAsUserName: "%n x" } })));
  assert.deepEqual(service(plan.units[0].unit, "User"), ["1002"]);
  const plain = planPod(input(pod(undefined, { windowsOptions: { runAsUserName: "alice" } })));
  assert.deepEqual(service(plain.units[0].unit, "User"), ["alice"]);
});

Deno.test("security: mount points are compared as systemd reads them", () => {
  const mounts = () =>
    pod(undefined, undefined, {
      volumes: [{ name: "v", emptyDir: {} }, { name: "w", emptyDir: {} }],
    });
  const twice = mounts();
  twice.spec!.containers[0].volumeMounts = [
    { name: "v", mountPath: "/data" },
    { name: "w", mountPath: "/data/" },
  ];
  assert.throws(() => planPod(input(twice)), /mountPath \/data\/ is used twice/);
  for (const root of ["/", "//", "/.", "/a/.."]) {
    const p = mounts();
    p.spec!.containers[0].volumeMounts = [{ name: "v", mountPath: root }];
    assert.throws(() => planPod(input(p)), /is not an absolute path below \/ without '\.\.'/, root);
  }
});
