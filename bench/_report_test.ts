import assert from "node:assert/strict";
import { markdownReport, markdownTable, meets, type Row, svgChart, table } from "./_report.ts";

const rows: Row[] = [
  { item: 1, figure: "create p50", value: 80, unit: "ms", target: { max: 100 }, original: 4870 },
  { item: 2, figure: "burst rate", value: 40, unit: "pods/s", target: { min: 50 } },
  { item: 7, figure: "500 pods Running", value: 9.5, unit: "s" },
];

Deno.test("targets: at most, at least, none", () => {
  assert.deepEqual(rows.map(meets), [true, false, undefined]);
});

Deno.test("the table shows value, target, verdict and the original figure", () => {
  const lines = table(rows).split("\n");
  assert.equal(lines.length, 5);
  assert.match(lines[2], /create p50\s+80\.0 ms\s+≤ 100 ms\s+yes\s+4870 ms/);
  assert.match(lines[3], /≥ 50\.0 pods\/s\s+NO/);
  assert.match(markdownTable(rows), /\| 1 \| create p50 \| 80\.0 ms ✓ \| ≤ 100 ms \| 4870 ms \|/);
});

Deno.test("the chart has one bar per row with a target, coloured by verdict", () => {
  const svg = svgChart(rows, "run <1>");
  assert.equal(svg.match(/<rect x=/g)?.length, 2);
  assert.match(svg, /fill="#3a9a4a"/);
  assert.match(svg, /fill="#c8423b"/);
  assert.match(svg, /run &lt;1&gt;/);
  // 80/100 of the target's 100 px; the missed rate 50/40 → 125 px.
  assert.match(svg, /width="80\.0"/);
  assert.match(svg, /width="125\.0"/);
});

Deno.test("the Markdown report names the load and lists what failed", () => {
  const md = markdownReport("run", "3.00 2.00 1.00", rows, ["cleanup: timed out"]);
  assert.match(md, /^run; load average at the end 3\.00 2\.00 1\.00\n\n\| # \|/);
  assert.match(md, /\n- FAILED cleanup: timed out\n$/);
  assert.doesNotMatch(markdownReport("run", "0", rows, []), /FAILED/);
});
