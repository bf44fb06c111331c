/**
 * Measures the node and its running containers (the I/O side of {@link ./stats.ts}) and keeps
 * the previous measurement, from which CPU rates are computed.
 *
 * @module
 */
import type { V1Pod } from "@kubernetes/client-node";
import { containerUnits, isRunning, type PodSource, type UnitPropertiesReader } from "./pods.ts";
import {
  type ContainerSample,
  parseCgroupCpuStat,
  parseMeminfo,
  parseProcCgroup,
  parseProcStat,
  type PodSample,
  type ResourceSample,
} from "./stats.ts";

/** Where the sampler reads from. */
export interface ResourceSamplerOptions {
  pods: PodSource;
  unitProperties: UnitPropertiesReader;
  /** Reads a file as text; tests replace /proc and /sys. Default `Deno.readTextFile`. */
  readTextFile?: (path: string) => Promise<string>;
  /** Clock in ms; default `Date.now`. */
  now?: () => number;
}

/** cgroup v2 mounts: the hybrid layout's `unified` first, then the pure v2 mount. */
const CGROUP2_MOUNTS = ["/sys/fs/cgroup/unified", "/sys/fs/cgroup"];

/** Measures usage; see the module doc. */
export class ResourceSampler {
  readonly #o: Required<ResourceSamplerOptions>;
  #last?: ResourceSample;

  constructor(options: ResourceSamplerOptions) {
    this.#o = {
      readTextFile: (path) => Deno.readTextFile(path),
      now: () => Date.now(),
      ...options,
    };
  }

  /** A fresh measurement, and the one before it (for rates), if any. */
  async sample(): Promise<{ sample: ResourceSample; previous?: ResourceSample }> {
    const read = this.#o.readTextFile;
    const timeMs = this.#o.now();
    const [stat, meminfo, pods] = await Promise.all([
      read("/proc/stat").then(parseProcStat),
      read("/proc/meminfo").then(parseMeminfo),
      Promise.all(this.#o.pods.pods().map((pod) => this.#pod(pod))),
    ]);
    const sample: ResourceSample = {
      timeMs,
      node: {
        cpuNanos: stat.cpuNanos,
        memoryWorkingSetBytes: meminfo.total - meminfo.available,
        memoryAvailableBytes: meminfo.available,
        memoryUsageBytes: meminfo.total - meminfo.free,
        startTimeMs: stat.bootTimeMs,
      },
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
      cpuNanos: props.CPUUsageNSec ?? await this.#cgroupCpu(props.MainPID),
      memoryBytes: props.MemoryCurrent,
    };
  }

  /** CPU of the cgroup of `pid` from cgroup v2's `cpu.stat`, for when systemd does not account it. */
  async #cgroupCpu(pid: number): Promise<number | undefined> {
    if (!pid) return undefined;
    const read = this.#o.readTextFile;
    const cgroup = parseProcCgroup(await read(`/proc/${pid}/cgroup`).catch(() => ""));
    if (!cgroup) return undefined;
    for (const mount of CGROUP2_MOUNTS) {
      const text = await read(`${mount}${cgroup}/cpu.stat`).catch(() => undefined);
      if (text !== undefined) return parseCgroupCpuStat(text);
    }
    return undefined;
  }
}
