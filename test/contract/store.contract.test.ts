/**
 * The store contract (as/src/store/port.ts), written once and run against each engine:
 * the embedded engine always, MongoDB when MONGODB_URI points at a server.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { MongoClient } from 'mongodb';
import { SqliteStore } from '../../as/src/store/sqlite-store.js';
import { MongoStore } from '../../as/src/store/mongo-store.js';
import { openStore } from '../../as/src/store/open-store.js';
import { DuplicateKeyError, type Doc, type Store, type Update } from '../../as/src/store/port.js';
import { withDbName } from '../helpers/mongo-uri.js';

type EngineName = 'embedded' | 'mongodb';

interface ServerIndex {
  key: Record<string, number>;
  unique?: boolean;
  expireAfterSeconds?: number;
}

/** One engine's backing data for one test group: a temp directory or a database. */
interface EngineFixture {
  /** Opens a store on this fixture's data; after a close, opening again finds the same data. */
  open(): Promise<Store>;
  /** Deletes the data. */
  destroy(): Promise<void>;
  /** MongoDB only: the indexes as the server lists them (the port has no such call). */
  listIndexes?(collection: string): Promise<ServerIndex[]>;
}

type MakeStore = (group: string) => Promise<EngineFixture>;

const idsOf = (docs: readonly Doc[]): string[] => docs.map((d) => d._id).sort();
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
let collectionSeq = 0;
/** A fresh collection name per test, so tests in one group never see each other's documents. */
const freshName = (label: string) => `${label}_${++collectionSeq}`;

function runContract(name: EngineName, makeStore: MakeStore, skip: string | false = false): void {
  describe(`store contract: ${name}`, { skip }, () => {
    /** A describe block with its own fixture (fresh data) and an open store. */
    function group(
      title: string,
      body: (env: { store: Store; fixture: EngineFixture; reopen(): Promise<void> }) => void,
    ): void {
      describe(title, () => {
        let fixture: EngineFixture | undefined;
        let store: Store | undefined;
        const env = {
          get store(): Store {
            assert.ok(store, 'store not opened');
            return store;
          },
          get fixture(): EngineFixture {
            assert.ok(fixture, 'fixture not made');
            return fixture;
          },
          async reopen(): Promise<void> {
            await env.store.close();
            store = undefined;
            store = await env.fixture.open();
          },
        };
        before(async () => {
          fixture = await makeStore(title);
          store = await fixture.open();
        });
        after(async () => {
          await store?.close();
          await fixture?.destroy();
        });
        body(env);
      });
    }

    group('documents and queries', (env) => {
      const people: Doc[] = [
        { _id: 'a', n: 1, s: 'x', tags: ['red', 'blue'], sub: { k: 'p', depth: 1 }, opt: 'here' },
        { _id: 'b', n: 2, s: 'y', tags: ['blue'], sub: { k: 'q', depth: 2 }, opt: null },
        { _id: 'c', n: 3, s: 'z', tags: [], sub: { k: 'p', depth: 3 } },
        { _id: 'd', n: 4, s: 'x', tags: ['green'], sub: { k: 'r', depth: 4 }, opt: 'there' },
        { _id: 'e', n: 5, s: 'w', sub: { k: 'q', depth: 5 } },
      ];
      const peopleName = freshName('people');
      before(async () => {
        await env.store.collection(peopleName).insertMany(people);
      });

      it('reports its engine and answers ping', async () => {
        assert.equal(env.store.engine, name);
        await env.store.ping();
      });

      it('insertOne then findOne by _id returns the document as stored', async () => {
        const col = env.store.collection(freshName('docs'));
        const doc = {
          _id: 'd1',
          name: 'alice',
          n: 42,
          f: 1.5,
          ok: true,
          none: null,
          list: [1, 'two', { three: 3 }],
          nested: { a: { b: 'deep' } },
        };
        await col.insertOne(doc);
        assert.deepEqual(await col.findOne({ _id: 'd1' }), doc);
        assert.equal(await col.findOne({ _id: 'missing' }), null);
      });

      it('findOne by a dotted field', async () => {
        const col = env.store.collection(peopleName);
        assert.equal((await col.findOne({ 'sub.k': 'r' }))?._id, 'd');
        assert.equal((await col.findOne({ 'sub.depth': 3, s: 'z' }))?._id, 'c');
        assert.equal(await col.findOne({ 'sub.k': 'nope' }), null);
      });

      it('insertMany stores every document', async () => {
        const col = env.store.collection(peopleName);
        assert.deepEqual(idsOf(await col.find({})), ['a', 'b', 'c', 'd', 'e']);
        assert.deepEqual(await col.findOne({ _id: 'c' }), people[2]);
      });

      const cases: Array<[string, Record<string, unknown>, string[]]> = [
        ['equality', { s: 'x' }, ['a', 'd']],
        ['dotted equality', { 'sub.k': 'p' }, ['a', 'c']],
        ['sub-document equality', { sub: { k: 'p', depth: 1 } }, ['a']],
        ['array contains a value', { tags: 'blue' }, ['a', 'b']],
        ['whole-array equality', { tags: ['red', 'blue'] }, ['a']],
        ['$eq', { n: { $eq: 3 } }, ['c']],
        ['$ne (missing field matches)', { s: { $ne: 'x' } }, ['b', 'c', 'e']],
        ['$ne on an array: no element equal', { tags: { $ne: 'blue' } }, ['c', 'd', 'e']],
        ['$gt', { n: { $gt: 3 } }, ['d', 'e']],
        ['$gte', { n: { $gte: 3 } }, ['c', 'd', 'e']],
        ['$lt', { n: { $lt: 2 } }, ['a']],
        ['$lte', { n: { $lte: 2 } }, ['a', 'b']],
        ['range $gt + $lt', { n: { $gt: 1, $lt: 4 } }, ['b', 'c']],
        ['dotted $gte', { 'sub.depth': { $gte: 4 } }, ['d', 'e']],
        ['$in', { s: { $in: ['y', 'z'] } }, ['b', 'c']],
        ['$in on _id', { _id: { $in: ['a', 'e', 'zz'] } }, ['a', 'e']],
        ['$in on an array field', { tags: { $in: ['green', 'red'] } }, ['a', 'd']],
        ['$nin', { s: { $nin: ['x', 'w'] } }, ['b', 'c']],
        ['$nin on an array field', { tags: { $nin: ['blue'] } }, ['c', 'd', 'e']],
        ['$exists true (null exists)', { opt: { $exists: true } }, ['a', 'b', 'd']],
        ['$exists false', { opt: { $exists: false } }, ['c', 'e']],
        ['null matches null and missing', { opt: null }, ['b', 'c', 'e']],
        ['$ne null', { opt: { $ne: null } }, ['a', 'd']],
        ['$in with null', { opt: { $in: ['here', null] } }, ['a', 'b', 'c', 'e']],
        ['$nin with null', { opt: { $nin: [null] } }, ['a', 'd']],
        ['$or', { $or: [{ s: 'y' }, { 'sub.k': 'r' }] }, ['b', 'd']],
        ['$or with operators', { $or: [{ n: { $lt: 2 } }, { opt: { $exists: false } }] }, ['a', 'c', 'e']],
        ['field and $or together', { s: 'x', $or: [{ n: 1 }, { n: 5 }] }, ['a']],
        ['no match', { s: 'nobody' }, []],
      ];
      for (const [label, filter, expected] of cases) {
        it(`filter: ${label}`, async () => {
          const col = env.store.collection(peopleName);
          assert.deepEqual(idsOf(await col.find(filter)), expected);
          assert.equal(await col.count(filter), expected.length);
        });
      }

      it('rejects an unknown filter operator', async () => {
        await assert.rejects(env.store.collection(peopleName).find({ n: { $bogus: 1 } }));
      });

      it('sorts ascending, descending, on several keys and on dotted fields', async () => {
        const col = env.store.collection(peopleName);
        assert.deepEqual(
          (await col.find({}, { sort: { n: 1 } })).map((d) => d._id),
          ['a', 'b', 'c', 'd', 'e'],
        );
        assert.deepEqual(
          (await col.find({}, { sort: { n: -1 } })).map((d) => d._id),
          ['e', 'd', 'c', 'b', 'a'],
        );
        assert.deepEqual(
          (await col.find({}, { sort: { s: 1, n: -1 } })).map((d) => d._id),
          ['e', 'd', 'a', 'b', 'c'],
        );
        assert.deepEqual(
          (await col.find({}, { sort: { 'sub.depth': -1 } })).map((d) => d._id),
          ['e', 'd', 'c', 'b', 'a'],
        );
      });

      it('skips and limits after sorting', async () => {
        const col = env.store.collection(peopleName);
        assert.deepEqual(
          (await col.find({}, { sort: { n: -1 }, skip: 1, limit: 2 })).map((d) => d._id),
          ['d', 'c'],
        );
        assert.deepEqual(
          (await col.find({ s: 'x' }, { sort: { n: 1 }, skip: 1 })).map((d) => d._id),
          ['d'],
        );
        assert.equal((await col.find({}, { limit: 3 })).length, 3);
        assert.deepEqual(await col.find({}, { sort: { n: 1 }, skip: 10 }), []);
      });
    });

    group('updates', (env) => {
      it('$set sets top-level and dotted fields, creating sub-documents', async () => {
        const col = env.store.collection(freshName('set'));
        await col.insertMany([
          { _id: 'u1', name: 'old', addr: { zip: '75001' } },
          { _id: 'u2', name: 'old' },
        ]);
        assert.deepEqual(await col.updateOne({ _id: 'u1' }, { $set: { name: 'new', 'addr.city': 'Paris' } }), {
          matched: 1,
          modified: 1,
        });
        assert.deepEqual(await col.findOne({ _id: 'u1' }), {
          _id: 'u1',
          name: 'new',
          addr: { zip: '75001', city: 'Paris' },
        });
        await col.updateOne({ _id: 'u2' }, { $set: { 'addr.city': 'Lyon' } });
        assert.deepEqual(await col.findOne({ _id: 'u2' }), { _id: 'u2', name: 'old', addr: { city: 'Lyon' } });
      });

      it('$unset removes fields, including dotted ones', async () => {
        const col = env.store.collection(freshName('unset'));
        await col.insertOne({ _id: 'u', keep: 1, gone: 2, sub: { a: 1, b: 2 } });
        assert.deepEqual(await col.updateOne({ _id: 'u' }, { $unset: { gone: '', 'sub.b': 1 } }), {
          matched: 1,
          modified: 1,
        });
        assert.deepEqual(await col.findOne({ _id: 'u' }), { _id: 'u', keep: 1, sub: { a: 1 } });
        assert.deepEqual(await col.updateOne({ _id: 'u' }, { $unset: { notThere: true } }), {
          matched: 1,
          modified: 0,
        });
      });

      it('$inc adds to existing numbers and creates missing ones', async () => {
        const col = env.store.collection(freshName('inc'));
        await col.insertOne({ _id: 'c', n: 10, sub: { hits: 1 } });
        await col.updateOne({ _id: 'c' }, { $inc: { n: -3, fresh: 5, 'sub.hits': 2 } });
        assert.deepEqual(await col.findOne({ _id: 'c' }), { _id: 'c', n: 7, fresh: 5, sub: { hits: 3 } });
      });

      it('$push appends to an array, creating it when missing', async () => {
        const col = env.store.collection(freshName('push'));
        await col.insertOne({ _id: 'p', list: ['a'] });
        await col.updateOne({ _id: 'p' }, { $push: { list: 'b', other: { x: 1 } } });
        assert.deepEqual(await col.findOne({ _id: 'p' }), { _id: 'p', list: ['a', 'b'], other: [{ x: 1 }] });
      });

      it('updateOne counts a match that changes nothing as not modified, and no match as nothing', async () => {
        const col = env.store.collection(freshName('same'));
        await col.insertOne({ _id: 's', v: 1 });
        assert.deepEqual(await col.updateOne({ _id: 's' }, { $set: { v: 1 } }), { matched: 1, modified: 0 });
        assert.deepEqual(await col.updateOne({ _id: 'nobody' }, { $set: { v: 2 } }), { matched: 0, modified: 0 });
        assert.equal(await col.count({}), 1);
      });

      it('updateOne changes only one of several matches', async () => {
        const col = env.store.collection(freshName('one'));
        await col.insertMany([
          { _id: '1', g: 'x' },
          { _id: '2', g: 'x' },
        ]);
        assert.deepEqual(await col.updateOne({ g: 'x' }, { $set: { hit: true } }), { matched: 1, modified: 1 });
        assert.equal(await col.count({ hit: true }), 1);
      });

      it('updateMany reports matched and really modified counts', async () => {
        const col = env.store.collection(freshName('many'));
        await col.insertMany([
          { _id: '1', g: 'x', flag: false },
          { _id: '2', g: 'x', flag: true },
          { _id: '3', g: 'x' },
          { _id: '4', g: 'y' },
        ]);
        assert.deepEqual(await col.updateMany({ g: 'x' }, { $set: { flag: true } }), { matched: 3, modified: 2 });
        assert.deepEqual(idsOf(await col.find({ flag: true })), ['1', '2', '3']);
        assert.deepEqual(await col.updateMany({ g: 'none' }, { $set: { flag: true } }), { matched: 0, modified: 0 });
        assert.equal(await col.findOne({ _id: '4', flag: { $exists: true } }), null);
      });

      it('$setOnInsert does nothing to a matched document', async () => {
        const col = env.store.collection(freshName('soi'));
        await col.insertOne({ _id: 'm', v: 1 });
        assert.deepEqual(
          await col.updateOne({ _id: 'm' }, { $set: { v: 2 }, $setOnInsert: { created: 'now' } }, { upsert: true }),
          { matched: 1, modified: 1 },
        );
        assert.deepEqual(await col.findOne({ _id: 'm' }), { _id: 'm', v: 2 });
      });

      it('rejects an update without operators', async () => {
        const col = env.store.collection(freshName('noop'));
        await col.insertOne({ _id: 'r', v: 1 });
        await assert.rejects(col.updateOne({ _id: 'r' }, { v: 2 } as unknown as Update));
        assert.deepEqual(await col.findOne({ _id: 'r' }), { _id: 'r', v: 1 });
      });

      it('replaceOne replaces the whole document and keeps _id', async () => {
        const col = env.store.collection(freshName('replace'));
        await col.insertOne({ _id: 'r', a: 1, b: 2 });
        assert.deepEqual(await col.replaceOne({ a: 1 }, { _id: 'r', c: 3 }), { matched: 1, modified: 1 });
        assert.deepEqual(await col.findOne({ _id: 'r' }), { _id: 'r', c: 3 });
        assert.deepEqual(await col.replaceOne({ _id: 'r' }, { _id: 'r', c: 3 }), { matched: 1, modified: 0 });
        assert.deepEqual(await col.replaceOne({ _id: 'nobody' }, { _id: 'nobody', c: 4 }), { matched: 0, modified: 0 });
        assert.equal(await col.count({}), 1);
      });
    });

    group('upsert', (env) => {
      it('with _id in the filter: inserts with that _id, equality fields, $set and $setOnInsert', async () => {
        const col = env.store.collection(freshName('up_id'));
        const first = await col.updateOne(
          { _id: 'up1', kind: 'k' },
          { $set: { v: 1 }, $setOnInsert: { created: true } },
          { upsert: true },
        );
        assert.deepEqual(first, { matched: 0, modified: 0, upsertedId: 'up1' });
        assert.deepEqual(await col.findOne({ _id: 'up1' }), { _id: 'up1', kind: 'k', v: 1, created: true });

        const second = await col.updateOne(
          { _id: 'up1', kind: 'k' },
          { $set: { v: 2 }, $setOnInsert: { created: 'again' } },
          { upsert: true },
        );
        assert.deepEqual(second, { matched: 1, modified: 1 });
        assert.deepEqual(await col.findOne({ _id: 'up1' }), { _id: 'up1', kind: 'k', v: 2, created: true });
        assert.equal(await col.count({}), 1);
      });

      it('without _id in the filter: generates a string _id; copies equalities (dotted too), not operator conditions', async () => {
        const col = env.store.collection(freshName('up_gen'));
        const result = await col.updateOne(
          { 'owner.name': 'bob', n: { $gt: 5 } },
          { $inc: { hits: 1 } },
          { upsert: true },
        );
        assert.equal(result.matched, 0);
        assert.equal(result.modified, 0);
        assert.equal(typeof result.upsertedId, 'string');
        assert.ok(result.upsertedId);
        assert.deepEqual(await col.findOne({ _id: result.upsertedId }), {
          _id: result.upsertedId,
          owner: { name: 'bob' },
          hits: 1,
        });
      });

      it('$setOnInsert may choose the _id when the filter has none', async () => {
        const col = env.store.collection(freshName('up_choose'));
        const result = await col.updateOne(
          { aor: 'sip:alice@ims.test' },
          { $set: { state: 'on' }, $setOnInsert: { _id: 'chosen' } },
          { upsert: true },
        );
        assert.deepEqual(result, { matched: 0, modified: 0, upsertedId: 'chosen' });
        assert.deepEqual(await col.findOne({ _id: 'chosen' }), {
          _id: 'chosen',
          aor: 'sip:alice@ims.test',
          state: 'on',
        });
      });

      it('findOneAndUpdate with upsert returns the new document (after) or null (before)', async () => {
        const col = env.store.collection(freshName('up_fau'));
        assert.deepEqual(
          await col.findOneAndUpdate({ _id: 'c1' }, { $inc: { n: 1 } }, { upsert: true, returnDocument: 'after' }),
          { _id: 'c1', n: 1 },
        );
        assert.equal(
          await col.findOneAndUpdate({ _id: 'c2' }, { $inc: { n: 1 } }, { upsert: true, returnDocument: 'before' }),
          null,
        );
        assert.deepEqual(await col.findOne({ _id: 'c2' }), { _id: 'c2', n: 1 });
        const generated = await col.findOneAndUpdate(
          { tag: 'g' },
          { $set: { v: 1 } },
          { upsert: true, returnDocument: 'after' },
        );
        assert.equal(typeof generated?._id, 'string');
        assert.deepEqual(generated, { _id: generated?._id, tag: 'g', v: 1 });
      });

      it('replaceOne with upsert inserts, taking _id from the filter or else from the replacement', async () => {
        const col = env.store.collection(freshName('up_replace'));
        assert.deepEqual(await col.replaceOne({ _id: 'r1' }, { _id: 'r1', v: 1 }, { upsert: true }), {
          matched: 0,
          modified: 0,
          upsertedId: 'r1',
        });
        assert.deepEqual(await col.replaceOne({ key: 'k2' }, { _id: 'r2', key: 'k2', v: 2 }, { upsert: true }), {
          matched: 0,
          modified: 0,
          upsertedId: 'r2',
        });
        assert.deepEqual(await col.replaceOne({ key: 'k2' }, { _id: 'r2', key: 'k2', v: 3 }, { upsert: true }), {
          matched: 1,
          modified: 1,
        });
        assert.deepEqual(await col.find({}, { sort: { _id: 1 } }), [
          { _id: 'r1', v: 1 },
          { _id: 'r2', key: 'k2', v: 3 },
        ]);
      });
    });

    group('findOneAndUpdate', (env) => {
      it('returns the document before or after the update', async () => {
        const col = env.store.collection(freshName('fau'));
        await col.insertOne({ _id: 'f', n: 1 });
        assert.deepEqual(await col.findOneAndUpdate({ _id: 'f' }, { $inc: { n: 1 } }, { returnDocument: 'before' }), {
          _id: 'f',
          n: 1,
        });
        assert.deepEqual(await col.findOneAndUpdate({ _id: 'f' }, { $inc: { n: 1 } }, { returnDocument: 'after' }), {
          _id: 'f',
          n: 3,
        });
        assert.deepEqual(await col.findOne({ _id: 'f' }), { _id: 'f', n: 3 });
      });

      it('returns null and inserts nothing when nothing matches without upsert', async () => {
        const col = env.store.collection(freshName('fau_none'));
        assert.equal(
          await col.findOneAndUpdate({ _id: 'ghost' }, { $set: { v: 1 } }, { returnDocument: 'after' }),
          null,
        );
        assert.equal(await col.count({}), 0);
      });

      it('is atomic: 50 concurrent $inc each see a distinct value (after and before) and none is lost', async () => {
        const col = env.store.collection(freshName('counter'));
        await col.insertOne({ _id: 'seq', n: 0 });
        const results = await Promise.all(
          Array.from({ length: 50 }, () =>
            col.findOneAndUpdate({ _id: 'seq' }, { $inc: { n: 1 } }, { returnDocument: 'after' }),
          ),
        );
        const values = results.map((doc) => doc?.n);
        assert.equal(new Set(values).size, 50);
        assert.deepEqual(
          [...values].sort((x, y) => Number(x) - Number(y)),
          Array.from({ length: 50 }, (_, i) => i + 1),
        );
        assert.deepEqual(await col.findOne({ _id: 'seq' }), { _id: 'seq', n: 50 });

        // And with 'before': 50 distinct earlier states, 50..99.
        const befores = await Promise.all(
          Array.from({ length: 50 }, () =>
            col.findOneAndUpdate({ _id: 'seq' }, { $inc: { n: 1 } }, { returnDocument: 'before' }),
          ),
        );
        const seen = befores.map((doc) => Number(doc?.n)).sort((x, y) => x - y);
        assert.deepEqual(
          seen,
          Array.from({ length: 50 }, (_, i) => i + 50),
        );
        assert.deepEqual(await col.findOne({ _id: 'seq' }), { _id: 'seq', n: 100 });
      });

      it('claim: of 50 concurrent claims on an unowned document exactly one wins', async () => {
        const col = env.store.collection(freshName('claim'));
        await col.insertOne({ _id: 'lease' });
        const results = await Promise.all(
          Array.from({ length: 50 }, (_, i) =>
            col.findOneAndUpdate(
              { _id: 'lease', owner: { $exists: false } },
              { $set: { owner: i } },
              { returnDocument: 'after' },
            ),
          ),
        );
        const winners = results.filter((doc) => doc !== null);
        assert.equal(winners.length, 1);
        const winner = winners[0];
        assert.ok(winner);
        assert.deepEqual(await col.findOne({ _id: 'lease' }), { _id: 'lease', owner: winner.owner });
        assert.equal(results.indexOf(winner), winner.owner);
      });
    });

    group('unique constraints', (env) => {
      it('a duplicate _id throws DuplicateKeyError naming the collection', async () => {
        const name = freshName('dup_id');
        const col = env.store.collection(name);
        await col.insertOne({ _id: 'x', v: 1 });
        await assert.rejects(col.insertOne({ _id: 'x', v: 2 }), (err: unknown) => {
          assert.ok(err instanceof DuplicateKeyError);
          assert.equal(err.collection, name);
          return true;
        });
        assert.deepEqual(await col.findOne({ _id: 'x' }), { _id: 'x', v: 1 });
      });

      it('insertMany with a duplicate throws DuplicateKeyError', async () => {
        const col = env.store.collection(freshName('dup_many'));
        await col.insertOne({ _id: 'x' });
        await assert.rejects(col.insertMany([{ _id: 'x' }]), DuplicateKeyError);
      });

      it('a unique index rejects a second document and an update that would collide', async () => {
        const col = env.store.collection(freshName('dup_idx'));
        await col.ensureIndex({ fields: { impu: 1 }, unique: true });
        await col.ensureIndex({ fields: { impu: 1 }, unique: true }); // idempotent
        await col.insertOne({ _id: '1', impu: 'sip:a@ims.test' });
        await col.insertOne({ _id: '2', impu: 'sip:b@ims.test' });
        await assert.rejects(col.insertOne({ _id: '3', impu: 'sip:a@ims.test' }), DuplicateKeyError);
        await assert.rejects(col.updateOne({ _id: '2' }, { $set: { impu: 'sip:a@ims.test' } }), DuplicateKeyError);
        assert.deepEqual(await col.find({}, { sort: { _id: 1 } }), [
          { _id: '1', impu: 'sip:a@ims.test' },
          { _id: '2', impu: 'sip:b@ims.test' },
        ]);
      });

      it('a compound unique index rejects only the same combination', async () => {
        const col = env.store.collection(freshName('dup_compound'));
        await col.ensureIndex({ fields: { owner: 1, name: 1 }, unique: true });
        await col.insertOne({ _id: '1', owner: 'alice', name: 'buddies' });
        await col.insertOne({ _id: '2', owner: 'alice', name: 'family' });
        await col.insertOne({ _id: '3', owner: 'bob', name: 'buddies' });
        await assert.rejects(col.insertOne({ _id: '4', owner: 'alice', name: 'buddies' }), DuplicateKeyError);
        assert.equal(await col.count({}), 3);
      });

      it('creating a unique index over duplicates throws DuplicateKeyError', async () => {
        const col = env.store.collection(freshName('dup_existing'));
        await col.insertMany([
          { _id: '1', k: 'same' },
          { _id: '2', k: 'same' },
        ]);
        await assert.rejects(col.ensureIndex({ fields: { k: 1 }, unique: true }), DuplicateKeyError);
      });

      it('an upsert whose filter misses an existing _id throws DuplicateKeyError', async () => {
        const col = env.store.collection(freshName('dup_upsert'));
        await col.insertOne({ _id: 'lease', owner: 'a' });
        await assert.rejects(
          col.findOneAndUpdate(
            { _id: 'lease', owner: { $exists: false } },
            { $set: { owner: 'b' } },
            { upsert: true, returnDocument: 'after' },
          ),
          DuplicateKeyError,
        );
        assert.deepEqual(await col.findOne({ _id: 'lease' }), { _id: 'lease', owner: 'a' });
      });
    });

    group('indexed fields', (env) => {
      it('a multikey index matches a value or any element of an array, and follows updates and deletes', async () => {
        const col = env.store.collection(freshName('watch'));
        await col.ensureIndex({ fields: { event: 1, resource: 1 } });
        await col.ensureIndex({ fields: { watches: 1 }, sparse: true, multikey: true });
        await col.insertMany([
          { _id: 'list', event: 'presence', resource: 'sip:list@x', watches: ['sip:a@x', 'sip:b@x'] },
          { _id: 'one', event: 'presence', resource: 'sip:c@x', watches: 'sip:a@x' },
          { _id: 'none', event: 'presence', resource: 'sip:a@x' },
          { _id: 'other', event: 'reg', resource: 'sip:z@x', watches: ['sip:a@x'] },
        ]);
        assert.deepEqual(idsOf(await col.find({ event: 'presence', watches: 'sip:a@x' })), ['list', 'one']);
        assert.deepEqual(idsOf(await col.find({ watches: { $in: ['sip:b@x', 'sip:q@x'] } })), ['list']);
        assert.deepEqual(idsOf(await col.find({ watches: { $ne: 'sip:a@x' } })), ['none']);
        assert.deepEqual(idsOf(await col.find({ event: 'presence', resource: 'sip:a@x' })), ['none']);
        await col.updateOne({ _id: 'list' }, { $set: { watches: ['sip:b@x'] } });
        assert.deepEqual(idsOf(await col.find({ watches: 'sip:a@x' })), ['one', 'other']);
        await col.deleteOne({ _id: 'one' });
        assert.deepEqual(idsOf(await col.find({ watches: 'sip:a@x' })), ['other']);
        await col.updateOne({ _id: 'none' }, { $set: { watches: ['sip:a@x'] } });
        assert.deepEqual(idsOf(await col.find({ watches: 'sip:a@x' }, { sort: { _id: 1 } })), ['none', 'other']);
        await col.updateOne({ _id: 'other' }, { $set: { state: 'active' } }); // the watched members unchanged
        assert.deepEqual(idsOf(await col.find({ watches: 'sip:a@x', state: 'active' })), ['other']);
      });

      it('ranges, sorts and limits over a compound index give the same answers as without one', async () => {
        const col = env.store.collection(freshName('compound'));
        await col.ensureIndex({ fields: { recipient: 1, seq: 1 } });
        await col.insertMany(
          Array.from({ length: 30 }, (_, i) => ({
            _id: `m${i}`,
            recipient: i % 3 === 0 ? 'bob' : 'eve',
            seq: i,
            state: i % 2 ? 'pending' : 'kept',
          })),
        );
        const pending = await col.find({ recipient: 'bob', state: 'pending' }, { sort: { seq: 1 }, limit: 3 });
        assert.deepEqual(
          pending.map((d) => d.seq),
          [3, 9, 15],
        );
        const newest = await col.find({ recipient: 'eve' }, { sort: { seq: -1 }, limit: 2 });
        assert.deepEqual(
          newest.map((d) => d.seq),
          [29, 28],
        );
        assert.equal(await col.count({ recipient: 'bob', seq: { $gt: 10, $lte: 21 } }), 4);
      });
    });

    group('dates', (env) => {
      it('Date values round-trip as Date, top-level, nested and in arrays', async () => {
        const col = env.store.collection(freshName('dates'));
        const at = new Date('2024-05-06T07:08:09.123Z');
        await col.insertOne({ _id: 'd', at, sub: { when: at }, list: [at] });
        const doc = await col.findOne({ _id: 'd' });
        assert.ok(doc?.at instanceof Date);
        assert.equal(doc.at.getTime(), at.getTime());
        assert.deepEqual(doc, { _id: 'd', at, sub: { when: at }, list: [at] });
      });

      it('Dates compare, match, sort and $set as Dates', async () => {
        const col = env.store.collection(freshName('date_ops'));
        const t0 = new Date('2024-01-01T00:00:00Z');
        await col.insertMany([
          { _id: 'old', at: new Date(t0.getTime() - 60_000) },
          { _id: 'now', at: t0 },
          { _id: 'new', at: new Date(t0.getTime() + 60_000) },
        ]);
        assert.deepEqual(idsOf(await col.find({ at: { $lt: t0 } })), ['old']);
        assert.deepEqual(idsOf(await col.find({ at: { $gte: t0 } })), ['new', 'now']);
        assert.deepEqual(idsOf(await col.find({ at: new Date(t0.getTime()) })), ['now']);
        assert.deepEqual(
          (await col.find({}, { sort: { at: -1 } })).map((d) => d._id),
          ['new', 'now', 'old'],
        );
        const later = new Date('2030-01-01T00:00:00Z');
        await col.updateOne({ _id: 'old' }, { $set: { at: later } });
        const updated = await col.findOne({ _id: 'old' });
        assert.ok(updated?.at instanceof Date);
        assert.equal(updated.at.getTime(), later.getTime());
      });
    });

    group('deletes', (env) => {
      it('deleteOne removes one matching document and returns 1, or 0', async () => {
        const col = env.store.collection(freshName('del_one'));
        await col.insertMany([
          { _id: '1', g: 'x' },
          { _id: '2', g: 'x' },
          { _id: '3', g: 'y' },
        ]);
        assert.equal(await col.deleteOne({ g: 'x' }), 1);
        assert.equal(await col.count({ g: 'x' }), 1);
        assert.equal(await col.deleteOne({ g: 'none' }), 0);
        assert.equal(await col.deleteOne({ _id: '3' }), 1);
        assert.equal(await col.findOne({ _id: '3' }), null);
      });

      it('deleteMany removes every match and returns how many', async () => {
        const col = env.store.collection(freshName('del_many'));
        await col.insertMany([
          { _id: '1', n: 1 },
          { _id: '2', n: 2 },
          { _id: '3', n: 3 },
          { _id: '4', n: 4 },
        ]);
        assert.equal(await col.deleteMany({ n: { $gte: 3 } }), 2);
        assert.deepEqual(idsOf(await col.find({})), ['1', '2']);
        assert.equal(await col.deleteMany({ n: 99 }), 0);
        assert.equal(await col.deleteMany({}), 2);
        assert.equal(await col.count({}), 0);
      });
    });

    group('persistence', (env) => {
      it('data, Dates and unique indexes are still there after close and reopen', async () => {
        const name = freshName('persist');
        const at = new Date('2024-02-03T04:05:06.789Z');
        const before = env.store.collection(name);
        await before.ensureIndex({ fields: { impu: 1 }, unique: true });
        await before.insertMany([
          { _id: '1', impu: 'sip:a@ims.test', at, n: 1 },
          { _id: '2', impu: 'sip:b@ims.test', n: 1 },
          { _id: '3', impu: 'sip:c@ims.test', n: 1 },
        ]);
        await before.updateOne({ _id: '1' }, { $inc: { n: 41 } });
        await before.deleteOne({ _id: '3' });

        await env.reopen();
        const after = env.store.collection(name);
        assert.deepEqual(await after.find({}, { sort: { _id: 1 } }), [
          { _id: '1', impu: 'sip:a@ims.test', at, n: 42 },
          { _id: '2', impu: 'sip:b@ims.test', n: 1 },
        ]);
        const doc = await after.findOne({ _id: '1' });
        assert.ok(doc?.at instanceof Date);
        await assert.rejects(after.insertOne({ _id: '4', impu: 'sip:b@ims.test' }), DuplicateKeyError);
      });
    });

    group('ttl', (env) => {
      it('an expireAfterSeconds index removes documents older than the limit', async () => {
        const name = freshName('ttl');
        const col = env.store.collection(name);
        await col.ensureIndex({ fields: { at: 1 }, expireAfterSeconds: 1 });
        await col.insertMany([
          { _id: 'old', at: new Date() },
          { _id: 'future', at: new Date(Date.now() + 3_600_000) },
          { _id: 'no-date' },
        ]);
        if (env.store.engine === 'mongodb') {
          // MongoDB's TTL monitor runs every 60 s: waiting for it would make the suite slow and
          // flaky, so only check that the server has the TTL index.
          const indexes = (await env.fixture.listIndexes?.(name)) ?? [];
          assert.ok(
            indexes.some((ix) => ix.key.at === 1 && ix.expireAfterSeconds === 1),
            JSON.stringify(indexes),
          );
          return;
        }
        // The embedded engine hides expired documents from every read (its sweep removes them).
        await sleep(1_500);
        assert.deepEqual(idsOf(await col.find({})), ['future', 'no-date']);
        assert.equal(await col.count({}), 2);
        assert.equal(await col.findOne({ _id: 'old' }), null);
      });

      it('the TTL still applies after close and reopen', async () => {
        const name = freshName('ttl_reopen');
        await env.store.collection(name).ensureIndex({ fields: { at: 1 }, expireAfterSeconds: 1 });
        await env.reopen();
        const col = env.store.collection(name);
        // As a service does at every start: declare its indexes again.
        await col.ensureIndex({ fields: { at: 1 }, expireAfterSeconds: 1 });
        await col.insertMany([
          { _id: 'stale', at: new Date(Date.now() - 10_000) },
          { _id: 'fresh', at: new Date(Date.now() + 3_600_000) },
        ]);
        if (env.store.engine === 'mongodb') {
          const indexes = (await env.fixture.listIndexes?.(name)) ?? [];
          assert.ok(
            indexes.some((ix) => ix.key.at === 1 && ix.expireAfterSeconds === 1),
            JSON.stringify(indexes),
          );
          return;
        }
        // Already 10 s past a 1 s limit: gone at once.
        assert.deepEqual(idsOf(await col.find({})), ['fresh']);
        assert.equal(await col.count({}), 1);
      });
    });
  });
}

// ---------------------------------------------------------------- the engines

async function makeEmbedded(): Promise<EngineFixture> {
  const dir = await mkdtemp(path.join(tmpdir(), 'ims-store-contract-'));
  return {
    open: () => SqliteStore.open(dir),
    destroy: () => rm(dir, { recursive: true, force: true }),
  };
}

const mongoRunId = `${Date.now().toString(36)}_${process.pid}`;
let mongoGroupSeq = 0;

async function makeMongo(): Promise<EngineFixture> {
  const dbName = `ims_as_contract_${mongoRunId}_${++mongoGroupSeq}`;
  const uri = withDbName(process.env.MONGODB_URI ?? '', dbName);
  async function withClient<R>(task: (client: MongoClient) => Promise<R>): Promise<R> {
    const client = new MongoClient(uri, { serverSelectionTimeoutMS: 5_000 });
    try {
      await client.connect();
      return await task(client);
    } finally {
      await client.close();
    }
  }
  return {
    open: () => MongoStore.connect(uri),
    destroy: () => withClient(async (client) => void (await client.db(dbName).dropDatabase())),
    listIndexes: (collection) =>
      withClient(
        async (client) => (await client.db(dbName).collection(collection).listIndexes().toArray()) as ServerIndex[],
      ),
  };
}

runContract('embedded', makeEmbedded);
runContract(
  'mongodb',
  makeMongo,
  process.env.MONGODB_URI
    ? false
    : 'MONGODB_URI is not set: no MongoDB server on this machine, contract not run against MongoDB',
);

// ---------------------------------------------------------------- engine-specific behaviour

describe('embedded store: names', () => {
  it('rejects collection names that are not plain names', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'ims-store-names-'));
    const store = await SqliteStore.open(dir);
    try {
      assert.throws(() => store.collection('../escape'), /invalid collection name/);
      assert.throws(() => store.collection('.hidden'), /invalid collection name/);
      assert.throws(() => store.collection('quo"te'), /invalid collection name/);
    } finally {
      await store.close();
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('openStore', () => {
  it('opens the embedded engine when no MongoDB URI is given', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'ims-store-open-'));
    try {
      const store = await openStore({ dataDir: dir, mongodbUri: '' });
      assert.equal(store.engine, 'embedded');
      await store.close();
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('names MONGODB_URI when MongoDB cannot be reached', async () => {
    await assert.rejects(
      MongoStore.connect('mongodb://user:secret@127.0.0.1:9/ims_as', undefined, { serverSelectionTimeoutMS: 300 }),
      (err: unknown) => {
        assert.ok(err instanceof Error);
        assert.match(err.message, /MONGODB_URI/);
        assert.doesNotMatch(err.message, /secret/);
        return true;
      },
    );
  });
});
