import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { pino } from 'pino';
import { Owner } from '../../as/src/app/ownership.js';

/** A logger whose lines the test reads back. */
function recordingLog() {
  const lines: Record<string, unknown>[] = [];
  const log = pino(
    { level: 'info' },
    { write: (s: string) => void lines.push(JSON.parse(s) as Record<string, unknown>) },
  );
  return { log, lines };
}

describe('ownership tree', () => {
  it('closes its parts in the reverse order they were built, each once', async () => {
    const { log } = recordingLog();
    const closed: string[] = [];
    const owner = new Owner(log);
    for (const name of ['store', 'charging', 'presence', 'im', 'intake']) {
      owner.own(name, {
        close: async () => {
          await new Promise((r) => setImmediate(r));
          closed.push(name);
        },
      });
    }
    await Promise.all([owner.close(), owner.close()]);
    assert.deepEqual(closed, ['intake', 'im', 'presence', 'charging', 'store']);
  });

  it('a failure half way through building closes what was already built and rethrows', async () => {
    const { log, lines } = recordingLog();
    const closed: string[] = [];
    const owner = new Owner(log);
    await assert.rejects(
      owner.building(async (o) => {
        o.own('store', { close: () => void closed.push('store') });
        o.own('charging', { close: () => void closed.push('charging') });
        throw new Error('cannot listen on 0.0.0.0:5080 (isc.host/isc.port): EADDRINUSE');
      }),
      /EADDRINUSE/,
    );
    assert.deepEqual(closed, ['charging', 'store']);
    // the build's own error is what the caller gets, also when a close fails on the way
    const second = new Owner(log, 'im');
    second.own('switch', {
      close: () => {
        throw new Error('switch not stopped');
      },
    });
    await assert.rejects(
      second.building(async () => {
        throw new Error('history index not created');
      }),
      /history index not created/,
    );
    const failed = lines.find((l) => l.msg === 'start failed: closing what was built');
    assert.deepEqual(failed?.built, ['store', 'charging']);
    assert.throws(() => owner.own('late', { close: () => undefined }), /after its owner started closing/);
  });

  it('a part whose close fails is logged by name and the others still close', async () => {
    const { log, lines } = recordingLog();
    const closed: string[] = [];
    const owner = new Owner(log);
    owner.own('store', { close: () => void closed.push('store') });
    owner.own('presence', {
      close: async () => {
        throw new Error('subscription state not saved');
      },
    });
    owner.own('sampler', {
      close: () => {
        throw new Error('sync failure');
      },
    });
    owner.own('intake', { close: () => void closed.push('intake') });
    await assert.rejects(owner.close(), /application: not closed cleanly: sampler, presence/);
    assert.deepEqual(closed, ['intake', 'store']);
    const failures = lines.filter((l) => l.msg === 'not closed cleanly; closing the others').map((l) => l.part);
    assert.deepEqual(failures, ['application/sampler', 'application/presence']);
  });

  it('a successful build keeps everything open', async () => {
    const { log } = recordingLog();
    const closed: string[] = [];
    const owner = new Owner(log);
    const got = await owner.building(async (o) =>
      o.own('store', { close: () => void closed.push('store'), engine: 'sqlite' }),
    );
    assert.equal(got.engine, 'sqlite');
    assert.deepEqual(closed, []);
    assert.deepEqual(owner.names, ['store']);
  });
});
