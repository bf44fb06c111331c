/**
 * `deno task bench [--short]`: how fast systemk starts and stops pods, what it costs, how it
 * scales — the eight measurements of issue 12, against the same setting as the end-to-end tests
 * (a real control plane, a booted systemd, systemk running in it as a service with the node's
 * credentials). Prints a table (figure, target, the original Go systemk's figure), writes
 * `bench/results/latest.json` and `bench/results/latest.svg`. Item 9 is issue 7's: systemk's
 * CPU while pods are probed every second.
 *
 * Bench pods name their node (`spec.nodeName`), so the scheduler is not in the way of items 1–7;
 * item 8 (DaemonSet and Deployment over many nodes) goes through the scheduler.
 * Pods are plain user pods: `/bin/sleep infinity` as an absolute-path image, the default service
 * account (so the `kube-api-access` projected volume), default grace period.
 *
 * @module
 */
import { parseArgs } from "node:util";
import { AppsV1Api, CoreV1Api, KubeConfig, VersionApi } from "@kubernetes/client-node";
import { startNodeEnv } from "../tests/e2e/_node_env.ts";
import { unitName } from "../src/unit/name.ts";
import { countByVerb, nodeOf, readAudit, type Request, total } from "./_audit.ts";
import { countDbus, perPod as dividedBy } from "./_dbus.ts";
import {
  journalMatches,
  nodesReady,
  parseSystemdTime,
  serviceProcDir,
  unitProperties,
} from "./_env.ts";
import { clockTicks, type Footprint, measureFootprint, parseCpuTicks } from "./_proc.ts";
import { inParallel, now, PodTracker, probedPod, sleepPod } from "./_pods.ts";
import { startProbeTarget } from "./_probes.ts";
import { markdownReport, type Row, svgChart, table } from "./_report.ts";
import { median, summarize, type Summary } from "./_stats.ts";

const { values: args } = parseArgs({
  options: {
    short: { type: "boolean", default: false },
    runs: { type: "string" },
    burst: { type: "string" },
    density: { type: "string" },
    nodes: { type: "string" },
    replicas: { type: "string" },
    probed: { type: "string" },
    "exec-probed": { type: "string" },
    out: { type: "string" },
    "deno-flags": { type: "string" },
  },
});

/** Sizes of a run; `--short` keeps CI to about two minutes. */
const P = args.short
  ? {
    runs: 5,
    burst: 20,
    density: 50,
    nodes: 3,
    replicas: 30,
    footprintS: 8,
    apiWindowS: 20,
    probed: 20,
    execProbed: 5,
    probeWindowS: 10,
  }
  : {
    runs: 50,
    burst: 100,
    density: 500,
    nodes: 20,
    replicas: 300,
    footprintS: 30,
    apiWindowS: 60,
    probed: 100,
    execProbed: 20,
    probeWindowS: 30,
  };
for (const key of ["runs", "burst", "density", "nodes", "replicas", "probed"] as const) {
  if (args[key]) P[key] = Number(args[key]);
}
if (args["exec-probed"]) P.execProbed = Number(args["exec-probed"]);
const NODE = "n1";
const AGENT = "systemk-agent";
const NS = "default";
/** The pod created while systemk is down in the restart measurement. */
const RESTART_POD = "restart-new";
const REPO = new URL("..", import.meta.url).pathname.replace(/\/$/, "");
const RESULTS = args.out ?? `${REPO}/bench/results`;

const rows: Row[] = [];
const details: Record<string, unknown> = {};
const log = (msg: string) => console.error(`bench ${((now() - began) / 1000).toFixed(1)}s: ${msg}`);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const began = now();

// A directory of our own for the cluster (certificates, etcd, the audit log), removed at the end.
const clusterDir = await Deno.makeTempDir({ prefix: "systemk-bench-" });
const env = await startNodeEnv({
  nodeName: NODE,
  flags: [`--max-pods=${Math.max(110, P.density + 100)}`],
  cluster: { auditLog: true, dir: clusterDir },
  // For experiments, e.g. `--deno-flags=--v8-flags=--max-semi-space-size=1`.
  denoFlags: args["deno-flags"]?.split(" ").filter(Boolean),
});
const kc = new KubeConfig();
kc.loadFromFile(env.cluster.adminKubeconfig);
const core = kc.makeApiClient(CoreV1Api);
const tracker = new PodTracker(kc, NS);
const failures: string[] = [];
let kubernetesVersion = "unknown";
/**
 * Runs one measurement; a failure is reported (with the end of systemk's log) and the run goes
 * on, so one broken figure does not hide the others.
 */
async function phase(name: string, measure: () => Promise<unknown>): Promise<void> {
  try {
    await measure();
  } catch (e) {
    failures.push(`${name}: ${e instanceof Error ? e.message : e}`);
    console.error(`bench: ${name} failed: ${e instanceof Error ? e.stack : e}`);
    const tail = (await env.agentLog()).trimEnd().split("\n").slice(-25).join("\n");
    console.error(`--- systemk log (tail) ---\n${tail}`);
  }
}
try {
  kubernetesVersion = (await kc.makeApiClient(VersionApi).getCode()).gitVersion;
  await tracker.start();
  await nodesReady(core, [NODE], 60_000);
  log("node n1 Ready");
  await phase("footprint idle", footprintIdle);
  await phase("single pods", singlePods);
  await phase("D-Bus per pod", dbusPerPod);
  const burst = names("burst", P.burst);
  await phase("burst", () => createBurst(2, burst, `burst of ${P.burst}`));
  await phase("steady", () => steadyWith(P.burst, true));
  await phase("delete burst", () => deleteBurst(3, burst, `delete ${P.burst}`));
  const dense = names("dense", P.density);
  await phase("density", () => createBurst(7, dense, `density ${P.density}`));
  await phase("steady (density)", () => steadyWith(P.density, false));
  await phase("restart", () => restart(dense));
  // The restart deleted the first and added one.
  await phase(
    "cleanup",
    () => deleteBurst(7, [...dense.slice(1), RESTART_POD], `delete ${P.density}`),
  );
  await phase("probes: httpGet", () => probing("httpGet", P.probed));
  await phase("probes: tcpSocket", () => probing("tcpSocket", P.probed));
  await phase("probes: exec", () => probing("exec", P.execProbed));
  await phase("many nodes", manyNodes);
} catch (e) {
  failures.push(`setup: ${e instanceof Error ? e.message : e}`);
  console.error(`bench failed: ${e instanceof Error ? e.stack : e}`);
} finally {
  tracker.stop();
  await env.stop();
  await Deno.remove(clusterDir, { recursive: true });
}
await report();
Deno.exit(failures.length ? 1 : 0);

/** `prefix-0` … `prefix-<n-1>`. */
function names(prefix: string, n: number): string[] {
  return Array.from({ length: n }, (_, i) => `${prefix}-${i}`);
}

/** Item 4, idle: systemk with no pods beside the floor process, measured together. */
async function footprintIdle(): Promise<void> {
  const floorUnit = "systemk-bench-floor";
  const kubeconfig = await env.cluster.nodeKubeconfig("floor");
  const started = await env.system.exec([
    "systemd-run",
    `--unit=${floorUnit}`,
    "--setenv=NO_COLOR=1",
    `--working-directory=${REPO}`,
    "deno",
    "run",
    "-A",
    `${REPO}/bench/floor.ts`,
    kubeconfig,
    "floor",
  ]);
  if (started.code !== 0) throw new Error(`starting the floor process: ${started.stderr}`);
  const deadline = Date.now() + 60_000;
  while ((await journalMatches(env, floorUnit, /^floor: watching/)).length === 0) {
    if (Date.now() > deadline) throw new Error("the floor process never opened its watch");
    await sleep(250);
  }
  // Both processes settle (module loading, first GCs) before the window.
  await sleep(3000);
  log(`footprint: floor and idle systemk, ${P.footprintS} s`);
  const [floor, idle] = await Promise.all([
    measureFootprint(await serviceProcDir(env, floorUnit), P.footprintS * 1000),
    measureFootprint(await serviceProcDir(env, AGENT), P.footprintS * 1000),
  ]);
  await env.system.exec(["systemctl", "stop", floorUnit]);
  details.floor = floor;
  details.idle = idle;
  rows.push(
    {
      item: 4,
      figure: "floor: Deno + client-node + 1 watch, RSS",
      value: floor.rssMiB,
      unit: "MiB",
    },
    {
      item: 4,
      figure: "idle, 0 pods: RSS above floor",
      value: idle.rssMiB - floor.rssMiB,
      unit: "MiB",
      target: { max: 15 },
      note: `systemk RSS ${idle.rssMiB.toFixed(1)} MiB; the Go systemk ≈ 50 MB in total`,
    },
    {
      item: 4,
      figure: "idle, 0 pods: CPU",
      value: idle.cpuPercent,
      unit: "% core",
      target: { max: 1 },
    },
  );
}

/** Item 1: one pod at a time, create → Running → delete → gone, `P.runs` times. */
async function singlePods(): Promise<void> {
  log(`single pods: ${P.runs} runs`);
  const runs: {
    name: string;
    createSent: number;
    deleteSent: number;
    unitStarting?: number;
    unitActive?: number;
  }[] = [];
  for (const name of names("single", P.runs)) {
    const createSent = now();
    await core.createNamespacedPod({ namespace: NS, body: sleepPod(name, NODE) });
    await tracker.until(`${name} Running`, () => !!tracker.times.get(name)?.running, 60_000);
    const unit = unitName({ namespace: NS, name }, "c");
    const props =
      (await unitProperties(env, unit, ["InactiveExitTimestamp", "ActiveEnterTimestamp"]))
        .get(unit);
    const deleteSent = now();
    await core.deleteNamespacedPod({ namespace: NS, name });
    await tracker.until(`${name} gone`, () => !!tracker.times.get(name)?.deleted, 60_000);
    runs.push({
      name,
      createSent,
      deleteSent,
      unitStarting: parseSystemdTime(props?.InactiveExitTimestamp ?? ""),
      unitActive: parseSystemdTime(props?.ActiveEnterTimestamp ?? ""),
    });
  }
  const create = summarize(runs.map((r) => tracker.times.get(r.name)!.running! - r.createSent));
  const del = summarize(runs.map((r) => tracker.times.get(r.name)!.deleted! - r.deleteSent));
  details.single = { create, delete: del };
  rows.push(
    row(1, "create → Running, p50", create.p50, "ms", { max: 100 }, 4870),
    row(1, "create → Running, p90", create.p90, "ms", undefined, 4890),
    row(1, "create → Running, p99", create.p99, "ms", { max: 300 }),
    row(1, "delete → gone, p50", del.p50, "ms", { max: 300 }, 5100),
    row(1, "delete → gone, p99", del.p99, "ms"),
  );

  // Where the time goes, from the apiserver's audit log and systemd's own timestamps.
  const audit = await readAudit(env.cluster.auditLogPath!);
  const steps: Record<string, number[]> = {};
  const add = (step: string, ms: number | undefined) => {
    if (ms !== undefined && Number.isFinite(ms)) (steps[step] ??= []).push(ms);
  };
  const perPod: Record<string, number>[] = [];
  for (const r of runs) {
    const t = tracker.times.get(r.name)!;
    const about = audit.filter((q) =>
      q.namespace === NS && (q.name === r.name || q.name?.startsWith(`${r.name}.`))
    );
    const created = about.find((q) => q.verb === "create" && q.resource === "pods");
    const patches = about.filter((q) =>
      nodeOf(q.user) === NODE && q.resource === "pods/status" && q.verb === "patch"
    );
    const runningPatch = patches.filter((q) => q.stageAt <= t.running!).at(-1);
    const userDelete = about.find((q) => q.verb === "delete" && nodeOf(q.user) === undefined);
    const nodeDelete = about.find((q) => q.verb === "delete" && nodeOf(q.user) === NODE);
    add("create sent → stored (apiserver)", (created?.stageAt ?? NaN) - r.createSent);
    add(
      "stored → unit leaves inactive (systemk: watch, plan, files, StartUnit)",
      (r.unitStarting ?? NaN) - (created?.stageAt ?? NaN),
    );
    add("unit leaves inactive → active (systemd)", (r.unitActive ?? NaN) - (r.unitStarting ?? NaN));
    add(
      "unit active → status patch received",
      (runningPatch?.received ?? NaN) - (r.unitActive ?? NaN),
    );
    add(
      "status patch received → stored",
      (runningPatch?.stageAt ?? NaN) - (runningPatch?.received ?? NaN),
    );
    add("stored → watch event at the user", t.running! - (runningPatch?.stageAt ?? NaN));
    add("delete sent → deletionTimestamp stored", (userDelete?.stageAt ?? NaN) - r.deleteSent);
    add(
      "deletionTimestamp → node's final delete received (stop units)",
      (nodeDelete?.received ?? NaN) - (userDelete?.stageAt ?? NaN),
    );
    add("final delete received → DELETED at the user", t.deleted! - (nodeDelete?.received ?? NaN));
    perPod.push(countByVerb(about, (u) => nodeOf(u) === NODE, 0, Infinity));
  }
  const breakdown = Object.fromEntries(
    Object.entries(steps).map(([k, v]) => [k, Number(median(v).toFixed(1))]),
  );
  // Requests the node made about one pod over its life (median run's counts).
  const keys = [...new Set(perPod.flatMap((c) => Object.keys(c)))];
  const requestsPerPod = Object.fromEntries(
    keys.map((k) => [k, median(perPod.map((c) => c[k] ?? 0))]),
  );
  details.singleBreakdownMedianMs = breakdown;
  details.nodeRequestsPerPod = requestsPerPod;
  console.error("median breakdown of one pod (ms):", breakdown);
  console.error("node requests about one pod over its life:", requestsPerPod);
}

/**
 * D-Bus round trips per pod: `dbus-monitor` inside the test systemd while a few pods are
 * created and deleted one at a time (a separate window, so the monitor does not slow item 1).
 */
async function dbusPerPod(): Promise<void> {
  const n = 5;
  log(`D-Bus traffic of ${n} pods`);
  const monitor = env.system.exec(["timeout", "15", "dbus-monitor", "--system"]);
  await sleep(1000);
  for (const name of names("dbus", n)) {
    await core.createNamespacedPod({ namespace: NS, body: sleepPod(name, NODE) });
    await tracker.until(`${name} Running`, () => !!tracker.times.get(name)?.running, 10_000);
    await core.deleteNamespacedPod({ namespace: NS, name });
    await tracker.until(`${name} gone`, () => !!tracker.times.get(name)?.deleted, 10_000);
  }
  const counts = countDbus((await monitor).stdout);
  const result = {
    calls: dividedBy(counts.calls, n),
    signals: dividedBy(counts.signals, n),
    errors: dividedBy(counts.errors, n),
  };
  details.dbusPerPod = result;
  console.error("D-Bus messages per pod (create → Running → delete → gone):", result);
}

/** A row with an optional target and original figure. */
function row(
  item: number,
  figure: string,
  value: number,
  unit: string,
  target?: Row["target"],
  original?: number,
): Row {
  return { item, figure, value, unit, target, original };
}

/** Items 2 and 7: `pods` created at once (50 requests in flight) → all Running. */
async function createBurst(item: number, pods: string[], label: string): Promise<Summary> {
  log(`${label}: creating`);
  const proc = await serviceProcDir(env, AGENT);
  const cpu0 = await cpuSeconds(proc);
  const sent = new Map<string, number>();
  const t0 = now();
  await inParallel(pods, 50, async (name) => {
    sent.set(name, now());
    await core.createNamespacedPod({ namespace: NS, body: sleepPod(name, NODE) });
  });
  await tracker.until(
    `${label}: all Running`,
    () => tracker.count(pods, "running") === pods.length,
    120_000 + pods.length * 200,
  );
  const done = Math.max(...pods.map((n) => tracker.times.get(n)!.running!));
  const perPod = summarize(pods.map((n) => tracker.times.get(n)!.running! - sent.get(n)!));
  const totalS = (done - t0) / 1000;
  const cpuMsPerPod = (await cpuSeconds(proc) - cpu0) * 1000 / pods.length;
  const warnings = await warningEvents(pods);
  const nodeRequests = countByVerb(
    await readAudit(env.cluster.auditLogPath!),
    (u) => nodeOf(u) === NODE,
    t0,
    done + 1,
  );
  details[label] = { totalS, perPod, cpuMsPerPod, warnings, nodeRequests };
  console.error(`${label}: the node's requests meanwhile`, nodeRequests);
  log(`${label}: all Running after ${totalS.toFixed(2)} s`);
  if (Object.keys(warnings).length) console.error(`${label}: warning events`, warnings);
  const original = { 20: 6.9, 50: 15.8 }[pods.length];
  const target = item === 2 && pods.length === 100 ? { max: 3 } : undefined;
  rows.push(
    row(item, `${label}: all Running`, totalS, "s", target, original),
    row(
      item,
      `${label}: per pod p50`,
      perPod.p50 / 1000,
      "s",
      undefined,
      pods.length === 50 ? 10.6 : undefined,
    ),
    row(item, `${label}: per pod p99`, perPod.p99 / 1000, "s"),
    row(item, `${label}: systemk CPU time per pod`, cpuMsPerPod, "ms"),
    row(
      item,
      `${label}: rate`,
      pods.length / totalS,
      "pods/s",
      item === 2 ? { min: 50 } : undefined,
    ),
  );
  return perPod;
}

/** CPU time (user + system) a process has used, in seconds. */
async function cpuSeconds(procDir: string): Promise<number> {
  return parseCpuTicks(await Deno.readTextFile(`${procDir}/stat`)) / await clockTicks();
}

/** Warning events about `pods`, counted by reason and message (pod names blanked). */
async function warningEvents(pods: string[]): Promise<Record<string, number>> {
  const ours = new Set(pods);
  const list = await core.listNamespacedEvent({ namespace: NS, fieldSelector: "type=Warning" });
  const counts: Record<string, number> = {};
  for (const e of list.items) {
    const pod = e.involvedObject?.name ?? "";
    if (!ours.has(pod)) continue;
    const key = `${e.reason}: ${(e.message ?? "").replaceAll(pod, "<pod>").slice(0, 200)}`;
    counts[key] = (counts[key] ?? 0) + (e.count ?? 1);
  }
  return counts;
}

/** Items 3 and 7: delete `pods` at once → all API objects gone. */
async function deleteBurst(item: number, pods: string[], label: string): Promise<void> {
  log(`${label}: deleting`);
  const t0 = now();
  await inParallel(pods, 50, (name) => core.deleteNamespacedPod({ namespace: NS, name }));
  await tracker.until(
    `${label}: all gone`,
    () => tracker.count(pods, "deleted") === pods.length,
    120_000 + pods.length * 200,
  );
  const totalS = (Math.max(...pods.map((n) => tracker.times.get(n)!.deleted!)) - t0) / 1000;
  log(`${label}: all gone after ${totalS.toFixed(2)} s`);
  const original = { 20: 10, 50: 25 }[pods.length];
  const target = item === 3 && pods.length === 100 ? { max: 3 } : undefined;
  rows.push(row(item, `${label}: all gone`, totalS, "s", target, original));
}

/**
 * Item 4 with `count` pods running; with `apiCount` also item 5 over the same window: the
 * node's requests counted at the apiserver while nothing changes.
 */
async function steadyWith(count: number, apiCount: boolean): Promise<void> {
  await sleep(5000); // status writes and events of the burst settle
  const windowS = apiCount ? Math.max(P.footprintS, P.apiWindowS) : P.footprintS;
  log(`steady with ${count} pods: ${windowS} s`);
  const from = Date.now();
  const fp: Footprint = await measureFootprint(await serviceProcDir(env, AGENT), windowS * 1000);
  const to = Date.now();
  const floor = details.floor as Footprint;
  const idle = details.idle as Footprint;
  details[`steady${count}`] = fp;
  rows.push(
    {
      item: 4,
      figure: `${count} pods: RSS above floor`,
      value: fp.rssMiB - floor.rssMiB,
      unit: "MiB",
      target: count === 500 ? { max: 65 } : undefined,
    },
    {
      item: 4,
      figure: `${count} pods: RSS per pod above idle`,
      value: (fp.rssMiB - idle.rssMiB) * 1024 / count,
      unit: "KiB",
      target: { max: 100 },
    },
    { item: 4, figure: `${count} pods: CPU`, value: fp.cpuPercent, unit: "% core" },
  );
  if (!apiCount) return;
  const counts = countByVerb(
    await readAudit(env.cluster.auditLogPath!),
    (u) => nodeOf(u) === NODE,
    from,
    to,
  );
  const perMinute = total(counts) / ((to - from) / 60_000);
  details.idleRequests = { pods: count, windowS: (to - from) / 1000, counts };
  const lists = Object.keys(counts).filter((k) => k.startsWith("list "));
  rows.push({
    item: 5,
    figure: `API requests, idle node with ${count} pods`,
    value: perMinute,
    unit: "req/min",
    target: { max: 8 },
    note: `${JSON.stringify(counts)}${lists.length ? `; LISTs: ${lists.join(", ")}` : ""}`,
  });
  console.error(`node requests in ${((to - from) / 1000).toFixed(0)} s:`, counts);
}

/**
 * Item 6: systemk killed with SIGKILL while `pods` run; meanwhile one pod is created and one
 * deleted. Done when systemk has adopted its units, the new pod is Running and the deleted one
 * gone. No unit may have been restarted (InvocationID unchanged).
 */
async function restart(pods: string[]): Promise<void> {
  log(`restart with ${pods.length} pods`);
  const before = await unitProperties(env, "systemk.*", ["InvocationID"]);
  await env.stopAgent("SIGKILL");
  const fresh = RESTART_POD;
  await core.createNamespacedPod({ namespace: NS, body: sleepPod(fresh, NODE) });
  const gone = pods[0];
  await core.deleteNamespacedPod({ namespace: NS, name: gone });
  const t0 = now();
  const wall0 = Date.now();
  await env.startAgent();
  await tracker.until(
    "restarted systemk: new pod Running, deleted pod gone",
    () => !!tracker.times.get(fresh)?.running && !!tracker.times.get(gone)?.deleted,
    120_000,
  );
  const adoptedLine = (await journalMatches(env, AGENT, /found running$/))
    .filter((l) => l.at >= wall0).at(-1);
  const done = Math.max(
    tracker.times.get(fresh)!.running!,
    tracker.times.get(gone)!.deleted!,
    adoptedLine?.at ?? Infinity,
  );
  const after = await unitProperties(env, "systemk.*", ["InvocationID"]);
  const goneUnit = unitName({ namespace: NS, name: gone }, "c");
  const restarted = [...before].filter(([name, p]) =>
    name !== goneUnit && after.get(name)?.InvocationID !== p.InvocationID
  ).map(([name]) => name);
  await sleep(3000);
  const counts = countByVerb(
    await readAudit(env.cluster.auditLogPath!),
    (u) => nodeOf(u) === NODE,
    wall0,
    Date.now(),
  );
  details.restart = {
    adoptedLine: adoptedLine?.message,
    adoptedAfterMs: adoptedLine ? adoptedLine.at - wall0 : undefined,
    restartedUnits: restarted,
    unitsBefore: before.size,
    requestsAfterRestart: counts,
  };
  log(`restart: done after ${((done - t0) / 1000).toFixed(2)} s; ${adoptedLine?.message}`);
  if (restarted.length) console.error(`units restarted by the restart: ${restarted.join(", ")}`);
  rows.push({
    item: 6,
    figure: `restart with ${pods.length} pods: adopted, statuses current`,
    value: (done - t0) / 1000,
    unit: "s",
    target: { max: 3 },
    note: `${restarted.length} of ${before.size - 1} units restarted; ${adoptedLine?.message}`,
  });
  rows.push({
    item: 6,
    figure: `restart with ${pods.length} pods: units restarted`,
    value: restarted.length,
    unit: "units",
    target: { max: 0 },
  });
}

/**
 * Item 9 (issue 7): systemk's CPU while `count` pods are each probed every second (a readiness
 * probe, `periodSeconds: 1`), over `P.probeWindowS` once all are Ready. The probes reach a
 * target of the bench's own on 127.0.0.1 (pods use the node's network), which counts them:
 * `httpGet` and `tcpSocket` directly, `exec` by running bash's `/dev/tcp` in the container
 * (each exec probe is a transient unit, so the test systemd's CPU is measured too).
 */
async function probing(kind: "httpGet" | "tcpSocket" | "exec", count: number): Promise<void> {
  const target = startProbeTarget();
  const pods = names(`probe-${kind.toLowerCase()}`, count);
  const label = `${count} pods, ${kind} probe every 1 s`;
  const handler = kind === "httpGet"
    ? { httpGet: { path: "/healthz", port: target.port } }
    : kind === "tcpSocket"
    ? { tcpSocket: { port: target.port } }
    : { exec: { command: ["/bin/bash", "-c", `echo > /dev/tcp/127.0.0.1/${target.port}`] } };
  const created: string[] = [];
  try {
    log(`${label}: creating`);
    await inParallel(pods, 50, async (name) => {
      await core.createNamespacedPod({
        namespace: NS,
        body: probedPod(name, NODE, { ...handler, periodSeconds: 1 }),
      });
      created.push(name);
    });
    await tracker.until(
      `${label}: all Ready`,
      () => tracker.count(pods, "ready") === pods.length,
      120_000 + count * 500,
    );
    await sleep(5000); // the starts' status writes and events settle
    log(`${label}: ${P.probeWindowS} s`);
    const before = target.count();
    const [agent, systemd] = await Promise.all([
      measureFootprint(await serviceProcDir(env, AGENT), P.probeWindowS * 1000),
      measureFootprint(`/proc/${env.system.pid}`, P.probeWindowS * 1000),
    ]);
    const probesPerS = (target.count() - before) / agent.windowS;
    const msPerProbe = agent.cpuPercent * 10 / probesPerS;
    details[`probes ${kind}`] = { pods: count, probesPerS, agent, systemd };
    log(`${label}: ${probesPerS.toFixed(1)} probes/s, systemk ${agent.cpuPercent.toFixed(1)} %`);
    rows.push(
      {
        item: 9,
        figure: `${label}: systemk CPU`,
        value: agent.cpuPercent,
        unit: "% core",
        note: `${probesPerS.toFixed(1)} probes/s reached the target; systemd (PID 1) ` +
          `${systemd.cpuPercent.toFixed(1)} % core`,
      },
      { item: 9, figure: `${label}: systemk CPU per probe`, value: msPerProbe, unit: "ms" },
    );
  } finally {
    await inParallel(created, 50, (name) => core.deleteNamespacedPod({ namespace: NS, name }));
    target.close();
    await tracker.until(
      `${label}: all gone`,
      () => tracker.count(created, "deleted") === created.length,
      120_000 + count * 200,
    );
  }
}

/**
 * Item 8: `P.nodes` systemk processes sharing the test systemd (n1 plus the others), a
 * DaemonSet and a `P.replicas`-replica Deployment through the scheduler → all Running.
 */
async function manyNodes(): Promise<void> {
  const others = Array.from({ length: P.nodes - 1 }, (_, i) => `n${i + 2}`);
  log(`many nodes: starting ${others.length} more agents`);
  const t0 = now();
  await Promise.all(
    others.map((n, i) => env.startAgentAs(n, [`--port=${10251 + i}`])),
  );
  await nodesReady(core, [NODE, ...others], 180_000);
  log(`many nodes: ${P.nodes} nodes Ready after ${((now() - t0) / 1000).toFixed(1)} s`);
  const apps = kc.makeApiClient(AppsV1Api);
  const template = (app: string) => ({
    metadata: { labels: { app } },
    spec: {
      containers: [{ name: "c", image: "/bin/sleep", command: ["/bin/sleep", "infinity"] }],
    },
  });
  const from = Date.now();
  const t1 = now();
  await apps.createNamespacedDaemonSet({
    namespace: NS,
    body: {
      metadata: { name: "bench-ds" },
      spec: { selector: { matchLabels: { app: "bench-ds" } }, template: template("bench-ds") },
    },
  });
  await apps.createNamespacedDeployment({
    namespace: NS,
    body: {
      metadata: { name: "bench-deploy" },
      spec: {
        replicas: P.replicas,
        selector: { matchLabels: { app: "bench-deploy" } },
        template: template("bench-deploy"),
      },
    },
  });
  const ours = () =>
    [...tracker.times].filter(([n, t]) =>
      (n.startsWith("bench-ds-") || n.startsWith("bench-deploy-")) && t.deleted === undefined
    );
  const want = P.nodes + P.replicas;
  await tracker.until(
    `many nodes: ${want} pods Running`,
    () => ours().filter(([, t]) => t.running).length >= want,
    300_000,
  );
  const running = ours().filter(([, t]) => t.running);
  const done = Math.max(...running.map(([, t]) => t.running!));
  const to = Date.now();
  const totalS = (done - t1) / 1000;
  const perNode: Record<string, number> = {};
  for (const [, t] of running) perNode[t.nodeName ?? "?"] = (perNode[t.nodeName ?? "?"] ?? 0) + 1;
  log(`many nodes: ${want} pods Running after ${totalS.toFixed(2)} s`);
  await sleep(5000);
  const idleFrom = Date.now();
  await sleep(P.apiWindowS * 1000);
  const idleTo = Date.now();
  const audit: Request[] = await readAudit(env.cluster.auditLogPath!);
  const isNode = (u: string) => nodeOf(u) !== undefined && nodeOf(u) !== "floor";
  const rollout = countByVerb(audit, isNode, from, to);
  const everyone = countByVerb(audit, () => true, from, to);
  const idle = countByVerb(audit, isNode, idleFrom, idleTo);
  const idlePerNodeMin = total(idle) / P.nodes / ((idleTo - idleFrom) / 60_000);
  details.manyNodes = { perNode, rollout, everyoneDuringRollout: everyone, idle };
  rows.push(
    row(8, `${P.nodes} nodes: DaemonSet + ${P.replicas} replicas all Running`, totalS, "s"),
    row(
      8,
      `${P.nodes} nodes: rollout, all nodes' requests`,
      total(rollout) / ((to - from) / 1000),
      "req/s",
    ),
    row(
      8,
      `${P.nodes} nodes: rollout, apiserver total`,
      total(everyone) / ((to - from) / 1000),
      "req/s",
    ),
    row(8, `${P.nodes} nodes: idle, requests per node`, idlePerNodeMin, "req/min", { max: 8 }),
  );
}

/** Prints the table and writes latest.json / latest.svg. */
async function report(): Promise<void> {
  const machine = await machineFacts();
  const durationS = (now() - began) / 1000;
  const title = `systemk bench${args.short ? " --short" : ""}, ${machine.date.slice(0, 16)}Z, ` +
    `${machine.cpus}× ${machine.cpuModel}`;
  console.log(`\n${title} (${durationS.toFixed(0)} s)\n`);
  console.log(table(rows));
  for (const f of failures) console.log(`FAILED ${f}`);
  await Deno.mkdir(RESULTS, { recursive: true });
  const result = {
    failures,
    denoFlags: args["deno-flags"],
    mode: args.short ? "short" : "full",
    params: P,
    durationS,
    machine,
    rows,
    details,
  };
  const base = args.short ? `${RESULTS}/short` : `${RESULTS}/latest`;
  await Deno.writeTextFile(`${base}.json`, JSON.stringify(result, null, 2) + "\n");
  await Deno.writeTextFile(`${base}.svg`, svgChart(rows, title));
  await Deno.writeTextFile(
    `${base}.md`,
    markdownReport(title, machine.loadAverage, rows, failures),
  );
  console.log(`\nwrote ${base}.json, ${base}.svg, ${base}.md`);
}

/** The machine the figures were measured on. */
async function machineFacts() {
  const cpuinfo = await Deno.readTextFile("/proc/cpuinfo");
  const meminfo = await Deno.readTextFile("/proc/meminfo");
  return {
    date: new Date().toISOString(),
    cpus: navigator.hardwareConcurrency,
    cpuModel: /^model name\s*:\s*(.*)$/m.exec(cpuinfo)?.[1] ?? "unknown",
    memoryGiB: Math.round(Number(/^MemTotal:\s+(\d+)/m.exec(meminfo)?.[1] ?? 0) / 1048576),
    kernel: Deno.osRelease(),
    // Other work on the machine skews timings; the load at the end of the run says how much.
    loadAverage: (await Deno.readTextFile("/proc/loadavg")).split(" ").slice(0, 3).join(" "),
    deno: Deno.version.deno,
    systemd: 252,
    kubernetes: kubernetesVersion,
  };
}
