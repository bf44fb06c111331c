/**
 * Where systemk's memory and CPU go: runs systemk with `--inspect` in the bench setting, then
 * (1) records a CPU profile and samples the heap allocations over single pods and a burst,
 * (2) samples the allocations of 10 s with the burst's pods running (steady state: garbage made
 * here keeps RSS up between collections), and (3) diffs heap snapshots taken with no pods and
 * with `--pods` pods running (after a forced GC each time).
 *
 * Run: `deno run -A bench/profile.ts [--pods 500] [--out /tmp/systemk-profile]`. Prints the
 * top self-time functions, the allocations by systemk function and the heap growth by object
 * kind; writes the `.cpuprofile`, the `.heapprofile`s and both snapshots to `--out` (open them
 * in Chrome DevTools).
 *
 * @module
 */
import { parseArgs } from "node:util";
import { CoreV1Api, KubeConfig } from "@kubernetes/client-node";
import { startNodeEnv } from "../tests/e2e/_node_env.ts";
import {
  allocationsByOwnFrame,
  heapByKind,
  inclusiveOwnTimes,
  Inspector,
  selfTimeByOrigin,
  selfTimes,
} from "./_cdp.ts";
import { nodesReady, serviceProcDir } from "./_env.ts";
import { inParallel, PodTracker, sleepPod } from "./_pods.ts";
import { parseRssKiB } from "./_proc.ts";

const { values: args } = parseArgs({
  options: {
    pods: { type: "string", default: "500" },
    burst: { type: "string", default: "100" },
    singles: { type: "string", default: "20" },
    out: { type: "string", default: "/tmp/systemk-profile" },
  },
});
const pods = Number(args.pods);
const out = args.out!;
await Deno.mkdir(out, { recursive: true });
const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
const port = (listener.addr as Deno.NetAddr).port;
listener.close();

const env = await startNodeEnv({
  flags: [`--max-pods=${pods + 100}`],
  denoFlags: [`--inspect=127.0.0.1:${port}`],
});
const kc = new KubeConfig();
kc.loadFromFile(env.cluster.adminKubeconfig);
const core = kc.makeApiClient(CoreV1Api);
const tracker = new PodTracker(kc, "default");
try {
  await tracker.start();
  await nodesReady(core, ["n1"], 60_000);
  const inspector = await Inspector.connect(`127.0.0.1:${port}`);
  const proc = await serviceProcDir(env, "systemk-agent");
  const memory = async (label: string) => {
    await inspector.collectGarbage();
    const m = await inspector.evaluate<Record<string, number>>("Deno.memoryUsage()");
    const rss = parseRssKiB(await Deno.readTextFile(`${proc}/status`)) / 1024;
    const mib = (n: number) => (n / 1048576).toFixed(1);
    console.log(
      `${label}: RSS ${rss.toFixed(1)} MiB; V8 heap used ${mib(m.heapUsed)} of ${
        mib(m.heapTotal)
      } MiB; external ${mib(m.external)} MiB (after a forced GC)`,
    );
    const snapshot = await inspector.heapSnapshot();
    await Deno.writeTextFile(`${out}/${label.replace(/\W+/g, "-")}.heapsnapshot`, snapshot);
    return heapByKind(snapshot);
  };
  await new Promise((r) => setTimeout(r, 3000));
  const before = await memory("0 pods");

  /** Prints the largest allocators of a sampled allocation profile and writes it to `--out`. */
  const allocations = async (label: string) => {
    const profile = await inspector.stopAllocationSampling();
    await Deno.writeTextFile(`${out}/${label}.heapprofile`, JSON.stringify(profile));
    const rows = allocationsByOwnFrame(profile);
    const total = rows.reduce((a, [, bytes]) => a + bytes, 0);
    console.log(
      `\nallocated ${label} (sampled): ${(total / 1048576).toFixed(1)} MiB; by function:`,
    );
    for (const [k, bytes] of rows.slice(0, 20)) {
      console.log(`${(bytes / 1048576).toFixed(2).padStart(8)} MiB  ${k}`);
    }
  };
  await inspector.startAllocationSampling();
  await inspector.startCpuProfile();
  const t0 = performance.now();
  for (let i = 0; i < Number(args.singles); i++) {
    const name = `single-${i}`;
    await core.createNamespacedPod({ namespace: "default", body: sleepPod(name, "n1") });
    await tracker.until(name, () => !!tracker.times.get(name)?.running, 60_000);
    await core.deleteNamespacedPod({ namespace: "default", name });
    await tracker.until(name, () => !!tracker.times.get(name)?.deleted, 60_000);
  }
  const names = Array.from({ length: pods }, (_, i) => `p-${i}`);
  const create = (name: string) =>
    core.createNamespacedPod({ namespace: "default", body: sleepPod(name, "n1") });
  /** Creates `batch` at once (50 requests in flight) and waits; a timeout is reported, not fatal. */
  const runBatch = async (batch: string[], timeoutMs: number) => {
    await inParallel(batch, 50, create);
    await tracker.until(
      "Running",
      () => tracker.count(batch, "running") === batch.length,
      timeoutMs,
    )
      .catch(() =>
        console.log(`only ${tracker.count(batch, "running")} of ${batch.length} Running in time`)
      );
  };
  const burst = Math.min(pods, Number(args.burst));
  await runBatch(names.slice(0, burst), 60_000);
  const wallMs = performance.now() - t0;
  const profile = await inspector.stopCpuProfile();
  await Deno.writeTextFile(`${out}/agent.cpuprofile`, JSON.stringify(profile));
  const self = selfTimes(profile);
  const busy = self.filter(([k]) => !k.startsWith("(idle)")).reduce((a, [, v]) => a + v, 0);
  console.log(
    `\nCPU over ${args.singles} single pods + ${burst} at once: ${(wallMs / 1000).toFixed(1)} s ` +
      `wall, ${(busy / 1000).toFixed(2)} s on the JS thread. Top self time:`,
  );
  const print = (list: [string, number][], n: number) => {
    for (const [k, ms] of list.slice(0, n)) console.log(`${ms.toFixed(0).padStart(7)} ms  ${k}`);
  };
  print(self, 25);
  console.log("\nself time by origin:");
  print(selfTimeByOrigin(profile), 15);
  console.log("\ninclusive time of systemk's own functions:");
  print(inclusiveOwnTimes(profile), 30);
  await allocations("over-the-burst");

  await new Promise((r) => setTimeout(r, 3000));
  await inspector.startAllocationSampling();
  await new Promise((r) => setTimeout(r, 10_000));
  await allocations(`in-10-s-with-${burst}-pods`);

  await new Promise((r) => setTimeout(r, 3000));
  const mid = await memory(`${burst} pods`);
  // The rest in batches of 50, each Running before the next: a steady state, not a burst.
  for (let i = burst; i < pods; i += 50) await runBatch(names.slice(i, i + 50), 60_000);
  await new Promise((r) => setTimeout(r, 5000));
  const after = await memory(`${pods} pods`);
  const growth = (from: typeof after, perPods: number, label: string) => {
    const rows = [...after].map(([k, v]) => {
      const b = from.get(k) ?? { count: 0, bytes: 0 };
      return [k, v.count - b.count, v.bytes - b.bytes] as const;
    }).sort((a, b) => b[2] - a[2]);
    const sum = rows.reduce((a, r) => a + r[2], 0);
    console.log(
      `\nheap growth ${label}: ${(sum / 1024).toFixed(0)} KiB, ${
        (sum / perPods).toFixed(0)
      } B/pod; by kind (count, KiB, B/pod):`,
    );
    for (const [k, count, bytes] of rows.slice(0, 30)) {
      console.log(
        `${String(count).padStart(8)} ${(bytes / 1024).toFixed(0).padStart(8)} KiB ${
          (bytes / perPods).toFixed(0).padStart(7)
        } B/pod  ${k}`,
      );
    }
  };
  growth(before, pods, `0 → ${pods} pods`);
  if (pods > burst) growth(mid, pods - burst, `${burst} → ${pods} pods (marginal)`);
  inspector.close();
} finally {
  tracker.stop();
  await env.stop();
}
