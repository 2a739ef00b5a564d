/**
 * The change-feed contract (as/src/cluster/change-feed.ts), written once and run against every
 * implementation and every engine of the store port it runs on: the store-backed feed on the
 * embedded engine always, on MongoDB (a single mongod is enough) when MONGODB_URI is set; the
 * local feed of an instance alone for the part that concerns one instance.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { MongoClient } from 'mongodb';
import { LocalChangeFeed, type ChangeFeed, type ChangeOrigin } from '../../as/src/cluster/change-feed.js';
import type { Change } from '../../as/src/cluster/changes.js';
import { StoreChangeFeed } from '../../as/src/cluster/store-change-feed.js';
import { silentLogger } from '../../as/src/log/logger.js';
import { Metrics } from '../../as/src/ops/metrics.js';
import { SqliteStore } from '../../as/src/store/sqlite-store.js';
import { MongoStore } from '../../as/src/store/mongo-store.js';
import type { Store } from '../../as/src/store/port.js';
import { withDbName } from '../helpers/mongo-uri.js';
import { sleep, until } from '../helpers/until.js';

const POLL_MS = 50;
const GAP_WAIT_MS = 400;
/** What the contract promises for another instance's change: a poll, a read, and room for a busy machine. */
const DELAY_BOUND_MS = 1000;

/** The store shared by the instances of one test group. */
interface SharedStore {
  /** A handle for one more instance (its own connection where the engine has them). */
  open(): Promise<Store>;
  /** Runs the engine's TTL expiry now, when it can be asked to (the embedded one can). */
  expireNow?(): Promise<void>;
  destroy(): Promise<void>;
}

/** One instance's feed and what its listener heard. */
interface Instance {
  id: string;
  feed: ChangeFeed;
  heard: Array<{ change: Change; origin: ChangeOrigin; at: number }>;
  resyncs: number;
  metrics: Metrics;
}

interface Implementation {
  name: string;
  /** Whether the feed carries changes between instances (the local one does not). */
  shared: boolean;
  makeShared(): Promise<SharedStore>;
  feed(store: Store, id: string, metrics: Metrics): ChangeFeed;
}

const pub = (entity: string, n = 0): Change => ({ kind: 'publication', entity, event: `presence${n ? `#${n}` : ''}` });
const remote = (i: Instance) => i.heard.filter((h) => h.origin === 'remote');

function runFeedContract(impl: Implementation, skip: string | false = false): void {
  describe(`change feed contract: ${impl.name}`, { skip }, () => {
    let shared: SharedStore | undefined;
    const instances: Instance[] = [];
    let seq = 0;

    async function instance(): Promise<Instance> {
      assert.ok(shared);
      const metrics = new Metrics();
      const id = `as-${++seq}`;
      const feed = impl.feed(await shared.open(), id, metrics);
      const inst: Instance = { id, feed, heard: [], resyncs: 0, metrics };
      feed.listen({
        change: async (change, origin) => void inst.heard.push({ change, origin, at: Date.now() }),
        resync: () => void inst.resyncs++,
      });
      await feed.start();
      instances.push(inst);
      return inst;
    }

    before(async () => {
      shared = await impl.makeShared();
    });
    after(async () => {
      for (const i of instances.splice(0)) await i.feed.stop();
      await shared?.destroy();
    });

    it('the instance that makes a change hears it at once, once, as local', async () => {
      const a = await instance();
      const done = a.feed.publish(pub('sip:now@example.com'));
      // before any timer or store round trip: no poll latency on the hot path
      assert.deepEqual(
        a.heard.map((h) => [h.change, h.origin]),
        [[pub('sip:now@example.com'), 'local']],
      );
      await done;
      await sleep(POLL_MS * 4);
      assert.equal(a.heard.length, 1, 'its own change read back from the feed must not be applied again');
    });

    it(
      'another instance hears it, once, within the delay bound',
      { skip: !impl.shared && 'this feed serves one instance alone' },
      async (t) => {
        const a = await instance();
        const b = await instance();
        const delays: number[] = [];
        for (let n = 0; n < 20; n++) {
          const sent = Date.now();
          await a.feed.publish(pub('sip:delay@example.com', n));
          await until(`change ${n} at the other instance`, () => remote(b).length === n + 1);
          delays.push(remote(b)[n]!.at - sent);
        }
        delays.sort((x, y) => x - y);
        const max = delays[delays.length - 1]!;
        t.diagnostic(
          `delay to another instance over 20 changes (poll every ${POLL_MS} ms): median ${delays[10]} ms, max ${max} ms`,
        );
        assert.ok(
          max < DELAY_BOUND_MS,
          `a change took ${max} ms to reach another instance (bound ${DELAY_BOUND_MS} ms)`,
        );
        await sleep(POLL_MS * 4);
        assert.equal(remote(b).length, 20, 'no change applied twice');
        assert.equal(remote(a).length, 0, 'the maker never hears its own change as remote');
      },
    );

    it(
      "keeps the order of one resource's changes, whichever instance made them",
      { skip: !impl.shared && 'this feed serves one instance alone' },
      async () => {
        const a = await instance();
        const b = await instance();
        const c = await instance();
        const entity = 'sip:order@example.com';
        // both writers interleave on one resource, several changes per turn of the event loop too
        const writes: Array<Promise<void>> = [];
        for (let n = 1; n <= 30; n++) {
          writes.push((n % 2 ? a : b).feed.publish(pub(entity, n)));
          if (n % 5 === 0) await Promise.all(writes.splice(0));
        }
        await Promise.all(writes);
        await until('all 30 changes at the third instance', () => remote(c).length === 30);
        const seen = remote(c).map((h) => Number((h.change as { event: string }).event.split('#')[1]));
        const fromA = seen.filter((n) => n % 2 === 1);
        const fromB = seen.filter((n) => n % 2 === 0);
        assert.deepEqual(
          fromA,
          [...fromA].sort((x, y) => x - y),
          "one writer's changes out of order",
        );
        assert.deepEqual(
          fromB,
          [...fromB].sort((x, y) => x - y),
          "one writer's changes out of order",
        );
        // what A applied of B's changes is in the same order as what C applied of them
        await until("B's changes at A", () => remote(a).length === 15);
        assert.deepEqual(
          remote(a).map((h) => h.change),
          remote(c)
            .filter((h) => fromB.includes(Number((h.change as { event: string }).event.split('#')[1])))
            .map((h) => h.change),
        );
      },
    );

    it(
      'a new instance does not replay changes made before it started',
      { skip: !impl.shared && 'this feed serves one instance alone' },
      async () => {
        const a = await instance();
        await a.feed.publish(pub('sip:old@example.com'));
        const late = await instance();
        await a.feed.publish(pub('sip:new@example.com'));
        await until('the new change at the late instance', () => remote(late).length >= 1);
        await sleep(POLL_MS * 4);
        assert.deepEqual(
          remote(late).map((h) => h.change),
          [pub('sip:new@example.com')],
        );
      },
    );

    it(
      'waits for a number taken but not yet written, then applies both in order',
      { skip: !impl.shared && 'this feed serves one instance alone' },
      async () => {
        assert.ok(shared);
        const a = await instance();
        const b = await instance();
        const raw = await shared.open();
        // a writer between its two steps: number taken, entry not yet written
        const counter = await raw
          .collection<{ _id: string; seq: number }>('change_feed_counter')
          .findOneAndUpdate({ _id: 'changes' }, { $inc: { seq: 1 } }, { upsert: true, returnDocument: 'after' });
        const slow = counter!.seq;
        await a.feed.publish(pub('sip:after-gap@example.com'));
        await sleep(POLL_MS * 3);
        assert.equal(remote(b).length, 0, 'a change after a missing number must wait for it');
        await raw.collection('change_feed').insertOne({
          _id: `c${slow}`,
          seq: slow,
          origin: 'slow-writer',
          at: new Date(),
          change: pub('sip:before-gap@example.com'),
        });
        await until('both changes', () => remote(b).length === 2);
        assert.deepEqual(
          remote(b).map((h) => h.change),
          [pub('sip:before-gap@example.com'), pub('sip:after-gap@example.com')],
        );
        assert.equal(b.resyncs, 0);
      },
    );

    it(
      'skips a number never written after the gap wait, and tells its listeners to resync',
      { skip: !impl.shared && 'this feed serves one instance alone' },
      async () => {
        assert.ok(shared);
        const a = await instance();
        const b = await instance();
        const raw = await shared.open();
        // a writer that died between its two steps
        await raw
          .collection<{ _id: string; seq: number }>('change_feed_counter')
          .findOneAndUpdate({ _id: 'changes' }, { $inc: { seq: 1 } }, { upsert: true, returnDocument: 'after' });
        const sent = Date.now();
        await a.feed.publish(pub('sip:past-hole@example.com'));
        await until('the change past the hole', () => remote(b).length === 1, GAP_WAIT_MS * 10);
        const waited = remote(b)[0]!.at - sent;
        assert.ok(
          waited >= GAP_WAIT_MS - 20,
          `applied after ${waited} ms: the gap must be waited for ${GAP_WAIT_MS} ms`,
        );
        assert.equal(b.resyncs, 1);
        assert.equal(b.metrics.value('ims_as_change_feed_gaps_total'), 1);
      },
    );

    it('old entries are trimmed', { skip: !impl.shared ? 'this feed keeps nothing' : false }, async (t) => {
      assert.ok(shared);
      const raw = await shared.open();
      const entries = raw.collection('change_feed');
      const a = await instance();
      await a.feed.publish(pub('sip:trim@example.com'));
      // an entry written an hour ago (the feed keeps ten minutes)
      await entries.insertOne({
        _id: 'c-old',
        seq: -1,
        origin: 'x',
        at: new Date(Date.now() - 3600_000),
        change: pub('sip:old@example.com'),
      });
      if (!shared.expireNow) {
        t.skip('this engine expires on its own schedule (MongoDB: its TTL monitor, every minute): not waited for here');
        return;
      }
      await shared.expireNow();
      assert.equal(await entries.count({ _id: 'c-old' }), 0, 'an entry past retention must be trimmed');
      assert.ok((await entries.count({})) >= 1, 'recent entries stay');
    });
  });
}

function storeFeed(store: Store, id: string, metrics: Metrics): ChangeFeed {
  return new StoreChangeFeed({
    store,
    instance: id,
    pollMs: POLL_MS,
    gapWaitMs: GAP_WAIT_MS,
    retentionSeconds: 600,
    log: silentLogger(),
    metrics,
  });
}

/** The embedded engine (SQLite): each instance its own connection to one database file, as separate processes have. */
async function embeddedShared(): Promise<SharedStore> {
  const dir = await mkdtemp(path.join(tmpdir(), 'ims-feed-contract-'));
  const opened: SqliteStore[] = [];
  return {
    open: async () => {
      const s = await SqliteStore.open(dir);
      opened.push(s);
      return s;
    },
    // (a handle sweeps the collections it has used)
    expireNow: async () => {
      for (const s of opened) await s.sweep();
    },
    destroy: async () => {
      for (const s of opened) await s.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** MongoDB: each instance its own connection, as separate processes or machines would have. */
async function mongoShared(): Promise<SharedStore> {
  const dbName = `ims_as_feed_${Date.now().toString(36)}_${process.pid}`;
  const uri = withDbName(process.env.MONGODB_URI ?? '', dbName);
  const opened: Store[] = [];
  return {
    open: async () => {
      const s = await MongoStore.connect(uri);
      opened.push(s);
      return s;
    },
    destroy: async () => {
      for (const s of opened) await s.close().catch(() => undefined);
      const client = new MongoClient(uri, { serverSelectionTimeoutMS: 5_000 });
      try {
        await client.connect();
        await client.db(dbName).dropDatabase();
      } finally {
        await client.close();
      }
    },
  };
}

runFeedContract({
  name: 'store feed on the embedded engine',
  shared: true,
  makeShared: embeddedShared,
  feed: storeFeed,
});
runFeedContract(
  { name: 'store feed on MongoDB', shared: true, makeShared: mongoShared, feed: storeFeed },
  process.env.MONGODB_URI
    ? false
    : 'MONGODB_URI is not set: no MongoDB server on this machine, feed contract not run against MongoDB',
);
runFeedContract({
  name: 'local feed (an instance alone)',
  shared: false,
  makeShared: embeddedShared,
  feed: () => new LocalChangeFeed(),
});
