/**
 * Per-unit cost of systemk's unit operations against a real systemd 252 (booted by the test
 * harness), with 1, 100 and 500 systemk units already loaded and running.
 *
 * Run: `deno run -A bench/systemd_units.ts [--sample N] [--loaded 1,100,500]`
 *
 * Measures, per unit, sequentially: install (file write + stale check) + start until the start
 * job is done (= active for Type=simple); the delay until the change signal reports it active;
 * stop until the job is done + remove (file, reset-failed); and one daemon-reload, for scale.
 */
import { parseArgs } from "node:util";
import { bootTestSystemd } from "../tests/harness/systemd.ts";
import { SystemdClient } from "../src/systemd/mod.ts";

const { values } = parseArgs({
  options: {
    sample: { type: "string", default: "50" },
    loaded: { type: "string", default: "1,100,500" },
  },
});
const sample = Number(values.sample);
const loadedCounts = values.loaded!.split(",").map(Number);

const UNIT_TEXT = "[Service]\nExecStart=/bin/sleep infinity\n";
const name = (group: string, i: number) => `systemk.bench.${group}-${i}.c.service`;

function stats(ms: number[]): { mean: number; p50: number; p95: number } {
  const sorted = [...ms].sort((a, b) => a - b);
  const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
  return { mean: ms.reduce((a, b) => a + b, 0) / ms.length, p50: at(0.5), p95: at(0.95) };
}

const fmt = (s: { mean: number; p50: number; p95: number }) =>
  `${s.mean.toFixed(1).padStart(6)} ${s.p50.toFixed(1).padStart(6)} ${
    s.p95.toFixed(1).padStart(6)
  }`;

const rows: string[] = [];
for (const loaded of loadedCounts) {
  const sd = await bootTestSystemd();
  const client = await SystemdClient.connect({
    busAddress: sd.busAddress,
    unitDir: `${sd.root}/run/systemd/system`,
  });
  try {
    // Background units, started a batch at a time.
    for (let i = 0; i < loaded; i += 25) {
      await Promise.all(Array.from({ length: Math.min(25, loaded - i) }, async (_, j) => {
        await client.installUnit(name("loaded", i + j), UNIT_TEXT);
        await client.start(name("loaded", i + j));
      }));
    }
    const running = (await client.listUnits()).filter((u) => u.activeState === "active").length;

    const activeSeen = new Map<string, number>();
    client.onUnitChange((unit, props) => {
      if (props.ActiveState === "active" && !activeSeen.has(unit)) {
        activeSeen.set(unit, performance.now());
      }
    });
    const startMs: number[] = [];
    const signalMs: number[] = [];
    const stopMs: number[] = [];
    const startedAt = new Map<string, number>();
    for (let i = 0; i < sample; i++) {
      const unit = name("sample", i);
      const t0 = performance.now();
      startedAt.set(unit, t0);
      await client.installUnit(unit, UNIT_TEXT);
      await client.start(unit);
      startMs.push(performance.now() - t0);
    }
    await new Promise((r) => setTimeout(r, 200)); // let the last signals arrive
    for (const [unit, t0] of startedAt) {
      const seen = activeSeen.get(unit);
      if (seen !== undefined) signalMs.push(seen - t0);
    }
    for (let i = 0; i < sample; i++) {
      const t0 = performance.now();
      await client.removeUnit(name("sample", i));
      stopMs.push(performance.now() - t0);
    }
    const t0 = performance.now();
    await client.daemonReload();
    const reloadMs = performance.now() - t0;

    rows.push(
      `${String(running).padStart(6)} | ${fmt(stats(startMs))} | ${fmt(stats(signalMs))} | ` +
        `${fmt(stats(stopMs))} | ${reloadMs.toFixed(0).padStart(6)}`,
    );
  } finally {
    await client.close();
    await sd.stop();
  }
}

console.log(`\nsystemd 252, ${sample} units per row, sequential, times in ms (mean p50 p95)`);
console.log(
  "loaded | install+start (job done) | install → active signal  | stop+remove (job done)   | reload",
);
for (const row of rows) console.log(row);
