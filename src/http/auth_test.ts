import assert from "node:assert/strict";
import {
  type Decision,
  requestAttributes,
  RequestAuth,
  type ReviewClient,
  type UserInfo,
} from "./auth.ts";

Deno.test("request attributes: the kubelet's path to subresource mapping, verb from method", () => {
  const sub = (path: string) => requestAttributes("n1", { method: "GET", path }).subresource;
  assert.equal(sub("/stats/summary"), "stats");
  assert.equal(sub("/stats"), "stats");
  assert.equal(sub("/statsx"), "proxy");
  assert.equal(sub("/metrics"), "metrics");
  assert.equal(sub("/metrics/resource"), "metrics");
  assert.equal(sub("/logs/syslog"), "log");
  assert.equal(sub("/containerLogs/default/web/nginx"), "proxy");
  assert.equal(sub("/pods"), "proxy");
  assert.equal(sub("/healthz"), "proxy");
  assert.deepEqual(requestAttributes("n1", { method: "POST", path: "/exec/a/b/c" }), {
    verb: "create",
    resource: "nodes",
    subresource: "proxy",
    name: "n1",
  });
});

/** A review client answering from tables, counting how often it is asked. */
function fakeReviews(
  tokens: Record<string, UserInfo>,
  allowed: (u: UserInfo, sub: string) => boolean,
) {
  const calls = { token: 0, access: 0 };
  const client: ReviewClient = {
    reviewToken(token) {
      calls.token++;
      return Promise.resolve(tokens[token]);
    },
    reviewAccess(user, attributes): Promise<Decision> {
      calls.access++;
      return Promise.resolve({ allowed: allowed(user, attributes.subresource) });
    },
  };
  return { client, calls };
}

Deno.test("bearer tokens: unknown is 401, not allowed is 403, answers cached for a while", async () => {
  let now = 0;
  const { client, calls } = fakeReviews(
    { good: { username: "scraper", groups: ["g"] } },
    (_u, sub) => sub === "metrics",
  );
  const auth = new RequestAuth({ nodeName: "n1", reviews: client, now: () => now });
  const metrics = { method: "GET", path: "/metrics" };
  const pods = { method: "GET", path: "/pods" };
  assert.equal((await auth.check(metrics, {})).status, 401, "anonymous");
  assert.equal((await auth.check(metrics, { authorization: "Bearer bad" })).status, 401);
  const ok = await auth.check(metrics, { authorization: "Bearer good" });
  assert.deepEqual(ok, { status: 200, user: { username: "scraper", groups: ["g"] } });
  const denied = await auth.check(pods, { authorization: "Bearer good" });
  assert.equal(denied.status, 403);
  assert.match(
    (denied as { message: string }).message,
    /user=scraper, verb=get, resource=nodes, subresource=proxy/,
  );
  const before = { ...calls };
  await auth.check(metrics, { authorization: "Bearer good" });
  await auth.check(pods, { authorization: "Bearer good" });
  await auth.check(metrics, { authorization: "Bearer bad" });
  assert.deepEqual(calls, before, "within the TTLs nothing is asked again");
  now += 6_000; // past the denied TTL (5 s), within the allowed one (10 s)
  await auth.check(metrics, { authorization: "Bearer good" });
  await auth.check(pods, { authorization: "Bearer good" });
  assert.deepEqual(calls, { token: before.token, access: before.access + 1 });
  now += 5_000;
  await auth.check(metrics, { authorization: "Bearer good" });
  assert.deepEqual(calls, { token: before.token + 1, access: before.access + 2 });
});
