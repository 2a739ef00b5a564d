import type { Logger } from '../log/logger.js';
import type { Metrics } from './metrics.js';
import { RATE_COUNTERS, SampleRing, type RateName, type Sample } from './samples.js';

/**
 * Takes a sample every `everyMs` (counts of what the AS holds, counters, decision latency)
 * into a ring of the last `keep`: the operator page plots them. A failed count (store down)
 * skips that sample and is logged once per outage.
 */
export class OpsSampler {
  readonly ring: SampleRing;
  private timer: NodeJS.Timeout | undefined;
  private failing = false;

  constructor(
    private readonly deps: {
      everyMs: number;
      keep: number;
      counts: () => Promise<Sample['counts']>;
      metrics: Metrics;
      log: Logger;
    },
  ) {
    this.ring = new SampleRing(deps.keep);
  }

  start(): void {
    this.tick();
    this.timer = setInterval(() => this.tick(), this.deps.everyMs);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
  }

  /** One timed sample; sampleNow reports its own failures, this only keeps a surprise from going unhandled. */
  private tick(): void {
    this.sampleNow().catch((err: unknown) =>
      this.deps.log.error({ err: (err as Error).message }, 'operator page sample threw'),
    );
  }

  async sampleNow(): Promise<Sample | undefined> {
    const { metrics } = this.deps;
    try {
      const counts = await this.deps.counts();
      const totals = {} as Record<RateName, number>;
      for (const [k, name] of Object.entries(RATE_COUNTERS)) totals[k as RateName] = metrics.total(name);
      totals.cdrs = counts.cdrsWritten;
      const sample: Sample = {
        t: Date.now(),
        counts,
        totals,
        decisions: metrics.histogramTotal('ims_as_isc_decision_seconds'),
      };
      this.ring.push(sample);
      if (this.failing) this.deps.log.info('operator page sampling works again');
      this.failing = false;
      return sample;
    } catch (err) {
      if (!this.failing)
        this.deps.log.warn(
          { err: (err as Error).message },
          'operator page sample failed (store?); retrying every interval',
        );
      this.failing = true;
      return undefined;
    }
  }
}
