/**
 * A small Prometheus registry (counters, gauges, histograms, with labels) rendered in the text
 * exposition format 0.0.4. No npm metrics library is used: prom-client needs Node's
 * cluster/perf_hooks internals and pulls in more than the hundred lines this takes.
 *
 * @example Usage
 * ```ts
 * import { Registry } from "./registry.ts";
 * const registry = new Registry();
 * registry.counter("requests_total", "Requests.").inc({ code: "200" });
 * const text = registry.render();
 * ```
 *
 * @module
 */

/** Label names to values. */
export type Labels = Readonly<Record<string, string>>;

/** Escapes a label value (backslash, double quote, newline), as the text format requires. */
function escapeLabelValue(value: string): string {
  return value.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n");
}

/** A number in the text format (`+Inf`, `-Inf`, `NaN` spelled as Prometheus does). */
function formatValue(value: number): string {
  if (value === Infinity) return "+Inf";
  if (value === -Infinity) return "-Inf";
  return String(value);
}

/** One sample of a series: its labels, value and (optionally) time. */
export interface Sample {
  labels: Labels;
  value: number;
  /** Milliseconds since the epoch; absent: the scrape's time. */
  timestampMs?: number;
}

/**
 * One sample line: `name{a="x",b="y"} value [timestampMs]`. Labels are written in sorted order
 * so the same series always reads the same.
 */
export function sampleLine(name: string, sample: Sample): string {
  const { labels, value, timestampMs } = sample;
  const pairs = Object.keys(labels).sort().map((k) => `${k}="${escapeLabelValue(labels[k])}"`);
  const series = pairs.length ? `${name}{${pairs.join(",")}}` : name;
  return `${series} ${formatValue(value)}${timestampMs === undefined ? "" : ` ${timestampMs}`}`;
}

/** What the header of a metric family says: see {@link familyHeader}. */
export interface FamilyHeader {
  /** The family's metric name. */
  name: string;
  /** Its `# HELP` text (backslashes and newlines are escaped). */
  help: string;
  /** Its `# TYPE`. */
  type: MetricType;
}

/** The `# HELP` and `# TYPE` lines of a metric family. */
export function familyHeader(family: FamilyHeader): string[] {
  const { name, help, type } = family;
  return [
    `# HELP ${name} ${help.replace(/\\/g, "\\\\").replace(/\n/g, "\\n")}`,
    `# TYPE ${name} ${type}`,
  ];
}

/** The metric types this registry renders. */
export type MetricType = "counter" | "gauge" | "histogram";

/** Something a registry can render. */
interface Family {
  readonly name: string;
  render(): string[];
}

function seriesKey(labels: Labels): string {
  return JSON.stringify(Object.keys(labels).sort().map((k) => [k, labels[k]]));
}

/** A set of metric families rendered together (`/metrics`). */
export class Registry {
  readonly #families = new Map<string, Family>();

  /** A counter: only goes up (`inc`). */
  counter(name: string, help: string): Counter {
    return this.#add(new Counter(name, help));
  }

  /** A gauge: set to the current value, or moved up and down. */
  gauge(name: string, help: string): Gauge {
    return this.#add(new Gauge(name, help));
  }

  /** A histogram with the given upper bounds (seconds, bytes, ...); `+Inf` is added. */
  histogram(name: string, help: string, options: HistogramOptions): Histogram {
    return this.#add(new Histogram(name, help, options));
  }

  /** All families in the text exposition format, ending in a newline. */
  render(): string {
    const lines = [...this.#families.values()].flatMap((f) => f.render());
    return lines.length ? lines.join("\n") + "\n" : "";
  }

  #add<T extends Family>(family: T): T {
    if (this.#families.has(family.name)) throw new Error(`metric ${family.name} registered twice`);
    if (!/^[a-zA-Z_:][a-zA-Z0-9_:]*$/.test(family.name)) {
      throw new Error(`invalid metric name ${family.name}`);
    }
    this.#families.set(family.name, family);
    return family;
  }
}

abstract class Simple implements Family {
  protected readonly series = new Map<string, { labels: Labels; value: number }>();
  constructor(readonly name: string, readonly help: string, readonly type: MetricType) {}

  protected update(labels: Labels, f: (value: number) => number): void {
    const key = seriesKey(labels);
    const entry = this.series.get(key) ?? { labels: { ...labels }, value: 0 };
    entry.value = f(entry.value);
    this.series.set(key, entry);
  }

  /** The current value of one series (0 when never touched). */
  get(labels: Labels = {}): number {
    return this.series.get(seriesKey(labels))?.value ?? 0;
  }

  render(): string[] {
    return [
      ...familyHeader(this),
      ...[...this.series.values()].map((s) =>
        sampleLine(this.name, { labels: s.labels, value: s.value })
      ),
    ];
  }
}

/** A monotonically increasing count. */
export class Counter extends Simple {
  constructor(name: string, help: string) {
    super(name, help, "counter");
  }

  /** Adds `by` (default 1, never negative). */
  inc(labels: Labels = {}, by = 1): void {
    if (by < 0) throw new Error(`counter ${this.name} cannot decrease`);
    this.update(labels, (v) => v + by);
  }
}

/** A value that is set to what it is now. */
export class Gauge extends Simple {
  constructor(name: string, help: string) {
    super(name, help, "gauge");
  }

  /** Sets the series to `value`. */
  set(labels: Labels, value: number): void {
    this.update(labels, () => value);
  }

  /** Replaces every series at once (e.g. pods per phase), dropping series not in `values`. */
  replaceAll(values: ReadonlyArray<{ labels: Labels; value: number }>): void {
    this.series.clear();
    for (const { labels, value } of values) this.set(labels, value);
  }
}

/** Options of a {@link Histogram}. */
export interface HistogramOptions {
  /** The buckets' upper bounds (seconds, bytes, ...), in any order; `+Inf` is added. */
  buckets: readonly number[];
}

/** Observations counted into cumulative buckets, with their sum and count. */
export class Histogram implements Family {
  readonly #buckets: readonly number[];
  readonly #series = new Map<string, { labels: Labels; counts: number[]; sum: number }>();

  constructor(readonly name: string, readonly help: string, options: HistogramOptions) {
    this.#buckets = [...options.buckets].sort((a, b) => a - b);
  }

  /** Records one observation. */
  observe(labels: Labels, value: number): void {
    const key = seriesKey(labels);
    const entry = this.#series.get(key) ??
      { labels: { ...labels }, counts: this.#buckets.map(() => 0).concat(0), sum: 0 };
    const index = this.#buckets.findIndex((bound) => value <= bound);
    entry.counts[index === -1 ? this.#buckets.length : index]++;
    entry.sum += value;
    this.#series.set(key, entry);
  }

  /** Runs `f` and observes how long it took in seconds, whether it resolved or threw. */
  async time<T>(labels: Labels, f: () => Promise<T>): Promise<T> {
    const start = performance.now();
    try {
      return await f();
    } finally {
      this.observe(labels, (performance.now() - start) / 1000);
    }
  }

  render(): string[] {
    const lines = familyHeader({ name: this.name, help: this.help, type: "histogram" });
    for (const { labels, counts, sum } of this.#series.values()) {
      let cumulative = 0;
      [...this.#buckets, Infinity].forEach((bound, i) => {
        cumulative += counts[i];
        lines.push(
          sampleLine(`${this.name}_bucket`, {
            labels: { ...labels, le: formatValue(bound) },
            value: cumulative,
          }),
        );
      });
      lines.push(sampleLine(`${this.name}_sum`, { labels, value: sum }));
      lines.push(sampleLine(`${this.name}_count`, { labels, value: cumulative }));
    }
    return lines;
  }
}
