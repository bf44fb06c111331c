/**
 * Measures the node and its running containers (the I/O side of {@link ./stats.ts}) and keeps
 * the previous measurement, from which CPU rates are computed.
 *
 * Deno refuses to read `/proc` and `/sys` without `--allow-all`, which systemk does not get, so
 * the node's figures come through `--allow-sys` (`os.cpus()`, `os.uptime()`,
 * `Deno.systemMemoryInfo()`), and the containers' from systemd (`CPUUsageNSec`,
 * `MemoryCurrent`). Where systemd does not account CPU (a cgroup v1/v2 hybrid whose v1 `cpuacct`
 * it does not manage), containers have no CPU figure and metrics-server skips them.
 *
 * @module
 */
import os from "node:os";
import type { V1Pod } from "@kubernetes/client-node";
import { containerUnits, isRunning, type PodSource, type UnitPropertiesReader } from "./pods.ts";
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
  /** The node's counters at a time; default {@link readNode}. */
  node?: (now: number) => NodeSample;
  /** Clock in ms; default `Date.now`. */
  now?: () => number;
}

/** Measures usage; see the module doc. */
export class ResourceSampler {
  readonly #o: Required<ResourceSamplerOptions>;
  #last?: ResourceSample;

  constructor(options: ResourceSamplerOptions) {
    this.#o = { node: readNode, now: () => Date.now(), ...options };
  }

  /** A fresh measurement, and the one before it (for rates), if any. */
  async sample(): Promise<{ sample: ResourceSample; previous?: ResourceSample }> {
    const timeMs = this.#o.now();
    const pods = await Promise.all(this.#o.pods.pods().map((pod) => this.#pod(pod)));
    const sample: ResourceSample = {
      timeMs,
      node: this.#o.node(timeMs),
      pods: pods.filter((p): p is PodSample => p !== undefined),
    };
    const previous = this.#last;
    this.#last = sample;
    return { sample, previous };
  }

  async #pod(pod: V1Pod): Promise<PodSample | undefined> {
    const m = pod.metadata ?? {};
    const containers = await Promise.all(
      [...containerUnits(pod)].map(([name, unit]) => this.#container(name, unit)),
    );
    const running = containers.filter((c): c is ContainerSample => c !== undefined);
    if (running.length === 0) return undefined;
    const start = pod.status?.startTime ?? m.creationTimestamp;
    return {
      namespace: m.namespace!,
      name: m.name!,
      uid: m.uid!,
      startTimeMs: start ? new Date(start).getTime() : undefined,
      containers: running,
    };
  }

  async #container(name: string, unit: string): Promise<ContainerSample | undefined> {
    const props = await this.#o.unitProperties(unit).catch(() => undefined);
    if (!props || !isRunning(props)) return undefined;
    return {
      name,
      startTimeMs: props.ExecMainStartTimestamp
        ? Math.floor(props.ExecMainStartTimestamp / 1000)
        : undefined,
      cpuNanos: props.CPUUsageNSec,
      memoryBytes: props.MemoryCurrent,
    };
  }
}
