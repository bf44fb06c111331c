import assert from "node:assert/strict";
import { buildSummary, renderResourceMetrics, type ResourceSample } from "./stats.ts";

const sample: ResourceSample = {
  timeMs: 1_800_000_010_000,
  node: {
    cpuNanos: 5e12,
    memoryWorkingSetBytes: 4e9,
    memoryAvailableBytes: 20e9,
    memoryUsageBytes: 6e9,
    startTimeMs: 1_790_000_000_000,
  },
  pods: [{
    namespace: "default",
    name: "web",
    uid: "u1",
    startTimeMs: 1_800_000_000_000,
    cpuNanos: 3.5e9,
    memoryBytes: 2000,
    containers: [
      { name: "nginx", startTimeMs: 1_800_000_001_000, cpuNanos: 2e9, memoryBytes: 1000 },
      { name: "sidecar", startTimeMs: 1_800_000_001_000, cpuNanos: 1e9, memoryBytes: 500 },
    ],
  }],
};

/**
 * What metrics-server v0.8's decoder (pkg/scraper/client/resource/decode.go) takes from a
 * line: the metric name up to `{` or space, the container/pod/namespace labels found by
 * searching for `container="`, `pod="` and `namespace="`, the value and the ms timestamp.
 */
function decodeLikeMetricsServer(text: string) {
  const nodes: Record<string, { value: number; ts: number }> = {};
  const containers: Record<string, { cpu?: number; memory?: number; ts: number }> = {};
  for (const line of text.split("\n")) {
    if (!line || line.startsWith("#")) continue;
    const [series, value, ts] = line.split(" ");
    const name = series.split("{")[0];
    const label = (tag: string) => {
      const i = series.indexOf(`${tag}="`) + tag.length + 2;
      return series.slice(i, series.indexOf('"', i));
    };
    if (name.startsWith("node_")) nodes[name] = { value: Number(value), ts: Number(ts) };
    if (
      name === "container_cpu_usage_seconds_total" || name === "container_memory_working_set_bytes"
    ) {
      const key = `${label("namespace")}/${label("pod")}/${label("container")}`;
      containers[key] ??= { ts: Number(ts) };
      if (name.includes("cpu")) containers[key].cpu = Number(value) * 1e9;
      else containers[key].memory = Number(value);
    }
  }
  return { nodes, containers };
}

Deno.test("/metrics/resource: the series metrics-server reads, with ms timestamps", () => {
  const text = renderResourceMetrics(sample);
  const decoded = decodeLikeMetricsServer(text);
  assert.deepEqual(decoded.nodes, {
    node_cpu_usage_seconds_total: { value: 5000, ts: sample.timeMs },
    node_memory_working_set_bytes: { value: 4e9, ts: sample.timeMs },
  });
  assert.deepEqual(decoded.containers["default/web/nginx"], {
    cpu: 2e9,
    memory: 1000,
    ts: sample.timeMs,
  });
  assert.match(text, /^# TYPE container_cpu_usage_seconds_total counter$/m);
  // The pod's slice, not the sum of its containers (it holds exec'd commands and exited ones).
  assert.match(text, /^pod_cpu_usage_seconds_total\{namespace="default",pod="web"\} 3.5 \d+$/m);
  assert.match(text, /^pod_memory_working_set_bytes\{namespace="default",pod="web"\} 2000 \d+$/m);
  assert.match(text, /^container_start_time_seconds\{container="nginx",[^}]+\} 1800000001 \d+$/m);
  assert.match(text, /^resource_scrape_error 0$/m);
});

Deno.test("/metrics/resource: an unmeasured container or pod leaves out its series", () => {
  const partial = structuredClone(sample);
  partial.pods[0].containers[1].cpuNanos = undefined;
  partial.pods[0].cpuNanos = undefined;
  const text = renderResourceMetrics(partial);
  assert.doesNotMatch(text, /container_cpu_usage_seconds_total\{container="sidecar"/);
  assert.match(text, /container_cpu_usage_seconds_total\{container="nginx"/);
  assert.doesNotMatch(text, /^pod_cpu_usage_seconds_total/m);
  assert.match(text, /^pod_memory_working_set_bytes/m);
});

Deno.test("/stats/summary: cumulative CPU, and a rate from the previous sample", () => {
  const first = buildSummary("n1", sample);
  assert.equal(first.node.cpu.usageNanoCores, undefined);
  assert.equal(first.node.cpu.usageCoreNanoSeconds, 5e12);
  assert.equal(first.node.memory.workingSetBytes, 4e9);
  const later = structuredClone(sample);
  later.timeMs += 2000;
  later.node.cpuNanos += 1e9; // half a core over 2 s
  later.pods[0].containers[0].cpuNanos! += 2e8; // 0.1 core
  later.pods[0].cpuNanos! += 3e8; // 0.15 core: the slice also ran an exec'd command
  const summary = buildSummary("n1", later, { previous: sample });
  assert.equal(summary.node.cpu.usageNanoCores, 5e8);
  const pod = summary.pods[0];
  assert.deepEqual(pod.podRef, { name: "web", namespace: "default", uid: "u1" });
  assert.equal(pod.containers[0].cpu.usageNanoCores, 1e8);
  assert.equal(pod.containers[1].cpu.usageNanoCores, 0);
  assert.equal(pod.cpu.usageNanoCores, 1.5e8);
  assert.equal(pod.cpu.usageCoreNanoSeconds, 3.8e9);
  assert.equal(pod.memory.workingSetBytes, 2000);
  assert.equal(pod.containers[0].startTime, "2027-01-15T08:00:01.000Z");
});
