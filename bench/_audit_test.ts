import assert from "node:assert/strict";
import { countByVerb, nodeOf, parseAuditLine, total } from "./_audit.ts";

const line = (o: Record<string, unknown>) =>
  JSON.stringify({
    kind: "Event",
    user: { username: "system:node:n1" },
    requestReceivedTimestamp: "2026-11-25T11:00:00.123456Z",
    stageTimestamp: "2026-11-25T11:00:00.125000Z",
    ...o,
  });

Deno.test("a request counts once; a watch when its response starts", () => {
  const patch = {
    verb: "patch",
    stage: "ResponseComplete",
    objectRef: { resource: "pods", subresource: "status", namespace: "default", name: "p" },
    responseStatus: { code: 200 },
  };
  const r = parseAuditLine(line(patch))!;
  assert.equal(r.resource, "pods/status");
  assert.equal(r.received, Date.parse("2026-11-25T11:00:00.123Z") + 0.456);
  assert.equal(r.stageAt, Date.parse("2026-11-25T11:00:00.125Z"));
  assert.equal(parseAuditLine(line({ ...patch, stage: "ResponseStarted" })), undefined);
  const watch = { verb: "watch", objectRef: { resource: "pods" } };
  assert.ok(parseAuditLine(line({ ...watch, stage: "ResponseStarted" })));
  assert.equal(parseAuditLine(line({ ...watch, stage: "ResponseComplete" })), undefined);
  const raw = parseAuditLine(
    line({ verb: "get", stage: "ResponseComplete", requestURI: "/livez?x" }),
  );
  assert.equal(raw?.resource, "/livez");
});

Deno.test("counts by verb and resource within a window, for chosen users", () => {
  const at = (user: string, verb: string, t: string) =>
    parseAuditLine(line({
      user: { username: user },
      verb,
      stage: "ResponseComplete",
      objectRef: { resource: "leases" },
      requestReceivedTimestamp: t,
    }))!;
  const reqs = [
    at("system:node:n1", "update", "2026-11-25T11:00:01Z"),
    at("system:node:n1", "update", "2026-11-25T11:00:02Z"),
    at("system:node:n2", "update", "2026-11-25T11:00:02Z"),
    at("system:node:n1", "get", "2026-11-25T11:00:09Z"),
    { ...at("system:node:n1", "update", "2026-11-25T11:00:03Z"), code: 409 },
  ];
  const counts = countByVerb(
    reqs,
    (u) => nodeOf(u) === "n1",
    Date.parse("2026-11-25T11:00:00Z"),
    Date.parse("2026-11-25T11:00:05Z"),
  );
  assert.deepEqual(counts, { "update leases": 2, "update leases → 409": 1 });
  assert.equal(total(counts), 3);
  assert.equal(nodeOf("admin"), undefined);
});
