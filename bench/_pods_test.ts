import assert from "node:assert/strict";
import type { V1ContainerStatus } from "@kubernetes/client-node";
import { allRunning, inParallel, isReady, probedPod, sleepPod } from "./_pods.ts";

const container = (state: V1ContainerStatus["state"]): V1ContainerStatus => ({
  name: "c",
  image: "/bin/sleep",
  imageID: "",
  ready: true,
  restartCount: 0,
  state,
});

Deno.test("all running needs the phase and every container running", () => {
  const pod = sleepPod("p", "n1");
  const running = container({ running: {} });
  assert.equal(
    allRunning({ ...pod, status: { phase: "Running", containerStatuses: [running] } }),
    true,
  );
  assert.equal(
    allRunning({ ...pod, status: { phase: "Pending", containerStatuses: [running] } }),
    false,
  );
  assert.equal(allRunning({ ...pod, status: { phase: "Running", containerStatuses: [] } }), false);
  assert.equal(
    allRunning({
      ...pod,
      status: { phase: "Running", containerStatuses: [container({ waiting: {} })] },
    }),
    false,
  );
});

Deno.test("inParallel runs everything with bounded concurrency", async () => {
  let inFlight = 0;
  let most = 0;
  const done: number[] = [];
  await inParallel([1, 2, 3, 4, 5, 6, 7], 3, async (n) => {
    most = Math.max(most, ++inFlight);
    await new Promise((r) => setTimeout(r, 5));
    inFlight--;
    done.push(n);
  });
  assert.equal(most, 3);
  assert.deepEqual(done.sort(), [1, 2, 3, 4, 5, 6, 7]);
});

Deno.test("ready needs the Ready condition True; probed pods carry their readiness probe", () => {
  const pod = probedPod("p", "n1", { tcpSocket: { port: 8080 }, periodSeconds: 1 });
  assert.deepEqual(pod.spec?.containers[0].readinessProbe, {
    tcpSocket: { port: 8080 },
    periodSeconds: 1,
  });
  assert.equal(isReady(pod), false);
  const ready = (status: string) => ({
    ...pod,
    status: { conditions: [{ type: "Ready", status }] },
  });
  assert.equal(isReady(ready("True")), true);
  assert.equal(isReady(ready("False")), false);
});
