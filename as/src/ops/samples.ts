/**
 * The operator page's numbers: one sample every few seconds (counts of what the AS holds,
 * cumulative counters, the decision latency histogram), and the rates between two samples.
 * Pure: no clock, no I/O.
 */

/** Cumulative counters sampled; their per-second rates are plotted. */
export const RATE_COUNTERS = {
  iscDecisions: 'ims_as_isc_decisions_total',
  iscEvents: 'ims_as_isc_events_total',
  notifies: 'ims_as_notify_total',
  uacRequests: 'ims_as_uac_sent_total',
  streamResets: 'ims_as_isc_stream_resets_total',
} as const;

export type RateName = keyof typeof RATE_COUNTERS | 'cdrs';

export interface Sample {
  /** ms since the epoch */
  t: number;
  /** What the AS holds now. */
  counts: {
    registeredUsers: number;
    subscriptions: Record<string, number>;
    publications: number;
    storedMessages: number;
    cdrsWritten: number;
  };
  /** Cumulative counter values (RATE_COUNTERS and cdrs). */
  totals: Record<RateName, number>;
  /** The ISC decision latency histogram, cumulative. */
  decisions: { bounds: readonly number[]; buckets: number[]; count: number; sum: number };
}

export interface Rates {
  t: number;
  /** per second, over the interval ending at t */
  perSecond: Record<RateName, number>;
  /** decision latency over the interval (ms); undefined when no decision was taken */
  decisionMeanMs?: number;
  decisionP95Ms?: number;
}

/** The upper bound (ms) of the bucket holding the q-quantile of the interval's observations. */
function quantileMs(prev: Sample['decisions'], cur: Sample['decisions'], q: number): number | undefined {
  const n = cur.count - prev.count;
  if (n <= 0) return undefined;
  const rank = Math.ceil(q * n);
  for (let i = 0; i < cur.bounds.length; i++) {
    if (cur.buckets[i]! - (prev.buckets[i] ?? 0) >= rank) return cur.bounds[i]! * 1000;
  }
  return Infinity;
}

export function ratesBetween(prev: Sample, cur: Sample): Rates {
  const seconds = Math.max(0.001, (cur.t - prev.t) / 1000);
  const perSecond = {} as Record<RateName, number>;
  for (const k of Object.keys(cur.totals) as RateName[]) {
    // a counter that went down means a restart: count from zero
    const delta = cur.totals[k] - (prev.totals[k] ?? 0);
    perSecond[k] = Math.round(((delta >= 0 ? delta : cur.totals[k]) / seconds) * 100) / 100;
  }
  const n = cur.decisions.count - prev.decisions.count;
  const rates: Rates = { t: cur.t, perSecond };
  if (n > 0) {
    rates.decisionMeanMs = Math.round(((cur.decisions.sum - prev.decisions.sum) / n) * 1e6) / 1000;
    rates.decisionP95Ms = quantileMs(prev.decisions, cur.decisions, 0.95);
  }
  return rates;
}

/** A fixed-size ring of the latest samples, oldest first when read. */
export class SampleRing {
  private readonly items: Sample[] = [];
  constructor(readonly capacity: number) {}

  push(s: Sample): void {
    this.items.push(s);
    if (this.items.length > this.capacity) this.items.shift();
  }

  all(): readonly Sample[] {
    return this.items;
  }

  get latest(): Sample | undefined {
    return this.items[this.items.length - 1];
  }

  /** Rates over the last `windowMs` (or as much as the ring holds): the page's "now" figures. */
  recent(windowMs: number): Rates | undefined {
    const latest = this.latest;
    if (!latest || this.items.length < 2) return undefined;
    const from =
      this.items.find((s) => s.t >= latest.t - windowMs && s !== latest) ?? this.items[this.items.length - 2]!;
    return ratesBetween(from, latest);
  }

  /** Rates between each pair of consecutive samples. */
  series(): Rates[] {
    const out: Rates[] = [];
    for (let i = 1; i < this.items.length; i++) out.push(ratesBetween(this.items[i - 1]!, this.items[i]!));
    return out;
  }
}
