/**
 * Measures the node and its running containers and pods (the I/O side of {@link ./stats.ts})
 * and keeps the previous measurement, from which CPU rates are computed.
 *
 * Deno refuses to read `/proc` and `/sys` without `--allow-all`, which systemk does not get, so
 * the node's figures come through `--allow-sys` (`os.cpus()`, `os.uptime()`,
 * `Deno.systemMemoryInfo()`), the containers' from systemd (`CPUUsageNSec`, `MemoryCurrent` of
 * their units) and the pods' from systemd too, for their slices. Where systemd accounts no CPU
 * (a cgroup v1/v2 hybrid whose v1 `cpuacct` it does not manage) the CPU time is read from the
 * cgroups themselves ({@link ../node/cgroup.ts}): a container's cgroup is its pod slice's plus
 * its unit's name, systemd's layout.
 *
 * @module
 */
import os from "node:os";
import type { V1Pod } from "@kubernetes/client-node";
import { readCPUUsage } from "../node/cgroup.ts";
import type { CgroupUsage } from "../unit/properties.ts";
import { podSliceName } from "../unit/name.ts";
import {
  type CgroupUsageReader,
  isRunning,
  type PodSource,
  type UnitPropertiesReader,
} from "./pods.ts";
import type { ContainerSample, NodeSample, PodSample, ResourceSample } from "./stats.ts";

/** Reads the node's CPU, memory and boot time from the kernel. */
export function readNode(now: number): NodeSample {
  // Busy time: everything but idle, summed over CPUs (ms).
  const busyMs = os.cpus().reduce(
    (sum, cpu) => sum + cpu.times.user + cpu.times.nice + cpu.times.sys + cpu.times.irq,
    0,
  );
  const memory = Deno.systemMemoryInfo();
  return {
    cpuNanos: busyMs * 1e6,
    memoryWorkingSetBytes: memory.total - memory.available,
    memoryAvailableBytes: memory.available,
    memoryUsageBytes: memory.total - memory.free,
    startTimeMs: Math.round(now - os.uptime() * 1000),
  };
}

/** Where the sampler reads from. */
export interface ResourceSamplerOptions {
  pods: PodSource;
  unitProperties: UnitPropertiesReader;
  /** A pod slice's cgroup and what systemd accounts for it. */
  cgroupUsage: CgroupUsageReader;
  /** CPU time (ns) of cgroups systemd accounts none for; default {@link readCPUUsage}. */
  cpuUsage?: (cgroups: readonly string[]) => Promise<Map<string, number>>;
  /** The node's counters at a time; default {@link readNode}. */
  node?: (now: number) => NodeSample;
  /** Clock in ms; default `Date.now`. */
  now?: () => number;
}

/** A CPU figure still to be read from a cgroup, and where it goes. */
interface MissingCPU {
  cgroup: string;
  set(nanos: number): void;
}

/** Measures usage; see the module doc. */
export class ResourceSampler {
  readonly #o: Required<ResourceSamplerOptions>;
  #last?: ResourceSample;

  constructor(options: ResourceSamplerOptions) {
    this.#o = { node: readNode, now: () => Date.now(), cpuUsage: readCPUUsage, ...options };
  }

  /** A fresh measurement, and the one before it (for rates), if any. */
  async sample(): Promise<{ sample: ResourceSample; previous?: ResourceSample }> {
    const timeMs = this.#o.now();
    const missing: MissingCPU[] = [];
    const pods = await Promise.all(this.#o.pods.pods().map((pod) => this.#pod(pod, missing)));
    if (missing.length > 0) {
      // One read for every cgroup of the measurement; a failed read leaves them unmeasured.
      const usage = await this.#o.cpuUsage(missing.map((m) => m.cgroup)).catch(() => new Map());
      for (const m of missing) {
        const nanos = usage.get(m.cgroup);
        if (nanos !== undefined) m.set(nanos);
      }
    }
    const sample: ResourceSample = {
      timeMs,
      node: this.#o.node(timeMs),
      pods: pods.filter((p): p is PodSample => p !== undefined),
    };
    const previous = this.#last;
    this.#last = sample;
    return { sample, previous };
  }

  async #pod(pod: V1Pod, missing: MissingCPU[]): Promise<PodSample | undefined> {
    const m = pod.metadata ?? {};
    const [slice, ...containers] = await Promise.all([
      this.#o.cgroupUsage(podSliceName(m.uid!)).catch((): CgroupUsage => ({})),
      ...[...this.#o.pods.containerUnits(pod)].map(([name, unit]) => this.#container(name, unit)),
    ]);
    const running = containers.filter((c) => c !== undefined);
    if (running.length === 0) return undefined;
    const start = pod.status?.startTime ?? m.creationTimestamp;
    const sample: PodSample = {
      namespace: m.namespace!,
      name: m.name!,
      uid: m.uid!,
      startTimeMs: start ? new Date(start).getTime() : undefined,
      cpuNanos: slice.cpuNanos,
      memoryBytes: slice.memoryBytes,
      containers: running.map((c) => c.sample),
    };
    const cgroup = slice.controlGroup;
    if (cgroup === undefined) return sample;
    if (sample.cpuNanos === undefined) {
      missing.push({ cgroup, set: (nanos) => sample.cpuNanos = nanos });
    }
    for (const { unit, sample: c } of running) {
      if (c.cpuNanos !== undefined) continue;
      missing.push({ cgroup: `${cgroup}/${unit}`, set: (nanos) => c.cpuNanos = nanos });
    }
    return sample;
  }

  async #container(
    name: string,
    unit: string,
  ): Promise<{ unit: string; sample: ContainerSample } | undefined> {
    const props = await this.#o.unitProperties(unit).catch(() => undefined);
    if (!props || !isRunning(props)) return undefined;
    return {
      unit,
      sample: {
        name,
        startTimeMs: props.ExecMainStartTimestamp
          ? Math.floor(props.ExecMainStartTimestamp / 1000)
          : undefined,
        cpuNanos: props.CPUUsageNSec,
        memoryBytes: props.MemoryCurrent,
      },
    };
  }
}
