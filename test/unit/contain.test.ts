import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { silentLogger } from '../../as/src/log/logger.js';
import { Metrics } from '../../as/src/ops/metrics.js';
import { BackgroundWork } from '../../as/src/util/background-work.js';
import { REACTION_FAILURES, contain, survive } from '../../as/src/util/contain.js';

const tick = () => new Promise((r) => setImmediate(r));

describe('contained reactions', () => {
  it('contain counts a rejected promise and a throwing thunk under their reaction, and nothing else', async () => {
    const sink = { log: silentLogger(), metrics: new Metrics() };
    contain(sink, 'fan-out', Promise.reject(new Error('store down')));
    contain(sink, 'sweep', () => {
      throw new Error('bug before the first await');
    });
    contain(sink, 'sweep', async () => undefined);
    await tick();
    assert.equal(sink.metrics.value(REACTION_FAILURES, { reaction: 'fan-out' }), 1);
    assert.equal(sink.metrics.value(REACTION_FAILURES, { reaction: 'sweep' }), 1);
  });

  it('survive waits for the work and resolves even when it fails', async () => {
    const sink = { log: silentLogger(), metrics: new Metrics() };
    let done = false;
    await survive(sink, 'charging', async () => {
      await tick();
      done = true;
    });
    assert.ok(done);
    await survive(sink, 'charging', Promise.reject(new Error('CDR not stored')));
    assert.equal(sink.metrics.value(REACTION_FAILURES, { reaction: 'charging' }), 1);
  });

  it('background work is drained, failures included, and counted once', async () => {
    const sink = { log: silentLogger(), metrics: new Metrics() };
    const work = new BackgroundWork(sink);
    let finished = 0;
    work.start(
      'outcome',
      (async () => {
        await tick();
        finished++;
      })(),
    );
    work.start(
      'outcome',
      (async () => {
        await tick();
        throw new Error('store down');
      })(),
    );
    assert.equal(work.size, 2);
    await work.drain();
    assert.equal(work.size, 0);
    assert.equal(finished, 1);
    assert.equal(sink.metrics.value(REACTION_FAILURES, { reaction: 'outcome' }), 1);
  });
});
