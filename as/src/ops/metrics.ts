/**
 * A small Prometheus-text metrics registry: counters, latency histograms and gauges read
 * at scrape time. Kept in-process and allocation-light because counters run per request
 * (a labelled prom-client counter costs several times more per call). The standard process
 * and Node.js metrics come from prom-client (withProcessMetrics), appended at each scrape.
 */
import { Registry, collectDefaultMetrics } from 'prom-client';

type Labels = Record<string, string>;

/** One series of a gauge whose reading costs I/O. */
export interface GaugeSample {
  labels?: Labels;
  value: number;
}

/** A sampled gauge read longer than this keeps its previous value for this scrape. */
const SAMPLE_TIMEOUT_MS = 1000;

const BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5];

interface Histogram {
  labels: Labels;
  counts: number[];
  sum: number;
  count: number;
}

const UNSAFE_LABEL_CHARS = /["\\\n]/;

/** The series key: runs for every counted request, so one pass and no intermediate arrays. */
function labelText(labels: Labels | undefined): string {
  if (!labels) return '';
  let text = '';
  for (const k in labels) {
    const v = labels[k]!;
    text += `${text ? ',' : '{'}${k}="${UNSAFE_LABEL_CHARS.test(v) ? v.replace(/["\\\n]/g, '_') : v}"`;
  }
  return text ? `${text}}` : '';
}

export class Metrics {
  private readonly counters = new Map<string, Map<string, number>>();
  private readonly histograms = new Map<string, Map<string, Histogram>>();
  private readonly gauges = new Map<string, { help: string; read: () => number }>();
  private readonly cumulative = new Map<string, { help: string; read: () => number }>();
  private readonly help = new Map<string, string>();
  private readonly sampled = new Map<
    string,
    { help: string; read: () => Promise<GaugeSample[]>; last: GaugeSample[] }
  >();
  private processRegistry?: Registry;

  describe(name: string, help: string): this {
    this.help.set(name, help);
    return this;
  }

  count(name: string, labels?: Labels, n = 1): void {
    let series = this.counters.get(name);
    if (!series) this.counters.set(name, (series = new Map()));
    const key = labelText(labels);
    series.set(key, (series.get(key) ?? 0) + n);
  }

  observe(name: string, seconds: number, labels?: Labels): void {
    let series = this.histograms.get(name);
    if (!series) this.histograms.set(name, (series = new Map()));
    const key = labelText(labels);
    let h = series.get(key);
    if (!h)
      series.set(
        key,
        (h = { labels: labels ?? {}, counts: new Array<number>(BUCKETS.length).fill(0), sum: 0, count: 0 }),
      );
    for (let i = 0; i < BUCKETS.length; i++) if (seconds <= BUCKETS[i]!) h.counts[i]!++;
    h.sum += seconds;
    h.count++;
  }

  gauge(name: string, help: string, read: () => number): this {
    this.gauges.set(name, { help, read });
    return this;
  }

  /**
   * A counter kept by its owner (a count since start that a module already holds): read at
   * scrape time and exposed as a counter, so that rate() works on it.
   */
  counterFrom(name: string, help: string, read: () => number): this {
    this.cumulative.set(name, { help, read });
    return this;
  }

  /**
   * A gauge of live state whose reading costs I/O (a store count): read at each scrape
   * (scrape()), never on a request path. A reading that fails or is late keeps the previous
   * value and is counted in ims_as_metrics_sample_failures_total.
   */
  sampledGauge(name: string, help: string, read: () => Promise<GaugeSample[]>): this {
    this.sampled.set(name, { help, read, last: [] });
    return this;
  }

  /** Adds prom-client's standard process_* and nodejs_* metrics to scrape(). */
  withProcessMetrics(): this {
    this.processRegistry = new Registry();
    collectDefaultMetrics({ register: this.processRegistry });
    return this;
  }

  /** The /metrics text: sampled gauges read (in parallel, bounded), then everything rendered. */
  async scrape(): Promise<string> {
    await Promise.all(
      [...this.sampled].map(async ([name, g]) => {
        let timer: NodeJS.Timeout | undefined;
        try {
          g.last = await Promise.race([
            g.read(),
            new Promise<never>((_, reject) => {
              timer = setTimeout(() => reject(new Error('late')), SAMPLE_TIMEOUT_MS);
            }),
          ]);
        } catch {
          this.count('ims_as_metrics_sample_failures_total', { gauge: name });
        } finally {
          clearTimeout(timer);
        }
      }),
    );
    const own = this.render();
    return this.processRegistry ? own + (await this.processRegistry.metrics()) : own;
  }

  /** Current value of a counter series (for tests and the health summary). */
  value(name: string, labels?: Labels): number {
    return this.counters.get(name)?.get(labelText(labels)) ?? 0;
  }

  /** A counter summed over all its label sets (the operator page's rates). */
  total(name: string): number {
    let sum = 0;
    for (const v of this.counters.get(name)?.values() ?? []) sum += v;
    return sum;
  }

  /** A histogram merged over its label sets: cumulative bucket counts (bounds in seconds), count, sum. */
  histogramTotal(name: string): { bounds: readonly number[]; buckets: number[]; count: number; sum: number } {
    const merged = { bounds: BUCKETS, buckets: new Array<number>(BUCKETS.length).fill(0), count: 0, sum: 0 };
    for (const h of this.histograms.get(name)?.values() ?? []) {
      h.counts.forEach((c, i) => (merged.buckets[i]! += c));
      merged.count += h.count;
      merged.sum += h.sum;
    }
    return merged;
  }

  /** A gauge's current value (undefined when not registered). */
  gaugeValue(name: string): number | undefined {
    return this.gauges.get(name)?.read();
  }

  render(): string {
    const out: string[] = [];
    const head = (name: string, type: string, help?: string) => {
      if (help ?? this.help.get(name)) out.push(`# HELP ${name} ${help ?? this.help.get(name)}`);
      out.push(`# TYPE ${name} ${type}`);
    };
    for (const [name, series] of this.counters) {
      head(name, 'counter');
      for (const [key, v] of series) out.push(`${name}${key} ${v}`);
    }
    for (const [name, c] of this.cumulative) {
      head(name, 'counter', c.help);
      out.push(`${name} ${c.read()}`);
    }
    for (const [name, series] of this.histograms) {
      head(name, 'histogram');
      for (const h of series.values()) {
        BUCKETS.forEach((b, i) =>
          out.push(`${name}_bucket${labelText({ ...h.labels, le: String(b) })} ${h.counts[i]}`),
        );
        out.push(`${name}_bucket${labelText({ ...h.labels, le: '+Inf' })} ${h.count}`);
        out.push(`${name}_sum${labelText(h.labels)} ${h.sum}`);
        out.push(`${name}_count${labelText(h.labels)} ${h.count}`);
      }
    }
    for (const [name, g] of this.gauges) {
      head(name, 'gauge', g.help);
      out.push(`${name} ${g.read()}`);
    }
    for (const [name, g] of this.sampled) {
      head(name, 'gauge', g.help);
      for (const s of g.last) out.push(`${name}${labelText(s.labels)} ${s.value}`);
    }
    return out.join('\n') + '\n';
  }
}
