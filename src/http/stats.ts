/**
 * Resource usage of the node and its pods, in the two shapes metrics-server and `kubectl top`
 * read from a kubelet: `/metrics/resource` (Prometheus text with explicit timestamps; what
 * metrics-server v0.6+ scrapes) and `/stats/summary` (the stats/v1alpha1 Summary JSON).
 *
 * Containers are systemd units and a pod is its slice: CPU is the unit's or slice's CPU time
 * (`CPUUsageNSec`, else its cgroup's), memory its `MemoryCurrent`. The node's CPU and memory come
 * from the kernel's counters (see {@link ./resources.ts}).
 *
 * @module
 */
import { familyHeader, sampleLine } from "../metrics/mod.ts";

/** Cumulative CPU and current memory of one container (a unit). */
export interface ContainerSample {
  name: string;
  /** When the running process started, ms since the epoch. */
  startTimeMs?: number;
  /** Cumulative CPU time in ns. */
  cpuNanos?: number;
  /** Memory in use (the working set), bytes. */
  memoryBytes?: number;
}

/** One pod: its slice's usage and its running containers. */
export interface PodSample {
  namespace: string;
  name: string;
  uid: string;
  /** ms since the epoch. */
  startTimeMs?: number;
  /** Cumulative CPU time of the pod's slice in ns. */
  cpuNanos?: number;
  /** Memory in use by the pod's slice, bytes. */
  memoryBytes?: number;
  containers: ContainerSample[];
}

/** The node's own usage. */
export interface NodeSample {
  /** Cumulative non-idle CPU time of all CPUs, ns. */
  cpuNanos: number;
  /** Total minus available memory, bytes. */
  memoryWorkingSetBytes: number;
  /** MemAvailable, bytes. */
  memoryAvailableBytes: number;
  /** Total minus free memory, bytes. */
  memoryUsageBytes: number;
  /** Boot time, ms since the epoch. */
  startTimeMs: number;
}

/** One measurement of everything, taken at `timeMs`. */
export interface ResourceSample {
  timeMs: number;
  node: NodeSample;
  pods: PodSample[];
}

/**
 * `/metrics/resource` as the kubelet writes it: node, pod and container CPU (cumulative
 * seconds, counters) and working-set memory (gauges), container start times, and
 * `resource_scrape_error`, each sample with the time it was measured (ms).
 */
export function renderResourceMetrics(sample: ResourceSample): string {
  const t = sample.timeMs;
  const lines: string[] = [];
  /** A family with one sample per item of `of` that has a value (measured at `t`). */
  const family = <T>(
    header: { name: string; help: string; type: "counter" | "gauge" },
    of: readonly T[],
    measure: (item: T) => { labels: Record<string, string>; value?: number },
  ) => {
    lines.push(...familyHeader(header));
    for (const item of of) {
      const { labels, value } = measure(item);
      if (value !== undefined) {
        lines.push(sampleLine(header.name, { labels, value, timestampMs: t }));
      }
    }
  };
  const containers = sample.pods.flatMap((pod) =>
    pod.containers.map((c) => ({
      c,
      labels: { container: c.name, namespace: pod.namespace, pod: pod.name },
    }))
  );
  const podLabels = (pod: PodSample) => ({ namespace: pod.namespace, pod: pod.name });
  const seconds = (nanos?: number) => nanos === undefined ? undefined : nanos / 1e9;

  family(
    {
      name: "container_cpu_usage_seconds_total",
      help: "[STABLE] Cumulative cpu time consumed by the container in core-seconds",
      type: "counter",
    },
    containers,
    ({ c, labels }) => ({ labels, value: seconds(c.cpuNanos) }),
  );
  family(
    {
      name: "container_memory_working_set_bytes",
      help: "[STABLE] Current working set of the container in bytes",
      type: "gauge",
    },
    containers,
    ({ c, labels }) => ({ labels, value: c.memoryBytes }),
  );
  family(
    {
      name: "container_start_time_seconds",
      help: "[STABLE] Start time of the container since unix epoch in seconds",
      type: "gauge",
    },
    containers,
    ({ c, labels }) => ({
      labels,
      value: c.startTimeMs === undefined ? undefined : c.startTimeMs / 1000,
    }),
  );
  family(
    {
      name: "node_cpu_usage_seconds_total",
      help: "[STABLE] Cumulative cpu time consumed by the node in core-seconds",
      type: "counter",
    },
    [sample.node],
    (node) => ({ labels: {}, value: seconds(node.cpuNanos) }),
  );
  family(
    {
      name: "node_memory_working_set_bytes",
      help: "[STABLE] Current working set of the node in bytes",
      type: "gauge",
    },
    [sample.node],
    (node) => ({ labels: {}, value: node.memoryWorkingSetBytes }),
  );
  family(
    {
      name: "pod_cpu_usage_seconds_total",
      help: "[STABLE] Cumulative cpu time consumed by the pod in core-seconds",
      type: "counter",
    },
    sample.pods,
    (pod) => ({ labels: podLabels(pod), value: seconds(pod.cpuNanos) }),
  );
  family(
    {
      name: "pod_memory_working_set_bytes",
      help: "[STABLE] Current working set of the pod in bytes",
      type: "gauge",
    },
    sample.pods,
    (pod) => ({ labels: podLabels(pod), value: pod.memoryBytes }),
  );
  // The kubelet writes this one without a timestamp.
  lines.push(
    ...familyHeader({
      name: "resource_scrape_error",
      help: "[STABLE] 1 if there was an error while getting container metrics, 0 otherwise",
      type: "gauge",
    }),
    sampleLine("resource_scrape_error", { labels: {}, value: 0 }),
  );
  return lines.join("\n") + "\n";
}

/** CPU in the Summary API's shape. */
export interface CPUStats {
  time: string;
  usageNanoCores?: number;
  usageCoreNanoSeconds?: number;
}

/** Memory in the Summary API's shape. */
export interface MemoryStats {
  time: string;
  availableBytes?: number;
  usageBytes?: number;
  workingSetBytes?: number;
}

/** The stats/v1alpha1 Summary, as far as systemk measures it. */
export interface Summary {
  node: {
    nodeName: string;
    startTime: string;
    cpu: CPUStats;
    memory: MemoryStats;
  };
  pods: Array<{
    podRef: { name: string; namespace: string; uid: string };
    startTime?: string;
    containers: Array<{ name: string; startTime?: string; cpu: CPUStats; memory: MemoryStats }>;
    cpu: CPUStats;
    memory: MemoryStats;
  }>;
}

/** Options of {@link buildSummary}. */
export interface SummaryOptions {
  /** The sample before `sample`: CPU rates are measured from it. */
  previous?: ResourceSample;
}

/**
 * `/stats/summary`. `usageNanoCores` is the CPU rate between `previous` and `sample` (absent
 * without a previous sample of the same node or container).
 */
export function buildSummary(
  nodeName: string,
  sample: ResourceSample,
  options: SummaryOptions = {},
): Summary {
  const { previous } = options;
  const time = new Date(sample.timeMs).toISOString();
  const seconds = previous ? (sample.timeMs - previous.timeMs) / 1000 : 0;
  const rate = (now?: number, before?: number) =>
    now === undefined || before === undefined || seconds <= 0 || now < before
      ? undefined
      : Math.round((now - before) / seconds);
  const cpu = (now?: number, before?: number): CPUStats => ({
    time,
    usageNanoCores: rate(now, before),
    usageCoreNanoSeconds: now === undefined ? undefined : Math.round(now),
  });
  const memory = (bytes?: number): MemoryStats => ({
    time,
    workingSetBytes: bytes,
    usageBytes: bytes,
  });
  // CPU time before, by pod UID and by `<pod UID>/<container>`.
  const before = new Map<string, number | undefined>();
  for (const pod of previous?.pods ?? []) {
    before.set(pod.uid, pod.cpuNanos);
    for (const c of pod.containers) before.set(`${pod.uid}/${c.name}`, c.cpuNanos);
  }
  const iso = (ms?: number) => ms === undefined ? undefined : new Date(ms).toISOString();
  return {
    node: {
      nodeName,
      startTime: new Date(sample.node.startTimeMs).toISOString(),
      cpu: cpu(sample.node.cpuNanos, previous?.node.cpuNanos),
      memory: {
        time,
        availableBytes: sample.node.memoryAvailableBytes,
        usageBytes: sample.node.memoryUsageBytes,
        workingSetBytes: sample.node.memoryWorkingSetBytes,
      },
    },
    pods: sample.pods.map((pod) => {
      const containers = pod.containers.map((c) => ({
        name: c.name,
        startTime: iso(c.startTimeMs),
        cpu: cpu(c.cpuNanos, before.get(`${pod.uid}/${c.name}`)),
        memory: memory(c.memoryBytes),
      }));
      return {
        podRef: { name: pod.name, namespace: pod.namespace, uid: pod.uid },
        startTime: iso(pod.startTimeMs),
        containers,
        cpu: cpu(pod.cpuNanos, before.get(pod.uid)),
        memory: memory(pod.memoryBytes),
      };
    }),
  };
}
