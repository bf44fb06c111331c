/**
 * The bench's figures as rows (value, target from the issue, the original Go systemk's figure),
 * printed as a table and drawn as a small SVG chart by hand (no dependencies).
 *
 * @module
 */

/** One measured figure. */
export interface Row {
  /** The item number: 1–8 are issue 12's measurements, 9 is issue 7's (probing). */
  item: number;
  figure: string;
  value: number;
  unit: string;
  /** The target: at most `max` or at least `min`. */
  target?: { max?: number; min?: number };
  /** The original Go systemk's figure in the same unit, where measured (ANCHORS.md). */
  original?: number;
  /** Anything the number needs to be read right (e.g. what the original was measured on). */
  note?: string;
}

/** Whether a row meets its target; undefined without one. */
export function meets(row: Row): boolean | undefined {
  const t = row.target;
  if (!t) return undefined;
  return (t.max === undefined || row.value <= t.max) && (t.min === undefined || row.value >= t.min);
}

/** A number for humans: three significant digits at most, no exponent. */
export function formatValue(value: number, unit: string): string {
  const digits = Math.abs(value) >= 100 ? 0 : Math.abs(value) >= 10 ? 1 : 2;
  return `${value.toFixed(digits)} ${unit}`;
}

function targetText(row: Row): string {
  const t = row.target;
  if (!t) return "";
  return t.max !== undefined
    ? `≤ ${formatValue(t.max, row.unit)}`
    : `≥ ${formatValue(t.min!, row.unit)}`;
}

/** The rows as a fixed-width text table. */
export function table(rows: readonly Row[]): string {
  const cells = rows.map((r) => [
    String(r.item),
    r.figure,
    formatValue(r.value, r.unit),
    targetText(r),
    meets(r) === undefined ? "" : meets(r) ? "yes" : "NO",
    r.original === undefined ? "" : formatValue(r.original, r.unit),
  ]);
  const head = ["#", "figure", "systemk", "target", "met", "Go systemk"];
  const widths = head.map((h, i) => Math.max(h.length, ...cells.map((c) => c[i].length)));
  const line = (c: string[]) => c.map((x, i) => x.padEnd(widths[i])).join("  ").trimEnd();
  return [line(head), line(widths.map((w) => "-".repeat(w))), ...cells.map(line)].join("\n");
}

/** The rows as a Markdown table (for the README). */
export function markdownTable(rows: readonly Row[]): string {
  const lines = [
    "| # | figure | systemk | target | Go systemk |",
    "|---|---|---|---|---|",
  ];
  for (const r of rows) {
    const mark = meets(r) === undefined ? "" : meets(r) ? " ✓" : " ✗";
    lines.push(
      `| ${r.item} | ${r.figure} | ${formatValue(r.value, r.unit)}${mark} | ${targetText(r)} | ${
        r.original === undefined ? "" : formatValue(r.original, r.unit)
      } |`,
    );
  }
  return lines.join("\n");
}

const escapeXml = (s: string) =>
  s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");

/**
 * A bar chart of every row with a target, each bar the figure as a fraction of its target
 * (the dashed line; shorter is better, capped at 3×), green when met, red when not. `title`
 * names the run (machine, date).
 */
export function svgChart(rows: readonly Row[], title: string): string {
  const rated = rows.filter((r) => r.target);
  const label = 330, bar = 300, rowH = 22, top = 44, cap = 3;
  const width = label + bar + 150;
  const height = top + rated.length * rowH + 30;
  const x1 = bar / cap; // where the target lies
  const parts = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" ` +
    `font-family="sans-serif" font-size="12">`,
    `<rect width="100%" height="100%" fill="white"/>`,
    `<text x="8" y="18" font-size="14" font-weight="bold">${escapeXml(title)}</text>`,
    `<text x="8" y="34" fill="#555">bar = figure ÷ target (dashed line = target; shorter is better)</text>`,
  ];
  rated.forEach((r, i) => {
    const y = top + i * rowH;
    const t = r.target!;
    const ratio = t.max !== undefined ? r.value / t.max : t.min! / Math.max(r.value, 1e-9);
    const w = Math.max(1, Math.min(ratio, cap) * x1);
    const color = meets(r) ? "#3a9a4a" : "#c8423b";
    parts.push(
      `<text x="${label - 8}" y="${y + 15}" text-anchor="end">${r.item}. ${
        escapeXml(r.figure)
      }</text>`,
      `<rect x="${label}" y="${y + 4}" width="${w.toFixed(1)}" height="${
        rowH - 8
      }" fill="${color}"/>`,
      `<text x="${label + bar + 8}" y="${y + 15}">${escapeXml(formatValue(r.value, r.unit))} ` +
        `(${escapeXml(targetText(r))})</text>`,
    );
  });
  const bottom = top + rated.length * rowH;
  parts.push(
    `<line x1="${label + x1}" y1="${top}" x2="${label + x1}" y2="${bottom}" stroke="#333" ` +
      `stroke-dasharray="4 3"/>`,
    `<text x="${label + x1}" y="${bottom + 16}" text-anchor="middle" fill="#555">target</text>`,
    `<text x="${label + bar}" y="${bottom + 16}" text-anchor="end" fill="#555">${cap}×</text>`,
    "</svg>",
  );
  return parts.join("\n") + "\n";
}

/** The Markdown file of a run: title, machine load, the table, and what failed. */
export function markdownReport(
  title: string,
  loadAverage: string,
  rows: readonly Row[],
  failures: readonly string[],
): string {
  const failed = failures.map((f) => `- FAILED ${f}`).join("\n");
  return `${title}; load average at the end ${loadAverage}\n\n${markdownTable(rows)}\n` +
    (failed ? `\n${failed}\n` : "");
}
