/** The Rf outbox as a CDR sink: a store failure while queueing loses no record (no CDF needed). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Charging } from '../../as/src/charging/charging.js';
import { RF_OUTBOX } from '../../as/src/charging/rf-client.js';
import type { ChargeableEvent } from '../../as/src/charging/record.js';
import { SqliteStore } from '../../as/src/store/sqlite-store.js';
import { silentLogger } from '../../as/src/log/logger.js';
import type { Collection, Doc, Store } from '../../as/src/store/port.js';

const event = (n: number): ChargeableEvent => ({
  service: 'im',
  role: 'originating',
  sipMethod: 'MESSAGE',
  sessionId: `call-${n}@pc`,
  callingParty: 'sip:alice@home1.net',
  calledParty: 'sip:bob@home1.net',
  requestTime: new Date(),
  responseTime: new Date(),
  statusCode: 200,
  outcome: 'delivered',
});

test('an outbox insert that fails is queued again by the catch-up, even with later records already handed over', async () => {
  const root = await mkdtemp(path.join(tmpdir(), 'rf-outbox-'));
  const inner = await SqliteStore.open(path.join(root, 'data'));
  let failed = false;
  const store: Store = {
    engine: inner.engine,
    ping: () => inner.ping(),
    close: () => inner.close(),
    collection<T extends Doc>(name: string): Collection<T> {
      const c = inner.collection<T>(name);
      if (name !== RF_OUTBOX) return c;
      return new Proxy(c, {
        get(target, key) {
          if (key === 'insertOne') {
            return async (doc: T) => {
              if (doc.seq === 2 && !failed) {
                failed = true;
                await new Promise((r) => setTimeout(r, 20)); // fails after record 3 was handed over
                throw new Error('injected store failure');
              }
              return target.insertOne(doc);
            };
          }
          const v = (target as unknown as Record<string | symbol, unknown>)[key];
          return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
        },
      });
    },
  };
  const charging = new Charging({
    store,
    nodeId: 'as1',
    nodeAddress: '127.0.0.1',
    cdrDir: path.join(root, 'cdr'),
    log: silentLogger(),
    jsonl: false,
    fileRetryMs: 50,
    // nothing listens there: the records stay in the outbox
    rf: {
      peers: [{ host: '127.0.0.1', port: 9 }],
      originHost: 'as1.home1.net',
      originRealm: 'home1.net',
      destinationRealm: 'home1.net',
      hostIpAddress: '127.0.0.1',
      retryMs: 60_000,
      connectTimeoutMs: 200,
    },
  });
  try {
    await charging.start();
    await Promise.all([1, 2, 3].map((n) => charging.record(event(n))));
    const outbox = inner.collection<Doc>(RF_OUTBOX);
    const deadline = Date.now() + 5000;
    while ((await outbox.count({})) < 3 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 25));
    assert.ok(failed, 'the failure was injected');
    assert.deepEqual(
      (await outbox.find({}, { sort: { seq: 1 } })).map((d) => d._id),
      ['as1:1', 'as1:2', 'as1:3'],
    );
  } finally {
    await charging.stop();
    await inner.close();
    await rm(root, { recursive: true, force: true });
  }
});
