import assert from "node:assert/strict";
import { type CrashLoop, decideRestart, goDuration } from "./crash_loop.ts";
import { at, exited, invocation, pod, running } from "../status/_testing.ts";

const BASE = 10_000;

/** Exit 0 under `RemainAfterExit=yes`: the unit stays active/exited. */
const exitedOk = (id: string) =>
  exited(0, { ActiveState: "active", SubState: "exited", InvocationID: invocation(id) });
const failed = (id: string, ranSeconds = 10) =>
  exited(1, { InvocationID: invocation(id), ExecMainExitTimestamp: at(ranSeconds) });

Deno.test("crash loop: the delay doubles from the base up to 5 min", () => {
  const p = pod({ containers: ["c"] });
  const loop: CrashLoop = { nextDelayMs: BASE };
  const delays = "0123456789".split("").map((id) =>
    decideRestart(loop, {
      props: failed(id),
      pod: p,
      container: p.spec!.containers[0],
      kind: "app",
      baseMs: BASE,
    })?.delayMs
  );
  assert.deepEqual(delays, [
    10_000,
    20_000,
    40_000,
    80_000,
    160_000,
    300_000,
    300_000,
    300_000,
    300_000,
    300_000,
  ]);
  assert.equal(
    loop.message,
    "back-off 5m0s restarting failed container=c pod=web_default(uid-1)",
  );
});

Deno.test("crash loop: a run of 10 min resets the delay", () => {
  const p = pod({ containers: ["c"] });
  const loop: CrashLoop = { nextDelayMs: 160_000 };
  assert.equal(
    decideRestart(loop, {
      props: failed("1", 599),
      pod: p,
      container: p.spec!.containers[0],
      kind: "app",
      baseMs: BASE,
    })?.delayMs,
    160_000,
  );
  assert.equal(
    decideRestart(loop, {
      props: failed("2", 600),
      pod: p,
      container: p.spec!.containers[0],
      kind: "app",
      baseMs: BASE,
    })?.delayMs,
    BASE,
  );
  assert.equal(loop.nextDelayMs, 2 * BASE);
});

Deno.test("crash loop: restartPolicy decides which ends restart", () => {
  const table: [string, boolean, boolean][] = [
    ["Always", true, true],
    ["OnFailure", false, true],
    ["Never", false, false],
  ];
  for (const [restartPolicy, afterSuccess, afterFailure] of table) {
    const p = pod({ containers: ["c"], restartPolicy });
    const c = p.spec!.containers[0];
    assert.equal(
      Boolean(
        decideRestart({ nextDelayMs: BASE }, {
          props: exitedOk("1"),
          pod: p,
          container: c,
          kind: "app",
          baseMs: BASE,
        }),
      ),
      afterSuccess,
    );
    assert.equal(
      Boolean(
        decideRestart({ nextDelayMs: BASE }, {
          props: failed("1"),
          pod: p,
          container: c,
          kind: "app",
          baseMs: BASE,
        }),
      ),
      afterFailure,
    );
  }
});

Deno.test("crash loop: each ended run is restarted once; live runs never", () => {
  const p = pod({ containers: ["c"] });
  const c = p.spec!.containers[0];
  const loop: CrashLoop = { nextDelayMs: BASE };
  assert.equal(
    decideRestart(loop, { props: running(), pod: p, container: c, kind: "app", baseMs: BASE }),
    undefined,
  );
  assert.ok(
    decideRestart(loop, { props: failed("1"), pod: p, container: c, kind: "app", baseMs: BASE }),
  );
  assert.equal(
    decideRestart(loop, { props: failed("1"), pod: p, container: c, kind: "app", baseMs: BASE }),
    undefined,
    "same run again",
  );
  // Starting again, systemd may still show the previous run's exit status.
  const starting = failed("2", 10);
  assert.equal(
    decideRestart(loop, {
      props: { ...starting, ActiveState: "activating", SubState: "start" },
      pod: p,
      container: c,
      kind: "app",
      baseMs: BASE,
    }),
    undefined,
  );
  assert.ok(
    decideRestart(loop, { props: starting, pod: p, container: c, kind: "app", baseMs: BASE }),
  );
});

Deno.test("goDuration: as Go prints a time.Duration", () => {
  const table: [number, string][] = [
    [200, "200ms"],
    [10_000, "10s"],
    [1_500, "1.5s"],
    [80_000, "1m20s"],
    [300_000, "5m0s"],
    [3_600_000, "1h0m0s"],
  ];
  for (const [ms, text] of table) assert.equal(goDuration(ms), text);
});

Deno.test("crash loop: a sidecar restarts after any end, whatever the pod's restartPolicy", () => {
  const p = {
    ...pod({ containers: ["app"], restartPolicy: "Never" }),
  };
  const sidecar = { name: "proxy", restartPolicy: "Always" };
  for (const props of [exitedOk("1"), failed("1")]) {
    const decision = decideRestart({ nextDelayMs: BASE }, {
      props,
      pod: p,
      container: sidecar,
      kind: "sidecar",
      baseMs: BASE,
    });
    assert.equal(decision?.delayMs, BASE);
  }
});
