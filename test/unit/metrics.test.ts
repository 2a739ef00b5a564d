import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Metrics } from '../../as/src/ops/metrics.js';

describe('metrics', () => {
  it('renders counters and gauges in the Prometheus text format', () => {
    const m = new Metrics();
    m.count('ims_as_isc_decisions_total', { service: 'im', decision: '202' }, 2);
    m.gauge('ims_as_uac_in_flight', 'waiting', () => 3);
    const text = m.render();
    assert.match(
      text,
      /^# TYPE ims_as_isc_decisions_total counter\nims_as_isc_decisions_total\{service="im",decision="202"\} 2$/m,
    );
    assert.match(
      text,
      /^# HELP ims_as_uac_in_flight waiting\n# TYPE ims_as_uac_in_flight gauge\nims_as_uac_in_flight 3$/m,
    );
  });

  it('reads sampled gauges at each scrape; a failing or late one keeps its last value and is counted', async () => {
    const m = new Metrics();
    let n = 0;
    let mode: 'ok' | 'fail' | 'hang' = 'ok';
    m.sampledGauge('ims_as_subscriptions_active', 'live', async () => {
      if (mode === 'fail') throw new Error('store down');
      if (mode === 'hang') await new Promise(() => undefined);
      n++;
      return [
        { labels: { event: 'presence' }, value: n * 10 },
        { labels: { event: 'reg' }, value: n },
      ];
    });
    assert.match(
      await m.scrape(),
      /^ims_as_subscriptions_active\{event="presence"\} 10\nims_as_subscriptions_active\{event="reg"\} 1$/m,
    );
    assert.match(await m.scrape(), /^ims_as_subscriptions_active\{event="presence"\} 20$/m);
    mode = 'fail';
    assert.match(await m.scrape(), /^ims_as_subscriptions_active\{event="presence"\} 20$/m);
    mode = 'hang';
    const started = Date.now();
    const text = await m.scrape();
    assert.ok(Date.now() - started < 2000, 'a hanging reading does not hold the scrape');
    assert.match(text, /^ims_as_subscriptions_active\{event="presence"\} 20$/m);
    assert.equal(m.value('ims_as_metrics_sample_failures_total', { gauge: 'ims_as_subscriptions_active' }), 2);
  });

  it('adds the standard process and Node.js metrics when asked', async () => {
    const plain = await new Metrics().scrape();
    assert.doesNotMatch(plain, /process_cpu_seconds_total/);
    const text = await new Metrics().withProcessMetrics().scrape();
    for (const name of [
      'process_cpu_seconds_total',
      'process_resident_memory_bytes',
      'nodejs_heap_size_used_bytes',
      'nodejs_eventloop_lag_seconds',
    ]) {
      assert.match(text, new RegExp(`^# TYPE ${name} `, 'm'), name);
    }
  });
});
