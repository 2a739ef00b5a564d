import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import type { Subscription } from '../../as/src/events/event-package.js';
import { ENDED_KEPT_S, Notifier } from '../../as/src/events/notifier.js';
import type { UacClient } from '../../as/src/isc/uac.js';
import { silentLogger } from '../../as/src/log/logger.js';
import { Metrics } from '../../as/src/ops/metrics.js';
import { SqliteStore } from '../../as/src/store/sqlite-store.js';

const sub = (id: string, over: Partial<Subscription>): Subscription => ({
  _id: id,
  event: 'presence',
  resource: 'sip:pt@example.com',
  watcher: 'sip:w@example.com',
  callId: id,
  fromTag: 'f',
  toTag: 't',
  remoteParty: '<sip:w@example.com>;tag=f',
  localParty: '<sip:pt@example.com>',
  remoteTarget: 'sip:w@127.0.0.1',
  routeSet: [],
  localCseq: 0,
  remoteCseq: 1,
  state: 'active',
  expiresAt: new Date(Date.now() + 600_000),
  accept: ['application/pidf+xml'],
  createdAt: new Date(),
  notifyCount: 1,
  data: {},
  ...over,
});

describe('notifier: ended subscriptions leave the store', () => {
  it(`drops those that ended more than ${ENDED_KEPT_S} s ago, keeps the recent and the live ones`, async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'notifier-purge-'));
    const store = await SqliteStore.open(dir);
    try {
      const notifier = new Notifier({
        store,
        uac: {} as UacClient,
        contact: 'sip:notifier@127.0.0.1',
        log: silentLogger(),
        metrics: new Metrics(),
      });
      const subs = store.collection<Subscription>('subscriptions');
      await notifier.start();
      const longAgo = new Date(Date.now() - (ENDED_KEPT_S + 5) * 1000);
      await subs.insertMany([
        sub('old', { state: 'terminated', endReason: 'timeout', endedAt: longAgo }),
        sub('recent', { state: 'terminated', endReason: 'unsubscribed', endedAt: new Date() }),
        sub('live', {}),
      ]);
      // what the store's sweep timer does (MongoDB: its TTL monitor)
      await store.sweep();
      assert.deepEqual((await subs.find({})).map((s) => s._id).sort(), ['live', 'recent']);
      assert.deepEqual(await subs.findOne({ _id: 'old' }), null);
      notifier.stop();
    } finally {
      await store.close();
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('sweeps more expired documents than one chunk, and a reload sees none of them', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'notifier-purge-'));
    let store = await SqliteStore.open(dir);
    try {
      let subs = store.collection<Subscription>('subscriptions');
      await subs.ensureIndex({ fields: { endedAt: 1 }, expireAfterSeconds: ENDED_KEPT_S });
      const longAgo = new Date(Date.now() - (ENDED_KEPT_S + 5) * 1000);
      await subs.insertMany(
        Array.from({ length: 2500 }, (_, i) =>
          sub(`old${i}`, { state: 'terminated', endReason: 'timeout', endedAt: longAgo }),
        ),
      );
      await subs.insertOne(sub('live', {}));
      await store.sweep();
      assert.equal(await subs.count({}), 1);
      // what comes back after a restart is the same
      await store.close();
      store = await SqliteStore.open(dir);
      subs = store.collection<Subscription>('subscriptions');
      assert.deepEqual(
        (await subs.find({})).map((s) => s._id),
        ['live'],
      );
      assert.ok((await subs.findOne({ _id: 'live' }))!.expiresAt instanceof Date);
    } finally {
      await store.close();
      await rm(dir, { recursive: true, force: true });
    }
  });
});
