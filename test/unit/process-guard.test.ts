import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { describe, it } from 'node:test';
import { createLogger } from '../../as/src/log/logger.js';
import { Metrics } from '../../as/src/ops/metrics.js';
import { UNCAUGHT_EXIT_CODE, guardProcess } from '../../as/src/util/process-guard.js';

const quiet = createLogger('silent');

/** A guard on its own emitter, with the stops and exits it asked for. */
function guarded(stop: () => Promise<void>, stopWithinMs?: number) {
  const metrics = new Metrics();
  const source = new EventEmitter();
  const exits: number[] = [];
  const unguard = guardProcess({
    log: quiet,
    metrics,
    stop,
    exit: (c) => void exits.push(c),
    source,
    ...(stopWithinMs ? { stopWithinMs } : {}),
  });
  return { metrics, source, exits, unguard };
}

describe('process guard', () => {
  it('counts an unhandled rejection and neither stops nor exits', async () => {
    let stops = 0;
    const { metrics, source, exits, unguard } = guarded(async () => void stops++);
    try {
      source.emit('unhandledRejection', new Error('forgotten catch'));
      assert.equal(metrics.value('ims_as_process_unhandled_rejections_total'), 1);
      assert.match(metrics.render(), /# HELP ims_as_process_unhandled_rejections_total /);
      await new Promise((r) => setTimeout(r, 20));
      assert.equal(stops, 0);
      assert.deepEqual(exits, []);
    } finally {
      unguard();
    }
  });

  it('stops in order once after an uncaught exception, then exits 70', async () => {
    let stops = 0;
    const { metrics, source, exits, unguard } = guarded(async () => void stops++);
    try {
      source.emit('uncaughtException', new Error('half-done state'));
      source.emit('uncaughtException', new Error('another one meanwhile'));
      await new Promise((r) => setTimeout(r, 20));
      assert.equal(metrics.value('ims_as_process_uncaught_exceptions_total'), 2);
      assert.equal(stops, 1);
      assert.deepEqual(exits, [UNCAUGHT_EXIT_CODE]);
    } finally {
      unguard();
    }
  });

  it('exits even when the stop hangs', async () => {
    const { source, exits, unguard } = guarded(() => new Promise(() => {}), 30);
    try {
      source.emit('uncaughtException', new Error('stuck'));
      await new Promise((r) => setTimeout(r, 80));
      assert.deepEqual(exits, [UNCAUGHT_EXIT_CODE]);
    } finally {
      unguard();
    }
  });
});
