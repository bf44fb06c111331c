import assert from "node:assert/strict";
import type { V1Pod } from "@kubernetes/client-node";
import type { UnitProperties } from "../unit/properties.ts";
import { RequestAuth } from "./auth.ts";
import { kubeletHandler, type KubeletHandlerOptions } from "./handler.ts";
import { isProtocolSwitch, type ProtocolSwitch } from "./streaming.ts";
import { Journal } from "./journal.ts";
import { apiRequests } from "../metrics/mod.ts";
import { ResourceSampler } from "./resources.ts";
import { fixedPods } from "./_testing.ts";

const pod: V1Pod = {
  metadata: {
    namespace: "default",
    name: "web",
    uid: "u1",
    creationTimestamp: new Date("2026-11-25T11:00:00Z"),
  },
  spec: { containers: [{ name: "app", image: "/bin/app" }, { name: "idle", image: "/bin/idle" }] },
  // app was restarted once (by the runtime: systemd's NRestarts stays 0).
  status: {
    containerStatuses: [{
      name: "app",
      image: "/bin/app",
      imageID: "",
      ready: true,
      restartCount: 1,
    }],
  },
};

const running = {
  ActiveState: "active",
  SubState: "running",
  ExecMainStartTimestamp: 3,
  MemoryCurrent: 1,
} as UnitProperties;

/**
 * journalctl stand-in: prints its arguments' run as one JSON entry per argument it was asked
 * to match, so the test sees exactly which run and which options reached it.
 */
const FAKE_JOURNALCTL = [
  "/bin/sh",
  "-c",
  `for a in "$@"; do case "$a" in
     --reverse) printf '%s\\n' '{"__REALTIME_TIMESTAMP":"3","_STREAM_ID":"run2"}' \\
       '{"__REALTIME_TIMESTAMP":"2","_STREAM_ID":"run1"}'; exit 0;;
     _STREAM_ID=*) printf '{"__REALTIME_TIMESTAMP":"1000000","MESSAGE":"%s"}\\n' "\${a#*=}";;
     --since=*) printf '{"__REALTIME_TIMESTAMP":"1000000","MESSAGE":"%s"}\\n' "$a";;
   esac; done`,
  "journalctl",
];

function handler(exec?: KubeletHandlerOptions["exec"]) {
  const auth = new RequestAuth({
    nodeName: "n1",
    reviews: {
      reviewToken: (token) =>
        Promise.resolve(token === "t" ? { username: "admin", groups: [] } : undefined),
      reviewAccess: () => Promise.resolve({ allowed: true }),
    },
  });
  return kubeletHandler({
    nodeName: "n1",
    pods: fixedPods(
      () => [pod],
      (unit) =>
        unit === "systemk.default.web.app.service"
          ? running
          : { ActiveState: "inactive", SubState: "dead", InvocationID: "" } as UnitProperties,
    ),
    journal: new Journal({ command: FAKE_JOURNALCTL }),
    sampler: new ResourceSampler({
      pods: fixedPods(() => [pod]),
      unitProperties: () => Promise.resolve(running),
      cgroupUsage: () => Promise.resolve({}),
    }),
    auth,
    exec,
    now: () => Date.parse("2026-11-25T12:00:00Z"),
  });
}

/** A plain response, asserting that the answer is no protocol switch. */
function plain(answer: Response | ProtocolSwitch): Response {
  assert.ok(!isProtocolSwitch(answer), "a plain response");
  return answer;
}

async function get(
  path: string,
  init: { method?: string; token?: string; headers?: Record<string, string> } = {},
) {
  const response = plain(
    await handler()(
      new Request(`https://kubelet${path}`, {
        method: init.method ?? "GET",
        headers: init.headers,
      }),
      { authorization: `Bearer ${init.token ?? "t"}` },
    ),
  );
  return { status: response.status, body: await response.text() };
}

Deno.test("routes: health, pods, running pods, not supported, not found", async () => {
  assert.deepEqual(await get("/healthz"), { status: 200, body: "ok\n" });
  const pods = JSON.parse((await get("/pods")).body);
  assert.equal(pods.kind, "PodList");
  assert.deepEqual(pods.items.map((p: V1Pod) => p.metadata?.uid), ["u1"]);
  const runningPods = JSON.parse((await get("/runningpods/")).body);
  assert.deepEqual(runningPods.items[0].spec.containers, [{ name: "app", image: "/bin/app" }]);
  const run = await get("/run/default/web/app?cmd=true", { method: "POST" });
  assert.equal(run.status, 501, "this handler has no exec");
  assert.equal((await get("/pods", { method: "DELETE" })).status, 405);
  assert.equal((await get("/configz")).status, 404);
  assert.equal((await get("/healthz", { token: "wrong" })).status, 401);
  // No log handler (--enable-system-log-handler=false): the kubelet's answer.
  assert.deepEqual(await get("/logs/?query=ssh"), {
    status: 405,
    body: "logs endpoint is disabled.\n",
  });
});

Deno.test("containerLogs: the unit's current run, options passed on, errors as the kubelet's", async () => {
  assert.deepEqual(await get("/containerLogs/default/web/app"), { status: 200, body: "run2\n" });
  assert.deepEqual(await get("/containerLogs/default/web/app?previous=true"), {
    status: 200,
    body: "run1\n",
  });
  // sinceSeconds becomes journalctl's @seconds form, relative to the handler's clock.
  const since = await get("/containerLogs/default/web/app?sinceSeconds=60");
  assert.match(since.body, /--since=@1795607940\.000000/);
  assert.equal((await get("/containerLogs/default/web/app?limitBytes=2")).body, "ru");
  assert.equal(
    (await get("/containerLogs/default/web/app?timestamps=true")).body,
    "1970-01-01T00:00:01.000000000Z run2\n",
  );
  assert.equal((await get("/containerLogs/default/other/app")).status, 404);
  assert.equal((await get("/containerLogs/default/web/nope")).status, 404);
  assert.equal((await get("/containerLogs/default/web")).status, 400);
  const bad = await get("/containerLogs/default/web/app?tailLines=-3");
  assert.equal(bad.status, 400);
  assert.match(bad.body, /tailLines/);
});

Deno.test("requests are counted by path and status", async () => {
  const before = apiRequests.get({ path: "/healthz", code: "200" });
  await get("/healthz");
  assert.equal(apiRequests.get({ path: "/healthz", code: "200" }), before + 1);
  const metrics = await get("/metrics");
  assert.match(
    metrics.body,
    /^systemk_kubelet_api_requests_total\{code="200",path="\/healthz"\} \d+$/m,
  );
  const resource = await get("/metrics/resource");
  assert.match(
    resource.body,
    /^container_memory_working_set_bytes\{container="app",namespace="default",pod="web"\} 1 \d+$/m,
  );
});

Deno.test("containerLogs: no output yet is an empty log; no restart yet is no previous", async () => {
  const auth = new RequestAuth({
    nodeName: "n1",
    reviews: {
      reviewToken: () => Promise.resolve({ username: "admin", groups: [] }),
      reviewAccess: () => Promise.resolve({ allowed: true }),
    },
  });
  const h = kubeletHandler({
    nodeName: "n1",
    // Started after every entry the journal has.
    pods: fixedPods(
      () => [{ ...pod, status: undefined }],
      () => ({ ...running, ExecMainStartTimestamp: 10 }),
    ),
    journal: new Journal({ command: FAKE_JOURNALCTL }),
    sampler: new ResourceSampler({
      pods: fixedPods(() => []),
      unitProperties: () => Promise.reject(),
      cgroupUsage: () => Promise.reject(),
    }),
    auth,
  });
  const r = plain(
    await h(new Request("https://kubelet/containerLogs/default/web/app"), {
      authorization: "Bearer x",
    }),
  );
  assert.equal(r.status, 200);
  assert.equal(await r.text(), "");
  // Never restarted: no previous run, even though the journal has older runs of the unit name.
  const previous = plain(
    await h(
      new Request("https://kubelet/containerLogs/default/web/app?previous=true"),
      { authorization: "Bearer x" },
    ),
  );
  assert.equal(previous.status, 400);
  assert.match(await previous.text(), /previous terminated container "app" in pod "web" not found/);
});

Deno.test("streaming routes: checked like the kubelet's before the protocol switch", async () => {
  const upgrade = { connection: "Upgrade", upgrade: "SPDY/3.1" };
  const exec = "/exec/default/web/app?command=sh&output=1";
  const notUpgraded = await get(exec, { method: "POST" });
  assert.equal(notUpgraded.status, 400);
  assert.match(notUpgraded.body, /SPDY\/3\.1/);
  assert.equal((await get(exec, { method: "POST", headers: upgrade })).status, 400, "no protocol");
  const wrong = await get(exec, {
    method: "POST",
    headers: { ...upgrade, "x-stream-protocol-version": "v3.channel.k8s.io" },
  });
  assert.equal(wrong.status, 403);
  assert.match(wrong.body, /client supports \[v3.channel.k8s.io\], server accepts/);
  const v4 = { ...upgrade, "x-stream-protocol-version": "v5.channel.k8s.io, v4.channel.k8s.io" };
  assert.equal((await get("/exec/default/web/app?command=sh", { headers: v4 })).status, 400);
  assert.equal(
    (await get("/exec/default/nope/app?command=sh&output=1", { headers: v4 })).status,
    404,
  );
  assert.equal(
    (await get("/exec/default/web/u2/app?command=sh&output=1", { headers: v4 })).status,
    404,
  );
  assert.equal(
    (await get("/exec/default/web/nope?command=sh&output=1", { headers: v4 })).status,
    404,
  );
  assert.equal((await get("/exec/default/web/app?output=1", { headers: v4 })).status, 400);
  assert.equal((await get("/portForward/default/web", { method: "DELETE" })).status, 405);
  // This handler has no exec: 501 rather than a switch that cannot run anything.
  assert.equal((await get(exec, { headers: v4 })).status, 501);
  const forward = await handler()(
    new Request("https://kubelet/portForward/default/web/u1", {
      method: "POST",
      headers: { ...upgrade, "x-stream-protocol-version": "portforward.k8s.io" },
    }),
    { authorization: "Bearer t" },
  );
  assert.ok(isProtocolSwitch(forward));
  assert.deepEqual(forward.headers, {
    upgrade: "SPDY/3.1",
    "x-stream-protocol-version": "portforward.k8s.io",
  });
});

Deno.test("/run: the command split at spaces, its output, 500 when it fails", async () => {
  const ran: { unit: string; command: string[] }[] = [];
  const h = handler((unit, options) => {
    ran.push({ unit, command: options.command });
    const code = options.command.includes("fail") ? 2 : 0;
    const bytes = (text: string) => ReadableStream.from([new TextEncoder().encode(text)]);
    return Promise.resolve({
      stdout: bytes("out "),
      stderr: bytes("err"),
      resize: () => Promise.resolve(),
      kill: () => Promise.resolve(),
      status: Promise.resolve({ exitCode: code, signal: null, timedOut: false }),
    });
  });
  const post = async (path: string) => {
    const r = plain(
      await h(new Request(`https://kubelet${path}`, { method: "POST" }), {
        authorization: "Bearer t",
      }),
    );
    return { status: r.status, body: await r.text() };
  };
  assert.deepEqual(await post("/run/default/web/app?cmd=echo%20a%20b"), {
    status: 200,
    body: "out err",
  });
  assert.deepEqual(ran, [{ unit: "systemk.default.web.app.service", command: ["echo", "a", "b"] }]);
  const failed = await post("/run/default/web/u1/app?cmd=sh%20fail");
  assert.equal(failed.status, 500);
  assert.equal(failed.body, "command 'sh fail' exited with 2: out err\n");
  assert.equal((await post("/run/default/web/nope?cmd=true")).status, 404);
  assert.equal((await post("/run/default/web/app")).status, 400);
  assert.equal(ran.length, 2);
});
