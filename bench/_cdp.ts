/**
 * A minimal Chrome DevTools Protocol client for a Deno process started with `--inspect`: run
 * code in it, force a GC, take a heap snapshot, record a CPU profile. For finding out where
 * systemk's memory and time go.
 *
 * @module
 */

/** A connected inspector session. */
export class Inspector {
  readonly #ws: WebSocket;
  #nextId = 1;
  readonly #pending = new Map<
    number,
    { resolve: (v: unknown) => void; reject: (e: Error) => void }
  >();
  readonly #listeners = new Map<string, (params: Record<string, unknown>) => void>();

  private constructor(ws: WebSocket) {
    this.#ws = ws;
    ws.onmessage = (e) => {
      const msg = JSON.parse(e.data as string);
      if (msg.id !== undefined) {
        const p = this.#pending.get(msg.id);
        this.#pending.delete(msg.id);
        if (msg.error) p?.reject(new Error(`${msg.error.message}`));
        else p?.resolve(msg.result);
      } else {
        this.#listeners.get(msg.method)?.(msg.params);
      }
    };
  }

  /** Connects to the first target of the inspector at `hostPort` (e.g. `127.0.0.1:9229`). */
  static async connect(hostPort: string, timeoutMs = 30_000): Promise<Inspector> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      try {
        const targets = await (await fetch(`http://${hostPort}/json/list`)).json();
        const ws = new WebSocket(targets[0].webSocketDebuggerUrl);
        await new Promise((resolve, reject) => {
          ws.onopen = resolve;
          ws.onerror = reject;
        });
        return new Inspector(ws);
      } catch (e) {
        if (Date.now() > deadline) throw e;
        await new Promise((r) => setTimeout(r, 250));
      }
    }
  }

  /** Sends one command and resolves with its result. */
  send<T = Record<string, unknown>>(
    method: string,
    params: Record<string, unknown> = {},
  ): Promise<T> {
    const id = this.#nextId++;
    this.#ws.send(JSON.stringify({ id, method, params }));
    return new Promise((resolve, reject) =>
      this.#pending.set(id, { resolve: resolve as (v: unknown) => void, reject })
    );
  }

  /** Evaluates `expression` in the process and returns its JSON value. */
  async evaluate<T>(expression: string): Promise<T> {
    const r = await this.send<{ result: { value: T } }>("Runtime.evaluate", {
      expression,
      returnByValue: true,
      awaitPromise: true,
    });
    return r.result.value;
  }

  /** Forces a full garbage collection. */
  collectGarbage(): Promise<unknown> {
    return this.send("HeapProfiler.collectGarbage");
  }

  /** Takes a heap snapshot (after a GC) and returns its JSON text. */
  async heapSnapshot(): Promise<string> {
    const chunks: string[] = [];
    this.#listeners.set("HeapProfiler.addHeapSnapshotChunk", (p) => chunks.push(p.chunk as string));
    await this.send("HeapProfiler.takeHeapSnapshot", { reportProgress: false });
    this.#listeners.delete("HeapProfiler.addHeapSnapshotChunk");
    return chunks.join("");
  }

  /** Starts sampling the CPU every `intervalUs` microseconds. */
  async startCpuProfile(intervalUs = 200): Promise<void> {
    await this.send("Profiler.enable");
    await this.send("Profiler.setSamplingInterval", { interval: intervalUs });
    await this.send("Profiler.start");
  }

  /** Stops sampling and returns the profile (`.cpuprofile` format). */
  async stopCpuProfile(): Promise<CpuProfile> {
    return (await this.send<{ profile: CpuProfile }>("Profiler.stop")).profile;
  }

  /**
   * Starts recording a sample of the heap allocations every `intervalBytes` on average, those
   * collected since included: where garbage comes from, not only what stays.
   */
  async startAllocationSampling(intervalBytes = 8192): Promise<void> {
    await this.send("HeapProfiler.enable");
    await this.send("HeapProfiler.startSampling", {
      samplingInterval: intervalBytes,
      includeObjectsCollectedByMajorGC: true,
      includeObjectsCollectedByMinorGC: true,
    });
  }

  /** Stops recording and returns the allocations sampled since the start. */
  async stopAllocationSampling(): Promise<AllocationProfile> {
    return (await this.send<{ profile: AllocationProfile }>("HeapProfiler.stopSampling")).profile;
  }

  close(): void {
    this.#ws.close();
  }
}

/** A node of a sampled allocation profile: bytes allocated by this call frame itself. */
export interface AllocationNode {
  callFrame: { functionName: string; url: string; lineNumber: number };
  selfSize: number;
  children: AllocationNode[];
}

/** The part of `HeapProfiler.stopSampling`'s result the summary reads. */
export interface AllocationProfile {
  head: AllocationNode;
}

/**
 * Bytes allocated per nearest systemk function on the stack (`name src/file.ts:line`, the
 * allocations of the npm packages and runtime code it called included), largest first;
 * allocations with no systemk function on the stack (a socket's data parsed by a library, say)
 * under `(no systemk frame) <origin of the allocating frame>`.
 */
export function allocationsByOwnFrame(profile: AllocationProfile): [string, number][] {
  const totals = new Map<string, number>();
  const walk = (node: AllocationNode, own: string | undefined) => {
    const f = node.callFrame;
    const file = origin(f.url);
    const here = file.startsWith("src/")
      ? `${f.functionName || "(anonymous)"} ${file}:${f.lineNumber + 1}`
      : own;
    if (node.selfSize) {
      const key = here ?? `(no systemk frame) ${file}`;
      totals.set(key, (totals.get(key) ?? 0) + node.selfSize);
    }
    for (const child of node.children) walk(child, here);
  };
  walk(profile.head, undefined);
  return [...totals].sort((a, b) => b[1] - a[1]);
}

/** The parts of a `.cpuprofile` the summary reads. */
export interface CpuProfile {
  nodes: {
    id: number;
    callFrame: { functionName: string; url: string; lineNumber: number };
    children?: number[];
  }[];
  samples: number[];
  timeDeltas: number[];
}

/**
 * Self time per function (name, file, line), in ms, largest first, from a CPU profile.
 */
export function selfTimes(profile: CpuProfile): [string, number][] {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const totals = new Map<string, number>();
  profile.samples.forEach((id, i) => {
    const f = byId.get(id)!.callFrame;
    const file = f.url.replace(/^.*\/(node_modules\/\.deno\/|work\/main\/)/, "");
    const key = `${f.functionName || "(anonymous)"} ${file}:${f.lineNumber + 1}`;
    totals.set(key, (totals.get(key) ?? 0) + (profile.timeDeltas[i] ?? 0) / 1000);
  });
  return [...totals].sort((a, b) => b[1] - a[1]);
}

/**
 * Self size and count per kind of heap object (`object Foo`, `closure bar`, `string`, ...)
 * from a heap snapshot's JSON.
 */
export function heapByKind(snapshotJson: string): Map<string, { count: number; bytes: number }> {
  const snap = JSON.parse(snapshotJson) as {
    snapshot: { meta: { node_fields: string[]; node_types: [string[]] } };
    nodes: number[];
    strings: string[];
  };
  const fields = snap.snapshot.meta.node_fields;
  const types = snap.snapshot.meta.node_types[0];
  const [iType, iName, iSize] = ["type", "name", "self_size"].map((f) => fields.indexOf(f));
  const kinds = new Map<string, { count: number; bytes: number }>();
  for (let i = 0; i < snap.nodes.length; i += fields.length) {
    const type = types[snap.nodes[i + iType]];
    const named = type === "object" || type === "closure" || type === "array" || type === "native";
    const key = named ? `${type} ${snap.strings[snap.nodes[i + iName]].slice(0, 60)}` : type;
    const k = kinds.get(key) ?? { count: 0, bytes: 0 };
    k.count++;
    k.bytes += snap.nodes[i + iSize];
    kinds.set(key, k);
  }
  return kinds;
}

/** Where a call frame's code lives: systemk's own file, an npm package, or the runtime. */
function origin(url: string): string {
  const pkg = /node_modules\/\.deno\/[^/]+\/node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (pkg) return `npm:${pkg[1]}`;
  const own = /\/work\/main\/(.*)$/.exec(url) ?? /\/(src\/.*|main\.ts)$/.exec(url);
  if (own) return own[1];
  return url.startsWith("ext:") || url.startsWith("node:") ? "deno runtime (js)" : "native/V8";
}

/**
 * Self time per origin (systemk file, npm package, Deno's JS runtime, native/V8 incl. GC),
 * in ms, largest first; idle excluded.
 */
export function selfTimeByOrigin(profile: CpuProfile): [string, number][] {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const totals = new Map<string, number>();
  profile.samples.forEach((id, i) => {
    const f = byId.get(id)!.callFrame;
    if (f.functionName === "(idle)") return;
    const key = f.functionName === "(garbage collector)" ? "garbage collector" : origin(f.url);
    totals.set(key, (totals.get(key) ?? 0) + (profile.timeDeltas[i] ?? 0) / 1000);
  });
  return [...totals].sort((a, b) => b[1] - a[1]);
}

/**
 * Inclusive time (self plus callees) of systemk's own functions (`src/`), in ms, largest
 * first: which of its steps the CPU time is spent under.
 */
export function inclusiveOwnTimes(profile: CpuProfile): [string, number][] {
  const parent = new Map<number, number>();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const totals = new Map<string, number>();
  profile.samples.forEach((id, i) => {
    const seen = new Set<string>();
    for (let at: number | undefined = id; at !== undefined; at = parent.get(at)) {
      const f = byId.get(at)!.callFrame;
      const file = origin(f.url);
      if (!file.startsWith("src/")) continue;
      const key = `${f.functionName || "(anonymous)"} ${file}:${f.lineNumber + 1}`;
      if (seen.has(key)) continue;
      seen.add(key);
      totals.set(key, (totals.get(key) ?? 0) + (profile.timeDeltas[i] ?? 0) / 1000);
    }
  });
  return [...totals].sort((a, b) => b[1] - a[1]);
}
