import assert from "node:assert/strict";
import type { UnitProperties } from "../unit/properties.ts";
import { at, exited, invocation, iso, killed, neverStarted, running } from "./_testing.ts";
import { containerID, observeUnit, timestamp, type UnitObservation } from "./unit_state.ts";

const UNIT = "systemk.default.web.app.service";
const CID = `systemd://${invocation("a")}`;

/** The observation with times as RFC 3339 and unset fields dropped, for readable tables. */
function plain(observation: UnitObservation): unknown {
  return JSON.parse(JSON.stringify(observation));
}

const cases: { name: string; props: UnitProperties; oomKilled?: boolean; want: unknown }[] = [
  { name: "inactive, never started", props: neverStarted(), want: { kind: "absent" } },
  {
    name: "activating in ExecStartPre (setting up)",
    props: neverStarted({
      ActiveState: "activating",
      SubState: "start-pre",
      InvocationID: invocation("a"),
    }),
    want: { kind: "absent" },
  },
  {
    name: "unit file not found",
    props: neverStarted({ LoadState: "not-found" }),
    want: {
      kind: "absent",
      error: {
        reason: "CreateContainerError",
        message: `systemd cannot load unit ${UNIT}: LoadState=not-found`,
      },
    },
  },
  {
    name: "unit file rejected",
    props: neverStarted({ LoadState: "error" }),
    want: {
      kind: "absent",
      error: {
        reason: "CreateContainerError",
        message: `systemd cannot load unit ${UNIT}: LoadState=error`,
      },
    },
  },
  {
    name: "unit file removed while the process still runs",
    props: running(5, { LoadState: "not-found" }),
    want: { kind: "running", containerID: CID, startedAt: iso(5) },
  },
  {
    name: "active/running",
    props: running(5),
    want: { kind: "running", containerID: CID, startedAt: iso(5) },
  },
  {
    name: "oneshot main process running (activating/start)",
    props: running(5, { ActiveState: "activating", SubState: "start" }),
    want: { kind: "running", containerID: CID, startedAt: iso(5) },
  },
  {
    name: "stopping, main process still alive (deactivating/stop-sigterm)",
    props: running(5, { ActiveState: "deactivating", SubState: "stop-sigterm" }),
    want: { kind: "running", containerID: CID, startedAt: iso(5) },
  },
  {
    name: "exited 0, unit inactive",
    props: exited(0),
    want: {
      kind: "terminated",
      terminated: {
        containerID: CID,
        exitCode: 0,
        reason: "Completed",
        startedAt: iso(0),
        finishedAt: iso(10),
      },
    },
  },
  {
    name: "RemainAfterExit: active/exited",
    props: exited(0, { ActiveState: "active", SubState: "exited" }),
    want: {
      kind: "terminated",
      terminated: {
        containerID: CID,
        exitCode: 0,
        reason: "Completed",
        startedAt: iso(0),
        finishedAt: iso(10),
      },
    },
  },
  {
    name: "main exited, ExecStopPost running (deactivating/stop-post)",
    props: exited(3, { ActiveState: "deactivating", SubState: "stop-post" }),
    want: {
      kind: "terminated",
      terminated: {
        containerID: CID,
        exitCode: 3,
        reason: "Error",
        startedAt: iso(0),
        finishedAt: iso(10),
      },
    },
  },
  {
    name: "failed with exit code 3",
    props: exited(3),
    want: {
      kind: "terminated",
      terminated: {
        containerID: CID,
        exitCode: 3,
        reason: "Error",
        startedAt: iso(0),
        finishedAt: iso(10),
      },
    },
  },
  {
    name: "killed by SIGKILL",
    props: killed(9),
    want: {
      kind: "terminated",
      terminated: {
        containerID: CID,
        exitCode: 137,
        signal: 9,
        reason: "Error",
        startedAt: iso(0),
        finishedAt: iso(10),
      },
    },
  },
  {
    name: "stopped by SIGTERM (clean for systemd, 143 for Kubernetes)",
    props: killed(15, { ActiveState: "inactive", SubState: "dead", Result: "success" }),
    want: {
      kind: "terminated",
      terminated: {
        containerID: CID,
        exitCode: 143,
        signal: 15,
        reason: "Error",
        startedAt: iso(0),
        finishedAt: iso(10),
      },
    },
  },
  {
    name: "dumped core on SIGSEGV",
    props: killed(11, { ExecMainCode: 3, Result: "core-dump" }),
    want: {
      kind: "terminated",
      terminated: {
        containerID: CID,
        exitCode: 139,
        signal: 11,
        reason: "Error",
        startedAt: iso(0),
        finishedAt: iso(10),
      },
    },
  },
  {
    name: "memory limit: Result=oom-kill",
    props: killed(9, { Result: "oom-kill" }),
    want: {
      kind: "terminated",
      terminated: {
        containerID: CID,
        exitCode: 137,
        signal: 9,
        reason: "OOMKilled",
        startedAt: iso(0),
        finishedAt: iso(10),
      },
    },
  },
  {
    name: "memory limit on cgroup v1: Result=signal, OOM kill reported by the caller",
    props: killed(9),
    oomKilled: true,
    want: {
      kind: "terminated",
      terminated: {
        containerID: CID,
        exitCode: 137,
        signal: 9,
        reason: "OOMKilled",
        startedAt: iso(0),
        finishedAt: iso(10),
      },
    },
  },
  {
    name: "command not found: 203/EXEC",
    props: exited(203),
    want: {
      kind: "terminated",
      terminated: {
        containerID: CID,
        exitCode: 203,
        reason: "StartError",
        message: "systemd could not start the process: status=203/EXEC",
        startedAt: iso(0),
        finishedAt: iso(10),
      },
    },
  },
  {
    name: "unknown user: 217/USER",
    props: exited(217),
    want: {
      kind: "terminated",
      terminated: {
        containerID: CID,
        exitCode: 217,
        reason: "StartError",
        message: "systemd could not start the process: status=217/USER",
        startedAt: iso(0),
        finishedAt: iso(10),
      },
    },
  },
  {
    name: "start timeout, then killed",
    props: killed(9, { Result: "timeout" }),
    want: {
      kind: "terminated",
      terminated: {
        containerID: CID,
        exitCode: 137,
        signal: 9,
        reason: "Error",
        message: "systemd unit result: timeout",
        startedAt: iso(0),
        finishedAt: iso(10),
      },
    },
  },
  {
    name: "failed before the main process ran (ExecStartPre failed)",
    props: neverStarted({
      ActiveState: "failed",
      SubState: "failed",
      Result: "exit-code",
      InvocationID: invocation("a"),
      InactiveEnterTimestamp: at(3),
    }),
    want: {
      kind: "terminated",
      terminated: {
        containerID: CID,
        exitCode: 128,
        reason: "StartError",
        message: "the unit failed before its main process ran (Result=exit-code)",
        finishedAt: iso(3),
      },
    },
  },
];

for (const { name, props, oomKilled, want } of cases) {
  Deno.test(`observeUnit: ${name}`, () => {
    assert.deepEqual(plain(observeUnit({ unitName: UNIT, props, oomKilled })), want);
  });
}

Deno.test("timestamp truncates µs to whole seconds and maps 0 to undefined", () => {
  assert.equal(timestamp(0), undefined);
  assert.equal(timestamp(1_700_000_000_999_999)?.toISOString(), "2023-11-14T22:13:20.000Z");
  assert.equal(timestamp(1_000_000)?.toISOString(), "1970-01-01T00:00:01.000Z");
});

Deno.test("containerID is systemd://<InvocationID>, undefined before the first start", () => {
  assert.equal(containerID(invocation("b")), `systemd://${invocation("b")}`);
  assert.equal(containerID(""), undefined);
});
