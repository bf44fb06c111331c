import assert from "node:assert/strict";
import { formatPlan } from "./mod.ts";
import type { PodPlan } from "./mod.ts";

Deno.test("formatPlan: unit headers, entries with mode and owner, secrets never printed, checks and records", () => {
  const bytes = (s: string) => new TextEncoder().encode(s);
  const plan: PodPlan = {
    podDir: "/run/systemk/u",
    slice: {
      name: "systemk-podu.slice",
      unit: { header: [], sections: [] },
      text: "[Slice]\nMemoryMax=1\n",
    },
    units: [{
      name: "systemk.ns.p.c.service",
      container: "c",
      init: false,
      kind: "app",
      unit: { header: [], sections: [] },
      text: "[Service]\nExecStart=/bin/true\n",
    }],
    unplanned: [{
      container: "dbg",
      reason: "CreateContainerError",
      message: "its target is not running",
      retry: true,
    }],
    volumes: [
      { kind: "dir", path: "/run/systemk/u", mode: 0o700, uid: 0, gid: 0 },
      { kind: "tmpfs", path: "/run/systemk/u/t", mode: 0o777, uid: 1, gid: 2, sizeBytes: 10 },
      {
        kind: "file",
        path: "/run/systemk/u/a",
        content: bytes("hi\n"),
        mode: 0o644,
        uid: 1,
        gid: 2,
      },
      { kind: "file", path: "/run/systemk/u/b", content: bytes("x"), mode: 0o4, uid: 1, gid: 2 },
      {
        kind: "file",
        path: "/run/systemk/u/s",
        content: bytes("hunter2"),
        mode: 0o600,
        uid: 1,
        gid: 2,
        secret: true,
      },
      {
        kind: "file",
        path: "/run/systemk/u/bin",
        content: new Uint8Array([0xff, 0xfe]),
        mode: 0o644,
        uid: 1,
        gid: 2,
      },
    ],
    hostPathChecks: [
      { volume: "h", path: "/srv", type: "Directory" },
      { volume: "h", path: "/srv/sub", type: "" },
    ],
    podIds: { users: [5000], groups: [5000, 6000] },
    claimMounts: [{
      volume: "data",
      persistentVolume: "pv1",
      source: "local",
      path: "/mnt/pv1",
      type: "",
      readOnly: false,
      subPaths: [{ path: "db", mountPoint: "/run/systemk/u/volume-subpaths/data/c/0" }],
      fsGroup: { gid: 2000, changePolicy: "OnRootMismatch" },
    }],
  };
  const text = formatPlan(plan);
  assert.equal(
    text,
    `# unit: systemk-podu.slice
[Slice]
MemoryMax=1

# unit: systemk.ns.p.c.service
[Service]
ExecStart=/bin/true

# not planned: dbg: CreateContainerError: its target is not running

# volumes of /run/systemk/u
# dir: /run/systemk/u (mode 0700, owner 0:0)
# tmpfs: /run/systemk/u/t (mode 0777, owner 1:2, size 10)
# file: /run/systemk/u/a (mode 0644, owner 1:2, 3 bytes)
hi
# file: /run/systemk/u/b (mode 0004, owner 1:2, 1 bytes)
x
# (no newline at end of file)
# file: /run/systemk/u/s (mode 0600, owner 1:2, 7 bytes)
<7 bytes>
# file: /run/systemk/u/bin (mode 0644, owner 1:2, 2 bytes)
<2 bytes, binary>
# hostPath check: volume h: /srv must stay allowed once resolved and be Directory
# hostPath check: volume h: /srv/sub must stay allowed once resolved
# user records: users 5000, groups 5000 6000
# persistentVolumeClaim: volume data: PersistentVolume pv1, local /mnt/pv1, subPath db pinned at /run/systemk/u/volume-subpaths/data/c/0, fsGroup 2000 (OnRootMismatch)
`,
  );
  assert.ok(!text.includes("hunter2"));
});
