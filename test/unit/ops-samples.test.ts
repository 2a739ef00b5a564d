import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Metrics } from '../../as/src/ops/metrics.js';
import { SampleRing, ratesBetween, type Sample } from '../../as/src/ops/samples.js';

function sample(t: number, decisions: number, cdrs: number, latencies: number[], base?: Sample): Sample {
  const m = new Metrics();
  for (const s of [...(base ? [] : []), ...latencies]) m.observe('ims_as_isc_decision_seconds', s, { service: 'im' });
  const h = m.histogramTotal('ims_as_isc_decision_seconds');
  if (base) {
    h.buckets = h.buckets.map((b, i) => b + base.decisions.buckets[i]!);
    h.count += base.decisions.count;
    h.sum += base.decisions.sum;
  }
  return {
    t,
    counts: { registeredUsers: 0, subscriptions: {}, publications: 0, storedMessages: 0, cdrsWritten: cdrs },
    totals: { iscDecisions: decisions, iscEvents: 0, notifies: 0, uacRequests: 0, streamResets: 0, cdrs },
    decisions: h,
  };
}

describe('operator page samples', () => {
  it('rates per second and the latency of the interval only', () => {
    const a = sample(0, 100, 50, [0.2, 0.2]);
    const b = sample(10_000, 150, 70, [0.001, 0.001, 0.001, 0.001, 0.001, 0.001, 0.001, 0.001, 0.001, 0.02], a);
    const r = ratesBetween(a, b);
    assert.equal(r.perSecond.iscDecisions, 5);
    assert.equal(r.perSecond.cdrs, 2);
    assert.equal(r.decisionMeanMs, 2.9, 'mean of the ten decisions of the interval, not of the earlier slow ones');
    assert.equal(r.decisionP95Ms, 25, 'the p95 falls in the 25 ms bucket');
  });

  it('no decision in the interval: no latency; a counter that went down (restart) counts from zero', () => {
    const a = sample(0, 100, 50, []);
    const b = sample(2_000, 10, 50, []);
    const r = ratesBetween(a, b);
    assert.equal(r.decisionMeanMs, undefined);
    assert.equal(r.perSecond.iscDecisions, 5);
  });

  it('the ring keeps the last N, gives consecutive rates and the last minute', () => {
    const ring = new SampleRing(3);
    for (let i = 0; i < 5; i++) ring.push(sample(i * 30_000, i * 60, 0, []));
    assert.deepEqual(
      ring.all().map((s) => s.t),
      [60_000, 90_000, 120_000],
    );
    assert.deepEqual(
      ring.series().map((r) => r.perSecond.iscDecisions),
      [2, 2],
    );
    const recent = ring.recent(60_000)!;
    assert.equal(recent.perSecond.iscDecisions, 2);
    assert.equal(new SampleRing(2).recent(60_000), undefined);
  });

  it('Metrics.total sums a counter over its label sets', () => {
    const m = new Metrics();
    m.count('ims_as_isc_decisions_total', { service: 'im' }, 3);
    m.count('ims_as_isc_decisions_total', { service: 'presence' }, 4);
    assert.equal(m.total('ims_as_isc_decisions_total'), 7);
    assert.equal(m.total('nothing_total'), 0);
  });
});
