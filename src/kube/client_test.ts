import assert from "node:assert/strict";
import { ApiException } from "@kubernetes/client-node";
import {
  apiServerEndpoint,
  describeError,
  httpStatus,
  loadKubeConfig,
  microTime,
} from "./client.ts";

Deno.test("apiServerEndpoint: host and port from the server URL", () => {
  assert.deepEqual(apiServerEndpoint("https://10.0.0.1:6443"), { host: "10.0.0.1", port: 6443 });
  assert.deepEqual(apiServerEndpoint("https://[fd00::1]:6443/"), { host: "fd00::1", port: 6443 });
  assert.deepEqual(apiServerEndpoint("https://api.example.com"), {
    host: "api.example.com",
    port: 443,
  });
  assert.deepEqual(apiServerEndpoint("http://127.0.0.1"), { host: "127.0.0.1", port: 80 });
});

Deno.test("httpStatus and describeError read client-node errors", () => {
  const err = new ApiException(
    403,
    "forbidden",
    '{"message":"configmaps \\"x\\" is forbidden"}',
    {},
  );
  assert.equal(httpStatus(err), 403);
  assert.equal(describeError(err), '403: configmaps "x" is forbidden');
  assert.equal(httpStatus(Object.assign(new Error("Gone"), { statusCode: 410 })), 410);
  assert.equal(httpStatus(new Error("ECONNREFUSED")), undefined);
  assert.equal(describeError(new Error("boom")), "boom");
});

Deno.test("loadKubeConfig reads a file and refuses one without a cluster", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const good = `${dir}/good`;
    await Deno.writeTextFile(
      good,
      `apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "https://127.0.0.1:6443"}}]
users: [{name: u, user: {token: t}}]
contexts: [{name: x, context: {cluster: c, user: u}}]
current-context: x
`,
    );
    assert.equal(loadKubeConfig(good).getCurrentCluster()?.server, "https://127.0.0.1:6443");
    const empty = `${dir}/empty`;
    await Deno.writeTextFile(empty, "apiVersion: v1\nkind: Config\n");
    assert.throws(() => loadKubeConfig(empty), /no current cluster/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("microTime serializes with six fraction digits", () => {
  assert.equal(
    JSON.stringify(microTime(new Date("2026-01-01T00:00:00.123Z"))),
    '"2026-01-01T00:00:00.123000Z"',
  );
});
