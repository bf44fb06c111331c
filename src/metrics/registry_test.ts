import assert from "node:assert/strict";
import { Registry, sampleLine } from "./registry.ts";

Deno.test("registry: counters, gauges and histograms in the text format", () => {
  const r = new Registry();
  const requests = r.counter("requests_total", "Requests.");
  const pods = r.gauge("pods", "Pods by phase.");
  const latency = r.histogram("latency_seconds", "Latency.", { buckets: [0.1, 1] });
  requests.inc({ code: "200" });
  requests.inc({ code: "200" }, 2);
  requests.inc({ code: "401" });
  pods.replaceAll([{ labels: { phase: "Running" }, value: 3 }]);
  pods.replaceAll([{ labels: { phase: "Pending" }, value: 1 }]);
  latency.observe({}, 0.05);
  latency.observe({}, 0.5);
  latency.observe({}, 5);
  assert.equal(
    r.render(),
    [
      "# HELP requests_total Requests.",
      "# TYPE requests_total counter",
      'requests_total{code="200"} 3',
      'requests_total{code="401"} 1',
      "# HELP pods Pods by phase.",
      "# TYPE pods gauge",
      'pods{phase="Pending"} 1',
      "# HELP latency_seconds Latency.",
      "# TYPE latency_seconds histogram",
      'latency_seconds_bucket{le="0.1"} 1',
      'latency_seconds_bucket{le="1"} 2',
      'latency_seconds_bucket{le="+Inf"} 3',
      "latency_seconds_sum 5.55",
      "latency_seconds_count 3",
      "",
    ].join("\n"),
  );
  assert.throws(() => requests.inc({}, -1), /cannot decrease/);
  assert.throws(() => r.counter("requests_total", "again"), /twice/);
});

Deno.test("histogram.time observes failures too", async () => {
  const r = new Registry();
  const h = r.histogram("op_seconds", "Op.", { buckets: [10] });
  await assert.rejects(h.time({ result: "x" }, () => Promise.reject(new Error("boom"))));
  assert.match(r.render(), /^op_seconds_count\{result="x"\} 1$/m);
});

Deno.test("label values are escaped and sorted; timestamps appended", () => {
  assert.equal(
    sampleLine("m", {
      labels: { pod: 'a"b', container: "c\\d\ne" },
      value: 1.5,
      timestampMs: 1700000000000,
    }),
    'm{container="c\\\\d\\ne",pod="a\\"b"} 1.5 1700000000000',
  );
});
