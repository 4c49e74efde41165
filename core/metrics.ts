/** Metrics in Prometheus' text format: counters, histograms and gauges read at scrape time. */

type Labels = Readonly<Record<string, string>>;

interface Family {
  readonly name: string;
  readonly help: string;
  readonly type: "counter" | "gauge" | "histogram";
  render(): string[];
}

/** A counter per label set. */
export class Counter implements Family {
  readonly type = "counter";
  readonly #values = new Map<string, { labels: Labels; value: number }>();
  constructor(readonly name: string, readonly help: string) {}

  inc(labels: Labels = {}, n = 1): void {
    const key = seriesKey(labels);
    const v = this.#values.get(key);
    if (v) v.value += n;
    else this.#values.set(key, { labels, value: n });
  }

  /** Shows the series at 0 until it counts (alerts on `increase()` need a first sample before the first event). */
  declare(labels: Labels = {}): this {
    this.inc(labels, 0);
    return this;
  }

  render(): string[] {
    return [...this.#values.values()].map((v) => `${this.name}${labelText(v.labels)} ${v.value}`);
  }
}

/** A histogram per label set, with cumulative buckets. */
export class Histogram implements Family {
  readonly type = "histogram";
  readonly #series = new Map<string, { labels: Labels; counts: number[]; sum: number; count: number }>();
  constructor(readonly name: string, readonly help: string, readonly buckets: readonly number[]) {}

  observe(value: number, labels: Labels = {}): void {
    const key = seriesKey(labels);
    let s = this.#series.get(key);
    if (!s) this.#series.set(key, s = { labels, counts: this.buckets.map(() => 0), sum: 0, count: 0 });
    const i = this.buckets.findIndex((b) => value <= b);
    if (i >= 0) s.counts[i]!++;
    s.sum += value;
    s.count++;
  }

  render(): string[] {
    const out: string[] = [];
    for (const s of this.#series.values()) {
      let cumulative = 0;
      this.buckets.forEach((b, i) => {
        cumulative += s.counts[i]!;
        out.push(`${this.name}_bucket${labelText({ ...s.labels, le: String(b) })} ${cumulative}`);
      });
      out.push(`${this.name}_bucket${labelText({ ...s.labels, le: "+Inf" })} ${s.count}`);
      out.push(`${this.name}_sum${labelText(s.labels)} ${round(s.sum)}`);
      out.push(`${this.name}_count${labelText(s.labels)} ${s.count}`);
    }
    return out;
  }
}

/** A value (or values per label set) read when scraped. */
export type Sample = { readonly labels?: Labels; readonly value: number };

class Collected implements Family {
  constructor(
    readonly name: string,
    readonly help: string,
    readonly type: "counter" | "gauge",
    private readonly samples: () => readonly Sample[],
  ) {}

  render(): string[] {
    return this.samples().map((s) => `${this.name}${labelText(s.labels ?? {})} ${round(s.value)}`);
  }
}

/** The registry: families in registration order. */
export class Metrics {
  readonly #families: Family[] = [];

  counter(name: string, help: string): Counter {
    return this.#add(new Counter(name, help));
  }

  histogram(name: string, help: string, buckets: readonly number[]): Histogram {
    return this.#add(new Histogram(name, help, buckets));
  }

  /** A gauge (or a counter kept elsewhere) read at scrape time. */
  collect(name: string, help: string, samples: () => readonly Sample[], type: "counter" | "gauge" = "gauge"): void {
    this.#add(new Collected(name, help, type, samples));
  }

  /** Extra lines gathered right before a scrape (values that need I/O). */
  render(
    extra: readonly { name: string; help: string; samples: readonly Sample[]; type?: "counter" | "gauge" }[] = [],
  ): string {
    const lines: string[] = [];
    // Every family is named, with no sample yet too: a newcomer (or an alert rule) finds the counters before their
    // first event.
    for (const f of this.#families) {
      const body = f.render();
      lines.push(`# HELP ${f.name} ${f.help}`, `# TYPE ${f.name} ${f.type}`, ...body);
    }
    for (const e of extra) {
      const type = e.type ?? (e.name.endsWith("_total") ? "counter" : "gauge");
      // A gauge without a value is not there (the KV file's size in memory, say); a counter is named all the same.
      if (e.samples.length === 0 && type === "gauge") continue;
      lines.push(`# HELP ${e.name} ${e.help}`, `# TYPE ${e.name} ${type}`);
      for (const s of e.samples) lines.push(`${e.name}${labelText(s.labels ?? {})} ${round(s.value)}`);
    }
    return lines.join("\n") + "\n";
  }

  #add<F extends Family>(f: F): F {
    this.#families.push(f);
    return f;
  }
}

/** Seconds buckets from 0.5 ms to 10 s. */
export const LATENCY_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

/** A cheap identity for a label set (label names are fixed per family). */
function seriesKey(labels: Labels): string {
  let key = "";
  for (const k in labels) key += `${labels[k]}\u0001`;
  return key;
}

function labelText(labels: Labels): string {
  const entries = Object.entries(labels);
  if (entries.length === 0) return "";
  return `{${
    entries.map(([k, v]) => `${k}="${v.replaceAll("\\", "\\\\").replaceAll('"', '\\"').replaceAll("\n", "\\n")}"`).join(
      ",",
    )
  }}`;
}

function round(v: number): number {
  return Math.round(v * 1e6) / 1e6;
}
